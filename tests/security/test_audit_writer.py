"""The audit writer keeps what the database cannot take now and drops only what it never will."""

from __future__ import annotations

import pytest
from sqlalchemy import exc, text

from adapter.security.audit import AuditRecord
from adapter.security.audit_writer import AuditWriter
from adapter.store.engine import make_engine


class _Database:
    def __init__(self) -> None:
        self.rows: list[str] = []
        self.away = False

    def write(self, batch: list[AuditRecord]) -> None:
        if self.away:
            raise exc.OperationalError("INSERT", None, ConnectionError("server closed the connection"))
        if any(r.entity == "unstorable" for r in batch):
            raise exc.DataError("INSERT", None, ValueError("value too long"))
        self.rows.extend(r.entity or "" for r in batch)  # a batch is one transaction: all or nothing


def _record(entity: str) -> AuditRecord:
    return AuditRecord("read", 200, 1, entity=entity)


def test_a_record_the_database_refuses_is_dropped_alone_and_later_records_are_written() -> None:
    database = _Database()
    writer = AuditWriter(database.write, interval_seconds=60)
    for entity in ("Task/1", "unstorable", "Task/2"):
        writer.record(_record(entity))
    writer.flush()
    assert database.rows == ["Task/1", "Task/2"]
    writer.record(_record("Task/3"))
    writer.flush()
    assert database.rows == ["Task/1", "Task/2", "Task/3"]
    writer.close()


def test_records_wait_while_the_database_is_away() -> None:
    database = _Database()
    writer = AuditWriter(database.write, interval_seconds=60)
    database.away = True
    writer.record(_record("Task/1"))
    writer.record(_record("unstorable"))
    writer.flush()
    assert database.rows == []
    database.away = False
    writer.record(_record("Task/2"))
    writer.flush()
    assert database.rows == ["Task/1", "Task/2"]
    writer.close()


def test_database_errors_do_not_list_the_values_they_were_given(database_url: str) -> None:
    # SQLAlchemy would add the bound values to an error's text; the database's own message may still
    # quote one (PostgreSQL's "Key (ins)=(...) already exists"), which is why errors are logged by type.
    engine = make_engine(database_url)
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE ins_probe (ins VARCHAR(20) PRIMARY KEY)"))
        connection.execute(text("INSERT INTO ins_probe VALUES (:ins)"), {"ins": "2680169123456"})
    message = ""
    try:
        with engine.begin() as connection:
            connection.execute(text("INSERT INTO ins_probe VALUES (:ins)"), {"ins": "2680169123456"})
    except exc.IntegrityError as error:
        message = str(error)
    assert message and "'ins': '2680169123456'" not in message
    with engine.begin() as connection:
        connection.execute(text("DROP TABLE ins_probe"))
    engine.dispose()


def test_the_audit_writer_logs_no_record_content(caplog: pytest.LogCaptureFixture) -> None:
    def refuse(batch: list[AuditRecord]) -> None:
        raise exc.DataError("INSERT", None, ValueError(f"cannot store {batch[0].entity}"))

    writer = AuditWriter(refuse, interval_seconds=60)
    writer.record(_record("Patient/2680169123456"))
    writer.flush()
    writer.close()
    assert "refused and dropped" in caplog.text
    assert "2680169123456" not in caplog.text
