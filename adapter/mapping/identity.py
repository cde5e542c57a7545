"""Deterministic resource identities: the same source identifier always gives the same id and fullUrl."""

from __future__ import annotations

import hashlib
import uuid
from functools import lru_cache
from urllib.parse import quote

CANONICAL_BASE = "https://cart-adapter.example.org/fhir"
# Fixed forever: changing it would give every mapped resource a new id and duplicate them all on re-send.
NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, CANONICAL_BASE)
_SAFE = ":/.-_~"


_NAMESPACE_BYTES = NAMESPACE.bytes


def stable_id(resource_type: str, system: str, value: str) -> str:
    """A UUID (valid FHIR id) derived from the resource type and its identifying identifier.

    The same as str(uuid.uuid5(NAMESPACE, 'type|system|value')), without building UUID objects.
    """
    name = f"{resource_type}|{system}|{value}".encode()
    digest = bytearray(hashlib.sha1(_NAMESPACE_BYTES + name).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # RFC 4122 variant
    h = digest.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def full_url(resource_id: str) -> str:
    return f"urn:uuid:{resource_id}"


@lru_cache(maxsize=256)
def _quoted_system(system: str) -> str:
    return quote(system, safe=_SAFE)


def identifier_query(system: str, value: str) -> str:
    """The search a conditional interaction uses: identifier=system|value, each part URL-encoded."""
    return f"identifier={_quoted_system(system)}|{quote(value, safe=_SAFE)}"
