"""The search index follows the indexed parameters: a database indexed by an earlier definition is
rebuilt at start-up, once, and `db reindex` rebuilds it on demand."""

from __future__ import annotations

from sqlalchemy import delete, func, insert, select, update

from adapter import create_app
from adapter.config import Settings
from adapter.fhirio.jsonio import dump_json
from adapter.store import reindex
from adapter.store.engine import make_engine
from adapter.store.migrate import downgrade, upgrade
from adapter.store.schema import resources, search_index, store_state
from tests import fixtures
from tests.conftest import bearer_for

WORKFLOW = "https://hospital.example.org/tags"


def _tagged_tasks(tmp_path, database_url: str, count: int) -> list[str]:  # type: ignore[no-untyped-def]
    """Store `count` tagged Tasks and one deleted, through the API."""
    app = create_app(Settings(instance_path=tmp_path, database_url=database_url))
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = bearer_for(app, "admin")
    ids = []
    for n in range(count + 1):
        task = fixtures.task(order=f"ORD-{n:04d}")
        task["meta"] = {"tag": [{"system": WORKFLOW, "code": "urgent"}]}
        response = client.post(
            "/fhir/Task", data=dump_json(task), headers={"Content-Type": "application/fhir+json"}
        )
        assert response.status_code == 201, response.get_data(as_text=True)
        ids.append(response.get_json()["id"])
    assert client.delete(f"/fhir/Task/{ids.pop()}").status_code == 204
    services = app.extensions["cart_adapter"]
    services.close()
    return ids


def _rows(connection, param: str) -> int:  # type: ignore[no-untyped-def]
    return connection.execute(
        select(func.count()).select_from(search_index).where(search_index.c.param == param)
    ).scalar_one()


def _fingerprint(connection) -> str:  # type: ignore[no-untyped-def]
    return connection.execute(select(store_state.c.value).where(store_state.c.key == "search_index")).scalar()


def test_a_database_indexed_before_meta_parameters_gets_them_at_start_up(tmp_path, database_url) -> None:  # type: ignore[no-untyped-def]
    _tagged_tasks(tmp_path, database_url, 3)
    engine = make_engine(database_url)
    try:
        with engine.begin() as connection:
            statuses = _rows(connection, "status")
            assert _rows(connection, "_tag") == 3 and statuses == 3
            assert _fingerprint(connection) == reindex.index_definition()
            # As a database of the previous release: no _tag rows, no store state, and a row of a
            # parameter that is no longer indexed.
            connection.execute(delete(search_index).where(search_index.c.param == "_tag"))
            pk = connection.execute(select(func.min(resources.c.pk))).scalar_one()
            connection.execute(
                insert(search_index).values(resource_pk=pk, res_type="Task", param="retired", value="x")
            )
        downgrade(engine, "0004")
        upgrade(engine)
        with engine.begin() as connection:
            assert _rows(connection, "_tag") == 3
            assert _rows(connection, "status") == statuses
            assert _rows(connection, "retired") == 0
            assert _fingerprint(connection) == reindex.index_definition()
        # Current now: the next start-up does not rebuild.
        assert reindex.ensure_current(engine) is None
    finally:
        engine.dispose()


def test_a_changed_definition_rebuilds_and_a_forced_rebuild_counts_current_resources(
    tmp_path, database_url
) -> None:  # type: ignore[no-untyped-def]
    _tagged_tasks(tmp_path, database_url, 2)
    engine = make_engine(database_url)
    try:
        with engine.begin() as connection:
            connection.execute(update(store_state).values(value="an older definition"))
            connection.execute(delete(search_index))
        assert reindex.ensure_current(engine) == 2  # the deleted Task is not indexed
        with engine.begin() as connection:
            assert _rows(connection, "_tag") == 2
        assert reindex.rebuild(engine) == 2
        with engine.begin() as connection:
            assert _rows(connection, "_tag") == 2  # replaced, not doubled
    finally:
        engine.dispose()


