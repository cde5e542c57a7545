"""Engine creation for the configured database, with SQLite set up for a concurrent web service."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Connection, Engine, create_engine, event, exc
from sqlalchemy.engine import make_url

try:
    import fcntl
except ImportError:  # Windows: writers fall back on SQLite's own busy wait
    fcntl = None  # type: ignore[assignment]


# A pooled PostgreSQL connection idle for longer than this is pinged before use (see _ping_if_idle).
PING_AFTER_IDLE_SECONDS = 2.0


def make_engine(url: str, *, ping_after_idle_seconds: float = PING_AFTER_IDLE_SECONDS) -> Engine:
    """Create the engine for `url` (sqlite:///... or postgresql+psycopg://...).

    `hide_parameters`: a database error's text leaves out the bound values (identifiers, names, audit
    query strings), so that logging the error cannot put patient data in the logs."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(url)
    if parsed.drivername == "postgresql":
        # psycopg 3 is the supported driver; plain postgresql:// would pick psycopg2.
        url = parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    engine = create_engine(url, pool_size=10, max_overflow=10, hide_parameters=True)
    # A list of rows becomes multi-row INSERT statements, as SQLAlchemy already does for INSERT ...
    # RETURNING, instead of psycopg's executemany (one statement per row, even when pipelined).
    engine.dialect.use_insertmanyvalues_wo_returning = True
    _ping_if_idle(engine, ping_after_idle_seconds)
    return engine


def _ping_if_idle(engine: Engine, idle_seconds: float) -> None:
    """Ping a pooled connection at checkout only when it has been idle for a while.

    SQLAlchemy's pool_pre_ping pings at every checkout: a round trip on every request, a tenth of a
    poll. A connection used a moment ago is alive unless the server went away in that moment, and then
    the request fails like any request in flight at that time, and SQLAlchemy renews the pool.
    """

    @event.listens_for(engine, "checkin")
    def _checked_in(_dbapi_connection, record):  # type: ignore[no-untyped-def]
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checked_out(dbapi_connection, record, _proxy):  # type: ignore[no-untyped-def]
        idle_since = record.info.get("idle_since")
        if idle_since is None or time.monotonic() - idle_since < idle_seconds:
            return  # a new connection, or one used a moment ago
        try:
            alive = engine.dialect.do_ping(dbapi_connection)
        except Exception:
            alive = False
        if not alive:
            # The pool discards this connection and checks out (or opens) another.
            raise exc.DisconnectionError("pooled connection lost while idle")


def _sqlite_engine(url: str) -> Engine:
    database = make_url(url).database
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        url, connect_args={"timeout": 30, "check_same_thread": False}, hide_parameters=True
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):  # type: ignore[no-untyped-def]
        # Let SQLAlchemy, not the sqlite3 module, decide when transactions begin (savepoints need it).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA wal_autocheckpoint=10000")
        cursor.execute("PRAGMA mmap_size=1073741824")
        cursor.execute("PRAGMA cache_size=-65536")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):  # type: ignore[no-untyped-def]
        # A writer takes the write lock at BEGIN: two deferred writers that both read first would
        # otherwise deadlock on the upgrade, and SQLite would fail one of them at once.
        # On the driver's connection: every request begins one, and SQLAlchemy's statement machinery
        # around a bare BEGIN costs more than the BEGIN.
        driver = conn.connection.driver_connection
        if not driver.in_transaction:  # a kept read connection has begun on the driver already
            driver.execute("BEGIN IMMEDIATE" if conn.info.get("write") else "BEGIN")

    return engine


def snapshot_reads(engine: Engine) -> Engine:
    """The engine for read transactions: each sees one snapshot of the database from its first statement.

    SQLite's read transactions are snapshots already. PostgreSQL's default, READ COMMITTED, gives each
    statement its own: a search page, its paging bound and its total could disagree with a commit in
    between. REPEATABLE READ gives the read one snapshot; a transaction that only reads never fails
    for it. The level travels with the BEGIN, so it costs no round trip.
    """
    if engine.dialect.name == "postgresql":
        return engine.execution_options(isolation_level="REPEATABLE READ")
    return engine


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """A connection in a transaction that will write; it commits when the block ends cleanly.

    On SQLite only one writer runs at a time. Writers queue on an operating-system file lock beside the
    database before they begin: a waiting worker wakes the moment the lock is released, where SQLite's
    own busy handler would poll with sleeps of up to 100 ms and let a lucky newcomer overtake it.
    """
    with _writer_file_lock(engine), engine.connect() as connection:
        connection.info["write"] = True
        try:
            with connection.begin():
                yield connection
        finally:
            connection.info.pop("write", None)


@contextmanager
def _writer_file_lock(engine: Engine) -> Iterator[None]:
    database = engine.url.database if engine.dialect.name == "sqlite" else None
    if fcntl is None or not database or database == ":memory:" or database.startswith("file:"):
        yield
        return
    with open(database + "-writer.lock", "ab") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
