"""What every reader gives the engine: records with their place in the source, limits, compiled paths."""

from __future__ import annotations

import codecs
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from adapter.mapping.errors import MappingIssue, SourceMediaTypeError, SourceTooLargeError

Accessor = Callable[[Any], Any]
# (node, its location) -> [(location of the item, item)]
ItemsAccessor = Callable[[Any, str], list[tuple[str, Any]]]


@dataclass(frozen=True)
class Limits:
    """Bounds on one source; beyond max_bytes or max_records the whole source is refused."""

    max_bytes: int = 32 * 1024 * 1024
    max_records: int = 100_000
    max_record_bytes: int = 1024 * 1024

    def with_overrides(self, overrides: dict[str, int] | None) -> Limits:
        if not overrides:
            return self
        return Limits(**{**self.__dict__, **overrides})

    def check_size(self, data: bytes) -> None:
        if len(data) > self.max_bytes:
            raise SourceTooLargeError(
                f"the source is {len(data)} bytes, more than the limit of {self.max_bytes}"
            )

    def check_count(self, count: int, what: str) -> None:
        if count > self.max_records:
            raise SourceTooLargeError(
                f"the source has {count} {what}, more than the limit of {self.max_records}"
            )


def text_codec(charset: str) -> str:
    """The Python codec for a Content-Type charset parameter.

    Raises:
        SourceMediaTypeError: not a character set (unknown name, a NUL, or a bytes-to-bytes codec
            such as rot13, hex or zlib, which Python's lookup also knows).
    """
    try:
        info = codecs.lookup(charset)
    except (LookupError, ValueError):
        info = None
    # `undefined` is a text codec whose only purpose is to fail on every call.
    if info is None or not getattr(info, "_is_text_encoding", True) or info.name == "undefined":
        raise SourceMediaTypeError(
            f"charset {charset[:40]!r} in the Content-Type is not a known character set", expression="charset"
        )
    return info.name


class Record:
    """One unit of the source mapped on its own: an HL7 message, a CSV row, a JSON or XML element.

    A reader may give a loader instead of the data: the record is then parsed when first used and can be
    unloaded after mapping, so a file of 10,000 messages never holds 10,000 parsed messages at once.
    """

    __slots__ = ("index", "location", "_data", "error", "more_errors", "_loader")

    def __init__(
        self,
        index: int,
        location: str,
        data: Any = None,
        error: MappingIssue | None = None,
        more_errors: list[MappingIssue] | None = None,
        loader: Callable[[Record], None] | None = None,
    ):
        self.index = index
        self.location = location
        self._data = data
        self.error = error  # set when the reader itself could not read this record
        self.more_errors = more_errors or []
        self._loader = loader

    @property
    def data(self) -> Any:
        if self._data is None and self._loader is not None:
            self.load()
        return self._data

    @data.setter
    def data(self, value: Any) -> None:
        self._data = value

    def load(self) -> None:
        """Parse now (once); the loader sets data, or error, and may refine the location."""
        if self._data is None and self._loader is not None and self.error is None:
            self._loader(self)

    def unload(self) -> None:
        """Drop the parsed data when it can be parsed again."""
        if self._loader is not None and self.error is None:
            self._data = None

    @property
    def errors(self) -> list[MappingIssue]:
        return ([self.error] if self.error else []) + self.more_errors


@dataclass
class SourceDocument:
    records: list[Record]
    issues: list[MappingIssue] = field(default_factory=list)


class Reader(Protocol):
    """A source format: reads bytes into records and compiles the spec's paths for that format."""

    format: str
    media_types: tuple[str, ...]

    def read(self, data: bytes, charset: str | None = None) -> SourceDocument: ...

    def path(self, text: str, where: str, many: bool = False) -> Accessor: ...

    def items(self, text: str, where: str) -> ItemsAccessor: ...

    def describe(self, text: str) -> str: ...
