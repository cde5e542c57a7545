"""One request, one transaction: a read sees one snapshot of the database from its first statement on."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import ExitStack

import pytest
from sqlalchemy import func, select

from adapter.store.engine import make_engine
from adapter.store.migrate import upgrade
from adapter.store.schema import resources
from adapter.store.unit_of_work import UnitOfWork


@pytest.fixture
def unit_of_work() -> Iterator[Callable[[str], UnitOfWork]]:
    """Makes a unit of work on a migrated database; closes it and its engine after the test."""
    made: list[UnitOfWork] = []

    def make(url: str) -> UnitOfWork:
        engine = make_engine(url)
        upgrade(engine)
        made.append(UnitOfWork(engine))
        return made[-1]

    yield make
    for uow in made:
        uow.close()
        uow.engine.dispose()


def _insert(uow: UnitOfWork, res_id: str) -> None:
    with uow.writing() as store:
        store.connection.execute(
            resources.insert().values(
                res_type="Task",
                res_id=res_id,
                version_id=1,
                last_updated_us=1,
                deleted=False,
                content='{"resourceType":"Task"}',
            )
        )


def test_a_read_does_not_see_what_commits_while_it_runs(unit_of_work, database_url: str) -> None:
    uow = unit_of_work(database_url)
    _insert(uow, "t1")
    count = select(func.count()).select_from(resources)
    with uow.reading() as store:
        before = store.connection.execute(count).scalar_one()
        _insert(uow, "t2")  # another request commits in between
        # Page rows, the paging snapshot and the total must agree: the read keeps its snapshot.
        assert store.connection.execute(count).scalar_one() == before == 1
    with uow.reading() as store:
        assert store.connection.execute(count).scalar_one() == 2


def _driver_count(store) -> int:  # type: ignore[no-untyped-def]
    # As the cached search statements run: on the driver's cursor, below SQLAlchemy.
    cursor = store.connection.connection.driver_connection.cursor()
    try:
        cursor.execute("SELECT count(*) FROM resources")
        return cursor.fetchone()[0]
    finally:
        cursor.close()


def test_statements_on_the_driver_and_through_sqlalchemy_share_the_snapshot(
    unit_of_work, database_url: str
) -> None:
    uow = unit_of_work(database_url)
    _insert(uow, "t1")
    count = select(func.count()).select_from(resources)
    for _ in range(2):  # the second time on a kept connection
        with uow.reading() as store:
            first = _driver_count(store)
            _insert(uow, f"t-{first}")
            assert store.connection.execute(count).scalar_one() == first
            assert _driver_count(store) == first
        with uow.reading() as store:
            assert _driver_count(store) == first + 1


def test_a_read_that_fails_leaves_no_snapshot_behind(unit_of_work, database_url: str) -> None:
    uow = unit_of_work(database_url)
    _insert(uow, "t1")
    try:
        with uow.reading() as store:
            _driver_count(store)
            raise LookupError("the service gave up halfway")
    except LookupError:
        pass
    _insert(uow, "t2")
    with uow.reading() as store:
        assert _driver_count(store) == 2


def test_a_forked_worker_opens_its_own_read_connections(unit_of_work, tmp_path) -> None:  # type: ignore[no-untyped-def]
    # gunicorn forks workers from the process that built the app; a SQLite connection must not be
    # used by two processes.
    uow = unit_of_work(f"sqlite:///{tmp_path / 'store.sqlite3'}")
    _insert(uow, "t1")
    with uow.reading() as store:
        parent_connection = store.connection
        _driver_count(store)
    pid = os.fork()
    if pid == 0:  # the child reports through its exit status only
        try:
            with uow.reading() as store:
                ok = store.connection is not parent_connection and _driver_count(store) == 1
            os._exit(0 if ok else 1)
        except BaseException:
            os._exit(2)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    with uow.reading() as store:
        assert store.connection is parent_connection  # the parent keeps its own
        assert _driver_count(store) == 1


def test_kept_read_connections_are_few_and_closing_lets_them_go(unit_of_work, tmp_path) -> None:  # type: ignore[no-untyped-def]
    uow = unit_of_work(f"sqlite:///{tmp_path / 'store.sqlite3'}")
    with ExitStack() as stack:  # many reads at once, as gthread workers' threads would make
        stores = [stack.enter_context(uow.reading()) for _ in range(8)]
        assert len({id(store.connection) for store in stores}) == 8
    # Only a few stay out of the pool, which the writers share: it still has room for them.
    assert uow.engine.pool.checkedout() == 4
    _insert(uow, "t1")
    uow.close()
    assert uow.engine.pool.checkedout() == 0


@pytest.mark.postgres
def test_a_kept_connection_the_server_dropped_while_idle_is_replaced(
    unit_of_work, fresh_postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As the pool does at checkout: a kept connection idle for longer than the ping threshold (0 here)
    is pinged before a read uses it; one whose server process went away is replaced, and the read
    succeeds."""
    import adapter.store.unit_of_work as uow_module

    monkeypatch.setattr(uow_module, "PING_AFTER_IDLE_SECONDS", 0.0)
    uow = unit_of_work(fresh_postgres_url)
    admin = make_engine(fresh_postgres_url)
    _insert(uow, "t1")
    try:
        with uow.reading() as store:
            kept = store.connection
            pid = store.connection.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()
        with admin.connect() as connection:
            assert connection.exec_driver_sql(f"SELECT pg_terminate_backend({pid})").scalar_one()
        with uow.reading() as store:
            assert store.connection is not kept
            assert _driver_count(store) == 1
    finally:
        admin.dispose()


