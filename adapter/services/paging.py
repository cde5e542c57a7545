"""Opaque paging cursors: the snapshot bound and the keyset position of the next page."""

from __future__ import annotations

import base64
import json

from adapter.errors import InvalidRequestError


def encode_cursor(snapshot: int, after: int | tuple[int | str | float, ...]) -> str:
    position = list(after) if isinstance(after, tuple) else [after]
    raw = json.dumps([2, snapshot, position], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(token: str) -> tuple[int, tuple[int | str | float, ...]]:
    """(snapshot, keyset position); the position has one value per sort column (integers; texts and
    decimals when sorted by text or number parameters)."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        version, snapshot, after = json.loads(raw)
        if (
            version != 2
            or not isinstance(snapshot, int)
            or not isinstance(after, list)
            or not 1 <= len(after) <= 10
            or not all(type(v) in (int, str, float) for v in after)
        ):
            raise ValueError
        return snapshot, tuple(after)
    except (ValueError, TypeError):
        raise InvalidRequestError(
            "the paging link is not valid; start the search again", expression="_page"
        ) from None


def decode_position(token: str) -> int:
    """The single keyset value of a cursor whose order has one column (history, audit trail)."""
    _, after = decode_cursor(token)
    if len(after) != 1 or type(after[0]) is not int:
        raise InvalidRequestError("the paging link belongs to another listing", expression="_page")
    return after[0]
