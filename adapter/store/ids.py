"""Ids the server assigns: version 7 UUIDs, which grow with time.

Every unique index on an id (resources, their versions, audit events) and every search row whose value
is a reference to a new resource then takes the new key at the end of its B-tree, on a page the last
write already touched, instead of on a random page: a random id cost each resource written two more
pages in SQLite's WAL (about a third of a pathway Bundle's pages) and full-page images in PostgreSQL's.
"""

from __future__ import annotations

import secrets
import time
import uuid


def time_ordered_uuid() -> uuid.UUID:
    """A version 7 UUID (RFC 9562): milliseconds since the epoch, then 74 random bits.

    Python 3.11's uuid module has no uuid7. The random bits keep ids unguessable; the time they reveal
    is already in meta.lastUpdated.
    """
    millis = time.time_ns() // 1_000_000
    rand = int.from_bytes(secrets.token_bytes(10), "big")  # 80 bits, 74 used
    value = (millis & (1 << 48) - 1) << 80 | 0x7 << 76 | (rand >> 62 & 0xFFF) << 64 | 0b10 << 62
    return uuid.UUID(int=value | rand & (1 << 62) - 1)


def new_resource_id() -> str:
    """The logical id of a resource the server creates (POST, conditional create, transaction entries)."""
    return str(time_ordered_uuid())
