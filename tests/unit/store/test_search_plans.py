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


def _plans(services, res_type: str, params: list[tuple[str, str]]) -> tuple[int, list[str]]:
    """The number of matches of a search, and the query plan lines of the statements it ran."""
    uow = services.fhir.uow
    statements: list[str] = []
    with uow.reading() as store:
        store.connection.connection.driver_connection.set_trace_callback(statements.append)
    page = services.fhir.search(res_type, params)
    with uow.reading() as store:
        driver = store.connection.connection.driver_connection
        driver.set_trace_callback(None)
        plan = [
            row[3]
            for statement in statements
            if statement.lstrip().startswith("SELECT")
            for row in driver.execute("EXPLAIN QUERY PLAN " + statement)
        ]
    return len(page.resources), plan


def test_missing_and_mixed_type_revincludes_read_the_partial_indexes(tmp_path: Path) -> None:
    # Each kind of index row has its own partial index (values, dates, numbers): a search on the mere
    # presence of a parameter must name the kind, or the database reads the whole index table.
    services = build_services(Settings(instance_path=tmp_path))
    upgrade(services.engine)
    tasks = [fixtures.task(business="delivered", order=f"ORD-{n}") for n in range(50)]
    tasks[0].pop("authoredOn", None)
    tasks[0].pop("businessStatus", None)
    services.bundles.process(_transaction(tasks), "http://localhost/fhir")
    for params, expected in (
        ([("business-status:missing", "true")], 1),
        ([("business-status:missing", "false")], 49),
        ([("authored-on:missing", "false")], 49),
        ([("authored-on:missing", "true")], 1),
    ):
        found, plan = _plans(services, "Task", [*params, ("_count", "100")])
        assert found == expected, params
        assert not [line for line in plan if line.startswith("SCAN search_index")], (params, plan)
    services.close()


def test_an_iterated_revinclude_over_several_types_reads_the_value_index(tmp_path: Path) -> None:
    services = build_services(Settings(instance_path=tmp_path))
    upgrade(services.engine)
    patient = {"fullUrl": "urn:uuid:4f1c0c8e-4d2f-4b7a-9a51-0c1e2d3f4a5b", "resource": fixtures.patient()}
    order = {
        "fullUrl": "urn:uuid:5a2d1e9f-6b3c-4c8d-8e7f-1a2b3c4d5e6f",
        "resource": dict(fixtures.service_request("x"), subject={"reference": patient["fullUrl"]}),
    }
    task = dict(
        fixtures.task(), focus={"reference": order["fullUrl"]}, **{"for": {"reference": patient["fullUrl"]}}
    )
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {**patient, "request": {"method": "POST", "url": "Patient"}},
            {**order, "request": {"method": "POST", "url": "ServiceRequest"}},
            {"resource": task, "request": {"method": "POST", "url": "Task"}},
        ],
    }
    services.bundles.process(bundle, "http://localhost/fhir")
    # Task:for and Task:focus from the Patient and the ServiceRequest the first step brought in.
    params = [("_revinclude", "ServiceRequest:subject"), ("_revinclude:iterate", "Task:focus")]
    uow = services.fhir.uow
    statements: list[str] = []
    with uow.reading() as store:
        store.connection.connection.driver_connection.set_trace_callback(statements.append)
    page = services.fhir.search("Patient", params)
    assert sorted(r.res_type for r in page.included) == ["ServiceRequest", "Task"]
    with uow.reading() as store:
        driver = store.connection.connection.driver_connection
        driver.set_trace_callback(None)
        mixed = [s for s in statements if "(search_index.system, search_index.value) IN" in s]
        assert mixed, statements
        plan = [row[3] for s in mixed for row in driver.execute("EXPLAIN QUERY PLAN " + s)]
    assert not [line for line in plan if line.startswith("SCAN search_index")], plan
    services.close()
