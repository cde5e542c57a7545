"""The audit trail table: append, and the admin's read of it."""

from __future__ import annotations

import dataclasses

from sqlalchemy import Connection, select

from adapter.fhirio.jsonio import dump_json
from adapter.security.audit import AuditRecord, audit_event
from adapter.store.schema import audit_events

_TEXT_FIELDS = (
    "interaction",
    "client_id",
    "role",
    "source_address",
    "entity",
    "query",
    "request_id",
    "detail",
)
_COLUMN_LENGTHS = {name: audit_events.c[name].type.length for name in ("client_id", "interaction", "entity")}


def _storable(text: str, length: int | None) -> str:
    if "\x00" in text or not text.isascii():
        text = text.replace("\x00", "\ufffd").encode("utf-8", "replace").decode("utf-8")
    if length is not None and len(text) > length:
        text = text[: length - 1] + "\u2026"
    return text


def _storable_record(record: AuditRecord) -> AuditRecord:
    """The record as both databases can hold it: a NUL (PostgreSQL refuses it in text) or a lone surrogate
    (not UTF-8) replaced, indexed columns cut to their length. These values come from the request (a
    mapping name, a client_id in an assertion); a record that cannot be written would stay at the head
    of the audit queue and block every record after it."""
    changes = {}
    for name in _TEXT_FIELDS:
        value = getattr(record, name)
        if value is not None:
            safe = _storable(value, _COLUMN_LENGTHS.get(name))
            if safe != value:
                changes[name] = safe
    return dataclasses.replace(record, **changes) if changes else record


def append(connection: Connection, records: list[AuditRecord]) -> None:
    rows = []
    for record in records:
        record = _storable_record(record)
        event = audit_event(record)
        rows.append(
            {
                "event_id": event["id"],
                "recorded_us": record.recorded_us,
                "client_id": record.client_id,
                "action": record.action,
                "interaction": record.interaction,
                "outcome": record.outcome,
                "entity": record.entity,
                "content": dump_json(event),
            }
        )
    if rows:
        connection.execute(audit_events.insert(), rows)


def find(
    connection: Connection,
    *,
    client_id: str | None = None,
    entity: str | None = None,
    since_us: int | None = None,
    before_seq: int | None = None,
    limit: int = 100,
) -> list[tuple[int, str]]:
    """(seq, AuditEvent JSON), newest first."""
    a = audit_events.c
    stmt = select(a.seq, a.content)
    # Searched as stored (cut to the column, see _storable_record): a long value still finds itself.
    if client_id:
        stmt = stmt.where(a.client_id == _storable(client_id, _COLUMN_LENGTHS["client_id"]))
    if entity:
        stmt = stmt.where(a.entity == _storable(entity, _COLUMN_LENGTHS["entity"]))
    if since_us is not None:
        stmt = stmt.where(a.recorded_us >= since_us)
    if before_seq is not None:
        stmt = stmt.where(a.seq < before_seq)
    return [(seq, content) for seq, content in connection.execute(stmt.order_by(a.seq.desc()).limit(limit))]


def read(connection: Connection, event_id: str) -> str | None:
    a = audit_events.c
    return connection.execute(select(a.content).where(a.event_id == event_id)).scalar()
