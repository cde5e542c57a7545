"""Patient/$everything: a patient's record in one searchset Bundle; on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from adapter.services import everything
from tests import fixtures
from tests.api.helpers import created, send
from tests.conftest import bearer_for


def _record(client, patient_id: str, query: str = "", **headers: str) -> dict:  # type: ignore[no-untyped-def]
    response = send(client, "GET", f"/fhir/Patient/{patient_id}/$everything{query}", **headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def _entries(bundle: dict) -> set[tuple[str, str, str]]:
    return {
        (e["resource"]["resourceType"], e["resource"].get("id", ""), e["search"]["mode"])
        for e in bundle["entry"]
        if e["search"]["mode"] != "outcome"
    }


def _pathway(client) -> dict[str, dict]:  # type: ignore[no-untyped-def]
    """A patient with an order, its Task, a procedure and a measurement; another patient's procedure."""
    made = {"org": created(client, {"resourceType": "Organization", "name": "Kite Pharma EU"})}
    made["doctor"] = created(client, {"resourceType": "Practitioner", "name": [{"family": "Durand"}]})
    made["patient"] = created(
        client,
        dict(fixtures.patient(), managingOrganization={"reference": f"Organization/{made['org']['id']}"}),
    )
    subject = {"reference": f"Patient/{made['patient']['id']}"}
    made["order"] = created(
        client,
        {
            "resourceType": "ServiceRequest",
            "status": "active",
            "intent": "order",
            "subject": subject,
            "requester": {"reference": f"Practitioner/{made['doctor']['id']}"},
        },
    )
    made["task"] = created(
        client,
        {
            "resourceType": "Task",
            "status": "requested",
            "intent": "order",
            "for": subject,
            "focus": {"reference": f"ServiceRequest/{made['order']['id']}"},
            "owner": {"reference": f"Organization/{made['org']['id']}"},
        },
    )
    made["apheresis"] = created(
        client, {"resourceType": "Procedure", "status": "completed", "subject": subject}
    )
    made["count"] = created(
        client,
        {"resourceType": "Observation", "status": "final", "code": {"text": "CD3+"}, "subject": subject},
    )
    other = created(client, fixtures.patient(ins="1720769654321"))
    made["elsewhere"] = created(
        client,
        {
            "resourceType": "Procedure",
            "status": "completed",
            "subject": {"reference": f"Patient/{other['id']}"},
        },
    )
    return made


def test_everything_gives_the_patient_its_compartment_its_tasks_and_what_they_refer_to(client):
    made = _pathway(client)
    bundle = _record(client, made["patient"]["id"])
    assert bundle["type"] == "searchset"
    assert bundle["entry"][0]["resource"] == made["patient"]  # the patient comes first, as stored
    expected = {
        ("Patient", made["patient"]["id"], "match"),
        ("ServiceRequest", made["order"]["id"], "match"),
        ("Task", made["task"]["id"], "match"),
        ("Procedure", made["apheresis"]["id"], "match"),
        ("Observation", made["count"]["id"], "match"),
        ("Organization", made["org"]["id"], "include"),
        ("Practitioner", made["doctor"]["id"], "include"),
    }
    assert _entries(bundle) == expected
    assert bundle["total"] == 5


def test_everything_narrows_by_type_and_by_last_update(client):
    made = _pathway(client)
    patient_id = made["patient"]["id"]
    tasks = _record(client, patient_id, "?_type=Task,Observation")
    assert {(t, i) for t, i, mode in _entries(tasks) if mode == "match"} == {
        ("Patient", patient_id),
        ("Task", made["task"]["id"]),
        ("Observation", made["count"]["id"]),
    }
    changed = send(client, "PUT", f"/fhir/Procedure/{made['apheresis']['id']}", made["apheresis"]).get_json()
    since = changed["meta"]["lastUpdated"].replace("+", "%2B")
    recent = _record(client, patient_id, f"?_since={since}")
    assert {(t, i) for t, i, mode in _entries(recent) if mode == "match"} == {
        ("Patient", patient_id),
        ("Procedure", made["apheresis"]["id"]),
    }


