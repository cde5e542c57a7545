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


# Ids as clients generate them (UUIDs, counters, trace ids). Logs hold no patient data: a client's id of
# free text, which could hold a name, is left to the audit record, which keeps it in full.
_ID_LIKE = re.compile(r"[A-Za-z0-9._:/-]{1,100}")


def request_id_for_logs() -> str:
    """This request's id when it has the form of an id, else a pointer to the audit record."""
    known = request_id()
    return known if _ID_LIKE.fullmatch(known) else "(free text: see the audit record)"
