"""SMART on FHIR system scopes (v2 `system/Task.rs`, and the v1 forms `.read`, `.write`, `.*`)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

# c create, r read (read, vread, instance history), u update, d delete, s search (and type/system history).
PERMISSIONS = "cruds"
_SCOPE_RE = re.compile(r"^system/(?P<type>\*|[A-Z][A-Za-z]+)\.(?P<perms>[cruds]+|read|write|\*)$")
_V1 = {"read": "rs", "write": "cud", "*": "cruds"}


@dataclass(frozen=True)
class Scope:
    resource_type: str  # a type name or "*"
    permissions: frozenset[str]

    def allows(self, resource_type: str, permission: str) -> bool:
        return self.resource_type in ("*", resource_type) and permission in self.permissions

    def covers(self, other: Scope) -> bool:
        return self.resource_type in ("*", other.resource_type) and other.permissions <= self.permissions


# Every request parses its token's scopes (twice: the grant, then the access guard); tokens are few.
@lru_cache(maxsize=1024)
def parse_scope(text: str) -> Scope | None:
    """A system scope, or None for anything else (user/patient scopes, scopes with search restrictions)."""
    match = _SCOPE_RE.match(text)
    if not match:
        return None
    perms = match["perms"]
    perms = _V1.get(perms, perms)
    if list(perms) != sorted(perms, key=PERMISSIONS.index) or len(set(perms)) != len(perms):
        return None  # SMART v2 requires the letters once each, in c-r-u-d-s order
    return Scope(match["type"], frozenset(perms))


@dataclass(frozen=True)
class ScopeSet:
    scopes: tuple[Scope, ...]
    text: str

    @classmethod
    def parse(cls, text: str) -> ScopeSet:
        parsed = [(word, parse_scope(word)) for word in text.split()]
        kept = [(word, scope) for word, scope in parsed if scope is not None]
        return cls(tuple(scope for _, scope in kept), " ".join(word for word, _ in kept))

    def allows(self, resource_type: str, permission: str) -> bool:
        return any(scope.allows(resource_type, permission) for scope in self.scopes)

    def grant(self, requested: str) -> ScopeSet:
        """The requested scopes this set covers: what a token may carry (never more than registered)."""
        granted = [
            (word, scope)
            for word in requested.split()
            if (scope := parse_scope(word)) is not None and any(mine.covers(scope) for mine in self.scopes)
        ]
        return ScopeSet(tuple(scope for _, scope in granted), " ".join(word for word, _ in granted))
