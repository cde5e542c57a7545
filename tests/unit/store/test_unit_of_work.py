"""One request, one transaction: a read sees one snapshot of the database from its first statement on."""

from __future__ import annotations

from sqlalchemy import func, select

from adapter.store.engine import make_engine
from adapter.store.migrate import upgrade
from adapter.store.schema import resources
from adapter.store.unit_of_work import UnitOfWork


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


def test_a_read_does_not_see_what_commits_while_it_runs(database_url: str) -> None:
    engine = make_engine(database_url)
    upgrade(engine)
    uow = UnitOfWork(engine)
    _insert(uow, "t1")
    count = select(func.count()).select_from(resources)
    with uow.reading() as store:
        before = store.connection.execute(count).scalar_one()
        _insert(uow, "t2")  # another request commits in between
        # Page rows, the paging snapshot and the total must agree: the read keeps its snapshot.
        assert store.connection.execute(count).scalar_one() == before == 1
    with uow.reading() as store:
        assert store.connection.execute(count).scalar_one() == 2
    engine.dispose()
