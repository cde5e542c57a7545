"""Cached SELECTs run on the driver's cursor: same rows as SQLAlchemy, and a fallback when they cannot."""

from __future__ import annotations

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, bindparam, exc, literal, select

from adapter.store.direct import CachedSelect, DriverInserts, next_keys
from adapter.store.engine import make_engine

_metadata = MetaData()
_items = Table(
    "direct_items",
    _metadata,
    Column("pk", Integer, primary_key=True),
    Column("kind", String(20), nullable=False),
    Column("label", String(20), nullable=False),
)


def _engine_with_rows(database_url: str):  # type: ignore[no-untyped-def]
    engine = make_engine(database_url)
    _metadata.create_all(engine)
    with engine.begin() as connection:
        connection.execute(
            _items.insert(),
            [
                {"pk": n, "kind": "Task" if n % 3 else "Patient", "label": f"org-{n % 4}"}
                for n in range(1, 41)
            ],
        )
    return engine


def test_a_statement_with_bound_values_and_literals_runs_on_the_driver(database_url: str) -> None:
    engine = _engine_with_rows(database_url)
    # The concat carries a literal that SQLAlchemy binds itself: it must reach the driver too.
    stmt = (
        select(_items.c.pk, _items.c.label)
        .where(
            _items.c.kind.concat(literal("")) == bindparam("kind"),
            _items.c.label.in_([bindparam("l0"), bindparam("l1")]),
        )
        .order_by(_items.c.pk)
        .limit(bindparam("limit"))
    )
    cached = CachedSelect(stmt)
    params = {"kind": "Task", "l0": "org-1", "l1": "org-3", "limit": 5}
    with engine.connect() as connection:
        expected = [tuple(row) for row in connection.execute(stmt, params)]
        assert [tuple(row) for row in cached.rows(connection, params)] == expected
        assert cached.compiled[engine.dialect.name] is not None  # the driver ran it
        # Other values, same compiled statement.
        other = {"kind": "Patient", "l0": "org-0", "l1": "org-2", "limit": 50}
        assert [tuple(row) for row in cached.rows(connection, other)] == [
            tuple(row) for row in connection.execute(stmt, other)
        ]
    assert expected == [(1, "org-1"), (5, "org-1"), (7, "org-3"), (11, "org-3"), (13, "org-1")]
    engine.dispose()


def test_an_expanding_list_goes_through_sqlalchemy(database_url: str) -> None:
    engine = _engine_with_rows(database_url)
    stmt = select(_items.c.pk).where(_items.c.pk.in_(bindparam("pks", expanding=True))).order_by(_items.c.pk)
    cached = CachedSelect(stmt)
    with engine.connect() as connection:
        assert [tuple(row) for row in cached.rows(connection, {"pks": [3, 1, 30]})] == [(1,), (3,), (30,)]
        assert [tuple(row) for row in cached.rows(connection, {"pks": [2]})] == [(2,)]
    assert cached.compiled[engine.dialect.name] is None
    engine.dispose()


def test_a_driver_error_reaches_the_caller_as_sqlalchemy_raises_it(database_url: str) -> None:
    engine = _engine_with_rows(database_url)
    cached = CachedSelect(select(_items.c.pk).where(_items.c.kind == bindparam("kind")))
    with engine.connect() as connection:
        assert cached.rows(connection, {"kind": "Task"})  # compiled for the driver
        connection.rollback()
        _metadata.drop_all(connection)
        with pytest.raises(exc.DBAPIError) as raised:
            cached.rows(connection, {"kind": "Task"})
        assert not raised.value.connection_invalidated
    engine.dispose()


@pytest.mark.postgres
def test_a_connection_the_server_dropped_is_invalidated(fresh_postgres_url: str) -> None:
    engine = _engine_with_rows(fresh_postgres_url)
    admin = make_engine(fresh_postgres_url)
    cached = CachedSelect(select(_items.c.pk).where(_items.c.kind == bindparam("kind")))
    try:
        with engine.connect() as connection:
            pid = connection.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()
            with admin.connect() as other:
                other.exec_driver_sql(f"SELECT pg_terminate_backend({pid})")
            # An OperationalError, which the API answers with 503 and Retry-After.
            with pytest.raises(exc.OperationalError) as raised:
                cached.rows(connection, {"kind": "Task"})
            assert raised.value.connection_invalidated
            assert connection.invalidated
        with engine.connect() as connection:  # the pool opened a new one
            assert cached.rows(connection, {"kind": "Task"})
    finally:
        engine.dispose()
        admin.dispose()


def test_driver_inserts_write_rows_in_the_tables_column_order_and_raise_as_sqlalchemy_does(tmp_path) -> None:  # type: ignore[no-untyped-def]
    engine = _engine_with_rows(f"sqlite:///{tmp_path / 'direct.sqlite3'}")
    inserts = DriverInserts(_items, ("label", "pk", "kind"))  # not the table's order
    with engine.begin() as connection:
        keys = next_keys(connection, _items, 2)
        assert keys == [41, 42]
        inserts.run(connection, [{"pk": k, "kind": "Task", "label": f"new-{k}"} for k in keys])
        rows = connection.execute(select(_items).where(_items.c.pk > 40).order_by(_items.c.pk)).all()
        assert [tuple(r) for r in rows] == [(41, "Task", "new-41"), (42, "Task", "new-42")]
        with pytest.raises(exc.IntegrityError):
            inserts.run(connection, [{"pk": 41, "kind": "Task", "label": "again"}])
    engine.dispose()
