"""Statements run on the driver's cursor, compiled by SQLAlchemy once: cached SELECTs (per dialect), and
on SQLite the INSERTs of a flush (DriverInserts).

A Task poll spends more time in SQLAlchemy's per-execution work (cache key, parameter processing,
result wrapping) than in the database. The search statements are already built once per shape
(search_sql); here each is also compiled once per dialect, and a request only binds values. Only
statements that need no per-value processing qualify: no expanding IN lists, no bind processors, and
callers that read results by position. Anything else goes through SQLAlchemy as usual.

What runs here does not pass through SQLAlchemy's cursor events (before_cursor_execute): statement
tracing hooked on those sees the probes, not the page and count queries nor SQLite's buffered INSERTs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Table, exc, func, select
from sqlalchemy.engine import Dialect
from sqlalchemy.sql import Select


@dataclass(frozen=True)
class _Compiled:
    sql: str
    names: tuple[str, ...]
    positional: bool
    # Values the statement itself carries (literals SQLAlchemy binds, such as the '' of a concat).
    fixed: dict[str, Any]

    def arguments(self, params: Mapping[str, Any]) -> Sequence[Any] | dict[str, Any]:
        fixed = self.fixed
        if self.positional:
            return tuple(params[name] if name in params else fixed[name] for name in self.names)
        return {name: params[name] if name in params else fixed[name] for name in self.names}


def _compile(stmt: Select, dialect: Dialect) -> _Compiled | None:
    compiled = stmt.compile(dialect=dialect)
    if compiled.post_compile_params or compiled.literal_execute_params or compiled.escaped_bind_names:
        return None
    fixed = {}
    for name, bind in compiled.binds.items():
        if bind.type.dialect_impl(dialect).bind_processor(dialect) is not None:
            return None
        if not bind.required:
            fixed[name] = bind.effective_value
    names = compiled.positiontup if compiled.positional else compiled.binds
    return _Compiled(compiled.string, tuple(names or ()), compiled.positional, fixed)


@dataclass
class CachedSelect:
    """A statement built once, with its compiled form per dialect (None: not runnable directly)."""

    stmt: Select
    compiled: dict[str, _Compiled | None] = field(default_factory=dict)

    def rows(self, connection: Connection, params: Mapping[str, Any]) -> list[Sequence[Any]]:
        """Result rows as tuples, read by position (no result processors are applied)."""
        dialect = connection.dialect
        try:
            direct = self.compiled[dialect.name]
        except KeyError:
            direct = self.compiled[dialect.name] = _compile(self.stmt, dialect)
        if direct is None:
            return [tuple(row) for row in connection.execute(self.stmt, params)]
        cursor = connection.connection.driver_connection.cursor()
        try:
            cursor.execute(direct.sql, direct.arguments(params))
            return cursor.fetchall()
        except dialect.loaded_dbapi.Error as error:
            raise _wrapped(connection, error, direct.sql, cursor) from error
        finally:
            cursor.close()


def _wrapped(connection: Connection, error: Exception, sql: str, cursor: Any) -> exc.DBAPIError:
    """The driver's error as SQLAlchemy would have raised it: the same exception classes reach the
    callers (a lost connection is a 503, not a 500), and a connection the server dropped is invalidated,
    so that the pool replaces it."""
    dialect = connection.dialect
    lost = dialect.is_disconnect(error, connection.connection.dbapi_connection, cursor)
    if lost:
        connection.invalidate()
    return exc.DBAPIError.instance(
        sql, None, error, dialect.loaded_dbapi.Error, connection_invalidated=lost, dialect=dialect
    )


@dataclass
class DriverInserts:
    """SQLite: many rows of one table through the driver's executemany, compiled by SQLAlchemy once.

    SQLAlchemy's executemany prepares every row's parameters in Python before the driver sees them,
    and asking it for the new rows' keys (RETURNING) makes it send one INSERT per row. Here the rows go
    to sqlite3 as tuples, and new keys are given by the caller (see next_keys). The columns' bind
    processors (Boolean to int, Float to float) change nothing the driver would not do itself for the
    bools and floats the store writes.
    """

    table: Table
    columns: tuple[str, ...]
    _sql: str = ""
    _order: tuple[str, ...] = ()  # the columns in the order of the statement's placeholders

    def run(self, connection: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
        if not self._sql:
            compiled = self.table.insert().compile(dialect=connection.dialect, column_keys=list(self.columns))
            order = tuple(compiled.positiontup or ())
            if sorted(order) != sorted(self.columns):
                raise ValueError(f"{self.table.name}: {order} compiled for columns {self.columns}")
            self._sql, self._order = compiled.string, order
        columns = self._order
        cursor = connection.connection.driver_connection.cursor()
        try:
            cursor.executemany(self._sql, [tuple(row[name] for name in columns) for row in rows])
        except connection.dialect.loaded_dbapi.Error as error:
            raise _wrapped(connection, error, self._sql, cursor) from error
        finally:
            cursor.close()


def next_keys(connection: Connection, table: Table, count: int) -> list[int]:
    """SQLite: the next `count` integer primary keys of `table`, for a writer holding the write lock.

    Every write transaction on SQLite begins IMMEDIATE, so no other writer can take these keys before
    this one commits; rows are never removed from the tables this serves (deletes are versions)."""
    (pk,) = table.primary_key.columns
    start = (connection.execute(select(func.max(pk))).scalar() or 0) + 1
    return list(range(start, start + count))
