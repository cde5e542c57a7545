"""Unit of work: one database transaction per service call, rolled back unless committed; a read sees
one snapshot throughout."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine

from adapter.store.engine import snapshot_reads, write_transaction
from adapter.store.resources import ResourceStore


class UnitOfWork:
    """Hands out a ResourceStore bound to a transaction; commits only when the block ends cleanly."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self._reads = snapshot_reads(engine)

    @contextmanager
    def writing(self) -> Iterator[ResourceStore]:
        with write_transaction(self.engine) as connection:
            store = ResourceStore(connection)
            yield store
            store.flush()  # buffered writes go out before the commit, or never

    @contextmanager
    def reading(self) -> Iterator[ResourceStore]:
        with self._reads.connect() as connection, connection.begin():
            yield ResourceStore(connection)
