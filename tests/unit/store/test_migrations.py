"""Alembic migrations build exactly the schema the code uses, and can be undone, on both databases."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, select

from adapter.store.engine import make_engine
from adapter.store.migrate import downgrade, upgrade
from adapter.store.schema import LOCK_SLOTS, conditional_locks, metadata


def test_upgrade_matches_metadata_and_downgrade_empties(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        upgrade(engine)
        with engine.connect() as connection:
            differences = compare_metadata(MigrationContext.configure(connection), metadata)
            assert differences == []
            slots = connection.execute(select(conditional_locks.c.slot)).scalars().all()
            assert sorted(slots) == list(range(LOCK_SLOTS))
        upgrade(engine)  # idempotent
        downgrade(engine, "base")
        tables = set(inspect(engine).get_table_names()) - {"alembic_version"}
        assert tables == set()
    finally:
        engine.dispose()


def test_sqlite_runs_in_wal_mode(tmp_path) -> None:  # type: ignore[no-untyped-def]
    engine = make_engine(f"sqlite:///{tmp_path / 'wal.sqlite3'}")
    try:
        with engine.connect() as connection:
            mode = connection.exec_driver_sql("PRAGMA journal_mode").scalar()
        assert mode == "wal"
    finally:
        engine.dispose()


def test_the_date_index_holds_date_rows_only(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        upgrade(engine)
        with engine.connect() as connection:
            if engine.dialect.name == "sqlite":
                sql = "SELECT sql FROM sqlite_master WHERE name = 'ix_search_date'"
            else:
                sql = (
                    "SELECT indexdef FROM pg_indexes"
                    " WHERE indexname = 'ix_search_date' AND schemaname = current_schema()"
                )
            definition = connection.exec_driver_sql(sql).scalar_one()
        assert "lo_us IS NOT NULL" in definition
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_a_pooled_connection_the_server_dropped_is_replaced_at_checkout(fresh_postgres_url: str) -> None:
    """Connections idle for longer than the ping threshold (0 here) are pinged before use; one whose
    server process was terminated is discarded and the caller gets a working one."""
    engine = make_engine(fresh_postgres_url, ping_after_idle_seconds=0)
    admin = make_engine(fresh_postgres_url)
    try:
        with engine.connect() as connection:
            pid = connection.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()
        with admin.connect() as connection:
            assert connection.exec_driver_sql(f"SELECT pg_terminate_backend({pid})").scalar_one()
        with engine.connect() as connection:
            assert connection.exec_driver_sql("SELECT pg_backend_pid()").scalar_one() != pid
            assert connection.exec_driver_sql("SELECT 1").scalar_one() == 1
    finally:
        engine.dispose()
        admin.dispose()
