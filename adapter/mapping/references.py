"""References to resources a record does not build itself: the order a reception fulfils, the bag given.

`ref('name')` names a resource of the same record. A pharmacy reception, though, must point to the order
placed weeks before by another feed, and a CAR-T administration to the bag the reception stored. Two
expression forms do that, by the identifier the other feed gave:

- `ref_by_identifier('ServiceRequest', system, value)`: the Bundle's own entry when an earlier record of
  the same source builds it (its fullUrl); else, with a lookup (the ingest endpoint), the stored resource
  (`ServiceRequest/<id>`), or *no value* when none is stored - so `required:` rejects the record with its
  reason instead of posting a reference the server cannot resolve; else (no lookup: `cart-adapter map`,
  fixtures) a conditional reference `ServiceRequest?identifier=system|value`, which the server resolves
  in the transaction (and refuses with 412 when it matches no resource).
- `ref_by_id('BiologicallyDerivedProduct', system, value)`: `Type/<id>` at the deterministic id a `put`
  resource of that identity is written at (for types R4 cannot search by identifier).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from adapter.mapping.bundle import Key, ResourceLookup
from adapter.mapping.identity import identifier_query, stable_id
from adapter.mapping.scope import Scope

Evaluator = Callable[[Scope], Any]


class Resolver:
    """Answers ref_by_identifier() for one mapping run: the Bundle so far, then the store, then the server."""

    def __init__(self, in_bundle: Callable[[Key], str | None], lookup: ResourceLookup | None) -> None:
        self.in_bundle = in_bundle
        self.lookup = lookup
        self._stored: dict[Key, str | None] = {}  # one store query per identity and run

    def by_identifier(self, resource_type: str, system: str, value: str) -> str | None:
        key = (resource_type, system, value)
        found = self.in_bundle(key)
        if found is not None:
            return found
        if self.lookup is None:
            return f"{resource_type}?{identifier_query(system, value)}"
        if key not in self._stored:
            stored = self.lookup.find(resource_type, system, value)
            rid = stored.resource.get("id") if stored is not None else None
            self._stored[key] = f"{resource_type}/{rid}" if isinstance(rid, str) and rid else None
        return self._stored[key]


def _text(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)


def _by_identifier(resource_type: str, system: Evaluator, value: Evaluator) -> Evaluator:
    def evaluate(scope: Scope) -> dict | None:
        s, v = _text(system(scope)), _text(value(scope))
        if s is None or v is None:
            return None
        resolver = scope.resolver or _NO_LOOKUP
        found = resolver.by_identifier(resource_type, s, v)
        return {"reference": found} if found else None

    return evaluate


def _by_id(resource_type: str, system: Evaluator, value: Evaluator) -> Evaluator:
    def evaluate(scope: Scope) -> dict | None:
        s, v = _text(system(scope)), _text(value(scope))
        if s is None or v is None:
            return None
        return {"reference": f"{resource_type}/{stable_id(resource_type, s, v)}"}

    return evaluate


_NO_LOOKUP = Resolver(lambda key: None, None)

REFERENCE_FORMS: dict[str, Callable[[str, Evaluator, Evaluator], Evaluator]] = {
    "ref_by_identifier": _by_identifier,
    "ref_by_id": _by_id,
}
