"""Opaque paging cursors: the snapshot bound and the keyset position of the next page."""

from __future__ import annotations

import base64
import json

from adapter.errors import InvalidRequestError

# Snapshots, sequence numbers and keys are 64-bit signed integers in the database, and its text holds
# neither NUL nor unpaired surrogates: a forged cursor holding a larger number, true (an int to Python)
# or such a text would fail in the driver instead of being refused here.
_MIN_INT, _MAX_INT = -(2**63), 2**63 - 1


def _fits(value: object) -> bool:
    if type(value) is int:
        return _MIN_INT <= value <= _MAX_INT
    if type(value) is str:
        return "\x00" not in value and value.encode("utf-8", "replace").decode("utf-8") == value
    return True


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
            or type(snapshot) is not int
            or not _fits(snapshot)
            or not isinstance(after, list)
            or not 1 <= len(after) <= 10
            or not all(type(v) in (int, str, float) and _fits(v) for v in after)
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