def test_the_indexed_parameters_can_be_narrowed_and_the_index_follows(tmp_path, database_url) -> None:  # type: ignore[no-untyped-def]
    from adapter.search import params

    def app_with(codes: tuple[str, ...]):  # type: ignore[no-untyped-def]
        settings = Settings(instance_path=tmp_path, database_url=database_url, search_parameters=codes)
        app = create_app(settings)
        client = app.test_client()
        client.environ_base["HTTP_AUTHORIZATION"] = bearer_for(app, f"admin-{len(codes)}")
        return app, client

    def close(app) -> None:  # type: ignore[no-untyped-def]
        app.extensions["cart_adapter"].close()

    try:
        app, client = app_with(("priority",))
        task = fixtures.task()
        task.update(priority="urgent", executionPeriod={"start": "2026-03-10"})
        posted = client.post(
            "/fhir/Task", data=dump_json(task), headers={"Content-Type": "application/fhir+json"}
        )
        assert posted.status_code == 201
        assert client.get("/fhir/Task?priority=urgent").get_json()["total"] == 1
        # Not indexed: unknown to this server (400 under strict handling), and not in its statement.
        strict = client.get("/fhir/Task?period=ge2026-03-01", headers={"Prefer": "handling=strict"})
        assert strict.status_code == 400
        statement = client.get("/fhir/metadata").get_json()
        task_params = {
            p["name"]
            for r in statement["rest"][0]["resource"]
            if r["type"] == "Task"
            for p in r["searchParam"]
        }
        assert {"priority", "owner", "business-status", "identifier"} <= task_params
        assert "period" not in task_params and "_tag" not in task_params
        with app.extensions["cart_adapter"].engine.begin() as connection:
            assert _rows(connection, "period") == 0 and _rows(connection, "priority") == 1
        close(app)
        # Every parameter again: the start-up reindex brings the rows back.
        app, client = app_with(())
        assert (
            client.get("/fhir/Task?period=ge2026-03-01", headers={"Prefer": "handling=strict"}).get_json()[
                "total"
            ]
            == 1
        )
        close(app)
    finally:
        params.configure(())


def test_the_start_up_commands_index_with_the_configured_public_base(tmp_path, database_url) -> None:  # type: ignore[no-untyped-def]
    # `serve` and `db upgrade` bring the index up to date before any app exists: they must index with
    # CART_ADAPTER_PUBLIC_BASE_URL as the app does, or an absolute reference on that base stays
    # indexed as another server's until the next change of definition.
    from click.testing import CliRunner

    from adapter.cli import main
    from adapter.search import params

    base = "https://cart.example.org/fhir"
    app = create_app(Settings(instance_path=tmp_path, database_url=database_url))
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = bearer_for(app, "admin")
    observation = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"text": "ferritin"},
        "subject": {"reference": f"{base}/Patient/p1"},
    }
    posted = client.post(
        "/fhir/Observation", data=dump_json(observation), headers={"Content-Type": "application/fhir+json"}
    )
    assert posted.status_code == 201
    app.extensions["cart_adapter"].close()
    env = {
        "CART_ADAPTER_DATABASE_URL": database_url,
        "CART_ADAPTER_INSTANCE_PATH": str(tmp_path),
        "CART_ADAPTER_PUBLIC_BASE_URL": base,
    }
    try:
        result = CliRunner().invoke(main, ["db", "upgrade"], env=env)
        assert result.exit_code == 0, result.output
        engine = make_engine(database_url)
        try:
            with engine.begin() as connection:
                subjects = connection.execute(
                    select(search_index.c.value).where(search_index.c.param == "subject")
                ).scalars()
                assert list(subjects) == ["p1"]
                assert _fingerprint(connection) == reindex.index_definition()
        finally:
            engine.dispose()
    finally:
        params.configure(())
