"""The scope an expression is evaluated in: one record's (or one repeated item's) values and references."""

from __future__ import annotations

from typing import Any


class Scope:
    """The values of one record (or one repeated item): picked values, and fullUrls of built resources.

    `resolver` answers `ref_by_identifier()` (see adapter/mapping/references.py); None while compiling.
    """

    __slots__ = ("vars", "refs", "sources", "location", "resolver")

    def __init__(
        self,
        vars: dict[str, Any],
        refs: dict[str, str],
        sources: dict[str, str],
        location: str,
        resolver: Any = None,
    ):
        self.vars = vars
        self.refs = refs
        self.sources = sources  # name -> where in the source it was picked, for error messages
        self.location = location
        self.resolver = resolver

    def child(self, location: str) -> Scope:
        return Scope(dict(self.vars), dict(self.refs), dict(self.sources), location, self.resolver)
