"""Unit of work: one database transaction per service call, rolled back unless committed; a read sees
one snapshot throughout."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine

from adapter.store.engine import snapshot_reads, write_transaction
from adapter.store.resources import ResourceStore

# Kept connections stay checked out of the engine's pool (5 connections, 10 more on demand): beyond
# this many idle ones, a reader gives its connection back, so that writers always find one.
_KEPT_READERS = 4


class UnitOfWork:
    """Hands out a ResourceStore bound to a transaction; commits only when the block ends cleanly."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self._reads = snapshot_reads(engine)
        self._sqlite = engine.dialect.name == "sqlite"
        # SQLite read connections kept between reads, owned by the process that opened them.
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
        if self._sqlite:
            with self._sqlite_read() as connection:
                yield ResourceStore(connection)
            return
        with self._reads.connect() as connection, connection.begin():
            yield ResourceStore(connection)

    @contextmanager
    def _sqlite_read(self) -> Iterator[Connection]:
        """A read transaction on a kept connection, begun and ended on the driver.

        A Task poll is one short SELECT; checking a connection out of the pool and SQLAlchemy's
        transaction bookkeeping around it cost more than the SELECT. The snapshot still spans the
        whole read: BEGIN here, and a statement SQLAlchemy runs joins it (the engine's begin hook
        leaves a driver already in a transaction alone).
        """
        if self._pid != os.getpid():  # forked: the parent's connections are not ours to use
            self._idle, self._pid = [], os.getpid()
        try:
            connection = self._idle.pop()
        except IndexError:
            connection = self.engine.connect()
        driver = connection.connection.driver_connection
        try:
            driver.execute("BEGIN")
            yield connection
        except BaseException:
            _end(connection, driver)
            connection.close()
            raise
        if _end(connection, driver) and len(self._idle) < _KEPT_READERS:
            self._idle.append(connection)
        else:
            connection.close()

    def close(self) -> None:
        """Close the kept read connections (the engine's dispose does not reach them)."""
        idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()


def _end(connection: Connection, driver: object) -> bool:
    """End the read transaction; whether the connection is fit to keep."""
    try:
        if connection.in_transaction():
            connection.rollback()  # SQLAlchemy ran a statement and so owns the transaction now
        if driver.in_transaction:  # type: ignore[attr-defined]
            driver.execute("ROLLBACK")  # type: ignore[attr-defined]
    except Exception:
        return False
    return True