@pytest.mark.postgres
def test_statements_a_poll_repeats_stay_prepared_on_postgresql(unit_of_work, fresh_postgres_url: str) -> None:
    """psycopg prepares a statement run five times on a connection, so that PostgreSQL need not plan
    each poll again; ending reads with a rollback would make it forget them every time."""
    uow = unit_of_work(fresh_postgres_url)
    _insert(uow, "t1")
    for _ in range(8):
        with uow.reading() as store:
            assert _driver_count(store) == 1
    with uow.reading() as store:
        cursor = store.connection.connection.driver_connection.cursor()
        cursor.execute("SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE '%resources%'")
        assert cursor.fetchone()[0] == 1
        cursor.close()


def test_buffered_writes_land_on_their_own_resources(unit_of_work, database_url: str) -> None:
    """Heads, versions, index rows and labels of many new resources go out in one statement per table
    (on PostgreSQL as column arrays, whose INSERT ... SELECT returns keys in no promised order): each row
    must still reach the resource it was written for."""
    from adapter.search.extract import IndexRow
    from adapter.store.schema import resource_access, resource_versions, search_index

    uow = unit_of_work(database_url)
    ids = [f"task-{n:02d}" for n in range(40)]
    with uow.writing() as store:
        for n, res_id in enumerate(reversed(ids)):
            row = IndexRow("identifier", "urn:example", res_id)
            head = store.insert("Task", res_id, f'{{"id":"{res_id}"}}', 1000 + n, [row])
            store.add_labels(head.pk, [f"org-{res_id}"], existing=set())
    with uow.reading() as store:
        c = store.connection
        by_pk = dict(c.execute(select(resources.c.pk, resources.c.res_id)).all())
        assert sorted(by_pk.values()) == ids
        versions = c.execute(select(resource_versions.c.resource_pk, resource_versions.c.res_id)).all()
        assert sorted((by_pk[pk], res_id) for pk, res_id in versions) == [(i, i) for i in ids]
        index = c.execute(select(search_index.c.resource_pk, search_index.c.value)).all()
        assert sorted((by_pk[pk], value) for pk, value in index) == [(i, i) for i in ids]
        labels = c.execute(select(resource_access.c.resource_pk, resource_access.c.label)).all()
        assert sorted((by_pk[pk], label) for pk, label in labels) == [(i, f"org-{i}") for i in ids]
        contents = dict(c.execute(select(resources.c.res_id, resources.c.content)).all())
        assert all(contents[i] == f'{{"id":"{i}"}}' for i in ids)
