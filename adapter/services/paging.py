"""Opaque paging cursors: the snapshot bound and the keyset position of the next page."""

from __future__ import annotations

import base64
import json

from adapter.errors import InvalidRequestError


def encode_cursor(snapshot: int, after: int) -> str:
    raw = json.dumps([1, snapshot, after], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(token: str) -> tuple[int, int]:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        version, snapshot, after = json.loads(raw)
        if version != 1 or not isinstance(snapshot, int) or not isinstance(after, int):
            raise ValueError
        return snapshot, after
    except (ValueError, TypeError):
        raise InvalidRequestError(
            "the paging link is not valid; start the search again", expression="_page"
        ) from None
