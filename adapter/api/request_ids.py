"""X-Request-Id (http.html#custom): the id the client gave its request, or one the server assigns.

Every response carries it and every audit record keeps it, so that a client's complaint about one
request leads the operator to its audit record and log lines.
"""

from __future__ import annotations

import re
import uuid

from flask import g, request

# A client's id is kept when it can travel back unchanged in a header and be stored in full: printable
# ASCII, not blank, at most 200 characters. Anything else is replaced rather than cut or escaped.
_USABLE = re.compile(r"[\x20-\x7e]{1,200}")


def request_id() -> str:
    """This request's id, decided once per request."""
    known = g.get("request_id")
    if known is None:
        given = request.headers.get("X-Request-Id", "")
        known = given if _USABLE.fullmatch(given) and given.strip() else uuid.uuid4().hex
        g.request_id = known
    return known
