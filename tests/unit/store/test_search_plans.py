"""How SQLite runs the statements of a Task poll: the plans the search's speed rests on."""

from __future__ import annotations

from pathlib import Path

from adapter import build_services
from adapter.config import Settings
from adapter.store.migrate import upgrade
from tests import fixtures

MILESTONES = "https://cart-adapter.example.org/CodeSystem/order-milestone"


def _transaction(tasks: list[dict]) -> dict:
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [{"resource": t, "request": {"method": "POST", "url": "Task"}} for t in tasks],
    }


def test_a_poll_driven_by_a_business_status_reads_the_value_index_alone(tmp_path: Path) -> None:
    services = build_services(Settings(instance_path=tmp_path))
    upgrade(services.engine)
    # One manufacturer's many delivered orders and a few new ones: the new ones drive the search.
    tasks = [fixtures.task(business="delivered", order=f"ORD-{n}") for n in range(300)]
    tasks += [fixtures.task(business="order-received", order=f"NEW-{n}") for n in range(3)]
    services.bundles.process(_transaction(tasks), "http://localhost/fhir")
    uow = services.fhir.uow
    statements: list[str] = []
    with uow.reading() as store:  # the connection the next read is given back
        store.connection.connection.driver_connection.set_trace_callback(statements.append)
    page = services.fhir.search(
        "Task",
        [
            ("owner", "Organization/kite-eu"),
            ("business-status", f"{MILESTONES}|order-received"),
            ("_sort", "_lastUpdated"),
        ],
    )
    assert len(page.resources) == 3
    searches = [s for s in statements if s.lstrip().startswith("SELECT resources.pk")]
    assert len(searches) == 1
    with uow.reading() as store:
        driver = store.connection.connection.driver_connection
        driver.set_trace_callback(None)
        plan = [row[3] for row in driver.execute("EXPLAIN QUERY PLAN " + searches[0])]
    # The candidates' keys come from the index; no search_index table row is read for them.
    covering = (
        "SEARCH search_index USING COVERING INDEX ix_search_value"
        " (res_type=? AND param=? AND value=? AND system=?)"
    )
    assert covering in plan, plan
    services.close()