def test_everything_refuses_or_warns_about_what_it_does_not_take(client):
    patient_id = created(client, fixtures.patient())["id"]
    lenient = _record(client, patient_id, "?_count=10&start=2026-01-01")
    (outcome,) = [e["resource"] for e in lenient["entry"] if e["search"]["mode"] == "outcome"]
    assert {i["expression"][0] for i in outcome["issue"]} == {"_count", "start"}
    strict = send(
        client, "GET", f"/fhir/Patient/{patient_id}/$everything?_count=10", Prefer="handling=strict"
    )
    assert strict.status_code == 400 and strict.get_json()["issue"][0]["expression"] == ["_count"]
    for query, element in (("?_since=yesterday", "_since"), ("?_type=Nothing", "_type")):
        bad = send(client, "GET", f"/fhir/Patient/{patient_id}/$everything{query}")
        assert bad.status_code == 400 and bad.get_json()["issue"][0]["expression"] == [element]


def test_everything_of_a_patient_that_is_not_there(client):
    assert send(client, "GET", "/fhir/Patient/nobody/$everything").status_code == 404
    patient_id = created(client, fixtures.patient())["id"]
    assert send(client, "DELETE", f"/fhir/Patient/{patient_id}").status_code == 204
    assert send(client, "GET", f"/fhir/Patient/{patient_id}/$everything").status_code == 410


def test_a_record_larger_than_the_limit_is_cut_with_a_warning(client, monkeypatch):
    made = _pathway(client)
    monkeypatch.setattr(everything, "EVERYTHING_LIMIT", 2)
    bundle = _record(client, made["patient"]["id"])
    matches = [e for e in bundle["entry"] if e["search"]["mode"] == "match"]
    assert len(matches) == 3  # the patient and two resources of its record
    (outcome,) = [e["resource"] for e in bundle["entry"] if e["search"]["mode"] == "outcome"]
    assert outcome["issue"][0]["code"] == "too-costly"


def test_everything_in_xml_and_in_the_capability_statement(client):
    made = _pathway(client)
    response = send(client, "GET", f"/fhir/Patient/{made['patient']['id']}/$everything?_format=xml")
    assert response.status_code == 200 and response.data.count(b"<entry>") == 7
    patient = next(
        r
        for r in send(client, "GET", "/fhir/metadata").get_json()["rest"][0]["resource"]
        if r["type"] == "Patient"
    )
    assert [o["name"] for o in patient["operation"]] == ["everything"]


@pytest.mark.parametrize("path", ["/fhir/Patient/$everything", "/fhir/Task/{id}/$everything"])
def test_everything_elsewhere_says_where_it_is(client, path: str):
    patient_id = created(client, fixtures.patient())["id"]
    response = send(client, "GET", path.format(id=patient_id))
    assert response.status_code == 404
    assert "use GET [base]/Patient/[id]/$everything" in response.get_json()["issue"][0]["diagnostics"]


def test_everything_with_a_parameter_selection_gives_what_it_can_and_says_what_may_be_missing(
    tmp_path, database_url
):  # type: ignore[no-untyped-def]
    from adapter import create_app
    from adapter.config import Settings
    from adapter.search import params

    app = create_app(
        Settings(instance_path=tmp_path, database_url=database_url, search_parameters=("subject",))
    )
    try:
        client = app.test_client()
        client.environ_base["HTTP_AUTHORIZATION"] = bearer_for(app, "admin")
        patient = created(client, fixtures.patient())
        subject = {"reference": f"Patient/{patient['id']}"}
        measured = created(
            client,
            {"resourceType": "Observation", "status": "final", "code": {"text": "x"}, "subject": subject},
        )
        record = _record(client, patient["id"])
        matches = {(t, i) for t, i, mode in _entries(record) if mode == "match"}
        assert matches == {("Patient", patient["id"]), ("Observation", measured["id"])}
        (outcome,) = [e["resource"] for e in record["entry"] if e["search"]["mode"] == "outcome"]
        (issue,) = outcome["issue"]
        assert issue["code"] == "incomplete" and "Procedure" in issue["diagnostics"]
        rest = send(client, "GET", "/fhir/metadata").get_json()["rest"][0]
        assert "compartment" not in rest  # compartment search needs every parameter of its definition
    finally:
        app.extensions["cart_adapter"].close()
        params.configure(())
