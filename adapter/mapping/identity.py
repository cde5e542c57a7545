"""Deterministic resource identities: the same source identifier always gives the same id and fullUrl."""

from __future__ import annotations

import uuid
from urllib.parse import quote

CANONICAL_BASE = "https://cart-adapter.example.org/fhir"
# Fixed forever: changing it would give every mapped resource a new id and duplicate them all on re-send.
NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, CANONICAL_BASE)
_SAFE = ":/.-_~"


def stable_id(resource_type: str, system: str, value: str) -> str:
    """A UUID (valid FHIR id) derived from the resource type and its identifying identifier."""
    return str(uuid.uuid5(NAMESPACE, f"{resource_type}|{system}|{value}"))


def full_url(resource_id: str) -> str:
    return f"urn:uuid:{resource_id}"


def identifier_query(system: str, value: str) -> str:
    """The search a conditional interaction uses: identifier=system|value, each part URL-encoded."""
    return f"identifier={quote(system, safe=_SAFE)}|{quote(value, safe=_SAFE)}"
