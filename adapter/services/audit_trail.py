"""The audit trail as FHIR AuditEvent resources: read and search, for administrators only."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Engine

from adapter.errors import InvalidRequestError, NotFoundError
from adapter.fhirio import bundles
from adapter.search.dates import date_range, format_instant
from adapter.security.tenancy import AccessGuard
from adapter.services.paging import decode_position, encode_cursor
from adapter.store import audit_store


class AuditTrail:
    """Search by `agent-name` (client id), `entity` (Type/id), `date=ge...`, `_count`; newest first."""

    def __init__(
        self,
        engine: Engine,
        *,
        default_count: int = 50,
        max_count: int = 1000,
        flush: Callable[[], None] = lambda: None,
    ):
        self.engine = engine
        self.flush = flush
        self.default_count = default_count
        self.max_count = max_count

    def read(self, event_id: str, *, guard: AccessGuard) -> str:
        guard.require("AuditEvent", "r")
        self.flush()  # this process's queued records first, so that a reader sees its own past requests
        with self.engine.connect() as connection:
            # No event id holds a NUL, and PostgreSQL refuses one in a text parameter.
            content = None if "\x00" in event_id else audit_store.read(connection, event_id)
        if content is None:
            raise NotFoundError(f"AuditEvent/{event_id} is not known")
        return content

    def search(self, args: list[tuple[str, str]], base: str, *, guard: AccessGuard) -> str:
        guard.require("AuditEvent", "s")
        self.flush()
        client_id = entity = None
        since_us = before = None
        count = self.default_count
        for name, value in args:
            if "\x00" in name or "\x00" in value:
                # PostgreSQL refuses a NUL in a text parameter, and no stored value holds one.
                where = name if "\x00" not in name else repr(name)
                raise InvalidRequestError(f"{where}: a NUL character is not allowed", expression=where)
            if name == "agent-name":
                client_id = value
            elif name == "entity":
                entity = value
            elif name == "date":
                found = date_range(value[2:] if value[:2] in ("ge", "gt") else value)
                if found is None or value[:2] not in ("ge", "gt"):
                    raise InvalidRequestError(
                        "AuditEvent date takes ge<instant> or gt<instant>", expression="date"
                    )
                since_us = found[0]
            elif name == "_count":
                if not (value.isascii() and value.isdigit()):  # isdigit() alone accepts "²"
                    raise InvalidRequestError("_count must be a non-negative integer", expression="_count")
                count = min(int(value), self.max_count)
            elif name == "_page":
                before = decode_position(value)
            elif name not in ("_format", "_pretty"):
                raise InvalidRequestError(
                    f"AuditEvent search supports agent-name, entity, date, _count; not {name}"
                )
        with self.engine.connect() as connection:
            rows = audit_store.find(
                connection,
                client_id=client_id,
                entity=entity,
                since_us=since_us,
                before_seq=before,
                limit=count + 1,
            )
        path = f"{base}/AuditEvent"
        kept = [(n, v) for n, v in args if n != "_page"]
        qs = "&".join(f"{n}={v}" for n, v in kept)
        links = [("self", f"{path}?{qs}" if qs else path)]
        if count == 0:
            rows = []  # _count=0 asks for no entries; there is no total to give, nor a next page
        elif len(rows) > count:
            rows = rows[:count]
            links.append(("next", f"{path}?{qs + '&' if qs else ''}_page={encode_cursor(0, rows[-1][0])}"))
        import time

        entries = [(f"{base}/AuditEvent/{_event_id(content)}", content) for _, content in rows]
        return bundles.searchset(entries, total=None, links=links, now=format_instant(time.time_ns() // 1000))


def _event_id(content: str) -> str:
    # The id is the second member written ("resourceType", then "id"); avoid parsing the whole event.
    start = content.index('"id":"') + 6
    return content[start : content.index('"', start)]
