"""The audit trail table: append, and the admin's read of it."""

from __future__ import annotations

from sqlalchemy import Connection, select

from adapter.fhirio.jsonio import dump_json
from adapter.security.audit import AuditRecord, audit_event
from adapter.store.schema import audit_events


def append(connection: Connection, records: list[AuditRecord]) -> None:
    rows = []
    for record in records:
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
    if client_id:
        stmt = stmt.where(a.client_id == client_id)
    if entity:
        stmt = stmt.where(a.entity == entity)
    if since_us is not None:
        stmt = stmt.where(a.recorded_us >= since_us)
    if before_seq is not None:
        stmt = stmt.where(a.seq < before_seq)
    return [(seq, content) for seq, content in connection.execute(stmt.order_by(a.seq.desc()).limit(limit))]


def read(connection: Connection, event_id: str) -> str | None:
    a = audit_events.c
    return connection.execute(select(a.content).where(a.event_id == event_id)).scalar()
