"""Unit of work: one database transaction per service call, rolled back unless committed; a read sees
one snapshot throughout."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine

from adapter.store.engine import PING_AFTER_IDLE_SECONDS, snapshot_reads, write_transaction
from adapter.store.resources import ResourceStore

# Kept connections stay checked out of the engine's pool (SQLite: 5 connections and 10 more on demand;
# PostgreSQL: 10 and 10): beyond this many idle ones, a reader gives its connection back, so that the
# writers always find one.
_KEPT_READERS = 4


class UnitOfWork:
    """Hands out a ResourceStore bound to a transaction; commits only when the block ends cleanly."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self._reads = snapshot_reads(engine)
        self._sqlite = engine.dialect.name == "sqlite"
        # Read connections kept between reads, owned by the process that opened them.
        self._idle: list[Connection] = []
        self._pid = os.getpid()

    @contextmanager
    def writing(self) -> Iterator[ResourceStore]:
        with write_transaction(self.engine) as connection:
            store = ResourceStore(connection)
            yield store
            store.flush()  # buffered writes go out before the commit, or never

    @contextmanager
    def reading(self) -> Iterator[ResourceStore]:
        with self._kept_read() as connection:
            yield ResourceStore(connection)

    @contextmanager
    def _kept_read(self) -> Iterator[Connection]:
        """A read transaction on a kept connection, begun and ended on the driver.

        A Task poll is one short SELECT; checking a connection out of the pool and SQLAlchemy's
        transaction bookkeeping around it cost more than the SELECT on SQLite, and a tenth of a poll
        on PostgreSQL. The snapshot still spans the whole read: SQLite begins here (and the engine's
        begin hook leaves a driver already in a transaction alone when SQLAlchemy runs a statement);
        psycopg begins at the first statement, at the REPEATABLE READ level the connection was given.
        """
        connection = self._borrow()
        driver = connection.connection.driver_connection
        try:
            if self._sqlite:
                driver.execute("BEGIN")
            yield connection
        except BaseException:
            self._end(connection, driver, failed=True)
            connection.close()
            raise
        if self._end(connection, driver) and len(self._idle) < _KEPT_READERS:
            connection.info["kept_since"] = time.monotonic()
            self._idle.append(connection)
        else:
            connection.close()

    def _borrow(self) -> Connection:
        if self._pid != os.getpid():  # forked: the parent's connections are not ours to use
            self._idle, self._pid = [], os.getpid()
        while self._idle:
            connection = self._idle.pop()
            idle = time.monotonic() - connection.info.get("kept_since", 0.0)
            # As the pool does at checkout: a PostgreSQL connection idle for a while is pinged first,
            # so that one the server dropped meanwhile is replaced rather than failing the request.
            if self._sqlite or idle < PING_AFTER_IDLE_SECONDS or self._alive(connection):
                return connection
            connection.invalidate()
            connection.close()
        return self._reads.connect()

    def _alive(self, connection: Connection) -> bool:
        try:
            self.engine.dialect.do_ping(connection.connection.dbapi_connection)
        except Exception:
            return False
        return True

    def _end(self, connection: Connection, driver: Any, *, failed: bool = False) -> bool:
        """End the read transaction; whether the connection is fit to keep.

        A read that went well commits, which for a read is the same as a rollback, except to psycopg:
        after a rollback it forgets the statements it prepared (a PREPARE in the transaction would be
        undone), so PostgreSQL would plan every poll again and psycopg deallocate each time."""
        try:
            if connection.in_transaction():
                # SQLAlchemy ran a statement and so owns the transaction now.
                if failed:
                    connection.rollback()
                else:
                    connection.commit()
            if not self._sqlite:
                if failed:
                    driver.rollback()
                else:
                    driver.commit()  # psycopg sends nothing when no transaction is open
            elif driver.in_transaction:
                driver.execute("ROLLBACK" if failed else "COMMIT")
        except Exception:
            return False
        return True

    def close(self) -> None:
        """Close the kept read connections (the engine's dispose does not reach them)."""
        idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()
