"""Writes audit records off the request path: queued, then committed in batches by a background thread.

A poll should not wait for its own audit commit, so records go through an in-memory queue that a
thread drains every few tens of milliseconds into one transaction. A request that fails is recorded
all the same; what a hard crash of the process (SIGKILL, power loss) can lose is at most the last
batch interval. `sync=True` writes every record before the response leaves instead.
"""

from __future__ import annotations

import atexit
import logging
import threading
from collections.abc import Callable

from sqlalchemy import exc

from adapter.security.audit import AuditRecord

logger = logging.getLogger(__name__)


class AuditWriter:
    def __init__(
        self,
        write: Callable[[list[AuditRecord]], None],
        *,
        sync: bool = False,
        interval_seconds: float = 0.05,
        max_batch: int = 500,
    ):
        self._write = write
        self.sync = sync
        self.interval = interval_seconds
        self.max_batch = max_batch
        self._pending: list[AuditRecord] = []
        self._lock = threading.Lock()
        self._drain = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._stopping = False
        atexit.register(self.close)

    def record(self, record: AuditRecord) -> None:
        if self.sync or self._stopping:
            self._write([record])
            return
        with self._lock:
            self._pending.append(record)
            full = len(self._pending) >= self.max_batch
        self._ensure_thread()
        if full:
            self._wake.set()

    def flush(self) -> None:
        """Write everything queued now, in the caller's thread.

        Holding the drain lock for the whole take-and-write means a flush also waits for a batch the
        background thread has taken but not yet committed: after flush() returns, it is all readable.
        """
        with self._drain:
            self._drain_pending()

    def _drain_pending(self) -> None:
        while True:
            with self._lock:
                batch, self._pending = self._pending[: self.max_batch], self._pending[self.max_batch :]
            if not batch:
                return
            try:
                self._write(batch)
            except (exc.DataError, exc.IntegrityError):
                # The database refuses something in the batch, and would the next time too: kept, it
                # would block every later record. Write them one by one and drop only what it refuses.
                if not self._write_each(batch):
                    return
            except Exception as error:  # the database is away: keep the records for the next attempt
                logger.warning(
                    "audit trail: %d record(s) could not be written yet (%s)",
                    len(batch),
                    type(error).__name__,
                )
                with self._lock:
                    self._pending[:0] = batch
                return

    def _write_each(self, batch: list[AuditRecord]) -> bool:
        """Write records singly, dropping those the database refuses; False if it went away meanwhile
        (the rest are queued again)."""
        for n, record in enumerate(batch):
            try:
                self._write([record])
            except (exc.DataError, exc.IntegrityError) as error:
                # The type only: the message could quote the record's values.
                logger.error(
                    "audit trail: a %s record was refused and dropped (%s)",
                    record.interaction,
                    type(error).__name__,
                )
            except Exception:
                with self._lock:
                    self._pending[:0] = batch[n:]
                return False
        return True

    def close(self) -> None:
        """Write what is queued and stop the thread (shutdown, or an app torn down in tests)."""
        self._stopping = True
        self._wake.set()
        thread = self._thread
        if thread is not None and thread.is_alive() and thread is not threading.current_thread():
            thread.join(timeout=5)
        self.flush()
        atexit.unregister(self.close)

    def _ensure_thread(self) -> None:
        # A thread does not survive fork (a forked child sees it as not alive): each gunicorn worker
        # starts its own on first use.
        thread = self._thread
        if thread is not None and thread.is_alive():
            return
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            self._thread = threading.Thread(target=self._run, name="audit-writer", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while not self._stopping:
            self._wake.wait(self.interval)
            self._wake.clear()
            self.flush()
