"""Compartment search (http.html search, compartments.html): [base]/Patient/[id]/[type], as the core
CompartmentDefinitions place resources in a compartment; on SQLite and PostgreSQL."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from tests import fixtures
from tests.api.helpers import created, send

AMBULATORY = {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"}


def _procedure(patient_id: str, status: str = "completed", *, via: str = "subject") -> dict:
    return {"resourceType": "Procedure", "status": status, via: {"reference": f"Patient/{patient_id}"}}


def _ids(bundle: dict) -> list[str]:
    return [e["resource"]["id"] for e in bundle.get("entry", []) if e["search"]["mode"] == "match"]


def _bundle(client, url: str) -> dict:  # type: ignore[no-untyped-def]
    response = send(client, "GET", url)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def test_a_patients_compartment_holds_what_any_of_its_parameters_points_at(client):
    patient = created(client, fixtures.patient())
    other = created(client, fixtures.patient())
    by_subject = created(client, _procedure(patient["id"]))
    # Observation joins the patient compartment by subject or by performer (a patient who measured).
    by_performer = created(
        client,
        {
            "resourceType": "Observation",
            "status": "final",
            "code": {"text": "temperature"},
            "performer": [{"reference": f"Patient/{patient['id']}"}],
        },
    )
    created(client, _procedure(other["id"]))
    created(client, {"resourceType": "Observation", "status": "final", "code": {"text": "x"}})

    assert _ids(_bundle(client, f"/fhir/Patient/{patient['id']}/Procedure")) == [by_subject["id"]]
    assert _ids(_bundle(client, f"/fhir/Patient/{patient['id']}/Observation")) == [by_performer["id"]]
    counted = _bundle(client, f"/fhir/Patient/{patient['id']}/Procedure?_summary=count")
    assert counted["total"] == 1 and "entry" not in counted


def test_compartment_search_combines_with_parameters_and_pages_through_its_links(client):
    patient = created(client, fixtures.patient())
    done = [created(client, _procedure(patient["id"]))["id"] for _ in range(5)]
    created(client, _procedure(patient["id"], "in-progress"))
    created(client, _procedure(created(client, fixtures.patient())["id"]))

    url = f"/fhir/Patient/{patient['id']}/Procedure?status=completed&_count=2&_sort=_lastUpdated"
    page = _bundle(client, url)
    assert page["total"] == 5
    assert page["link"][0]["url"].endswith(url)
    seen = _ids(page)
    while nxt := next((link["url"] for link in page["link"] if link["relation"] == "next"), None):
        # The next link stays in the compartment.
        assert urlsplit(nxt).path == f"/fhir/Patient/{patient['id']}/Procedure"
        page = _bundle(client, nxt.removeprefix("http://localhost"))
        seen += _ids(page)
    assert seen == done


def test_post_search_in_a_compartment_takes_a_form(client):
    patient = created(client, fixtures.patient())
    kept = created(client, _procedure(patient["id"], "in-progress"))
    created(client, _procedure(patient["id"]))
    response = client.post(
        f"/fhir/Patient/{patient['id']}/Procedure/_search",
        data={"status": "in-progress"},
        headers={"Accept": "application/fhir+json"},
    )
    assert response.status_code == 200
    assert _ids(response.get_json()) == [kept["id"]]


def test_an_absolute_reference_to_this_server_places_a_resource_in_the_compartment(client):
    patient = created(client, fixtures.patient())
    absolute = created(
        client,
        {
            "resourceType": "Procedure",
            "status": "completed",
            "subject": {"reference": f"http://localhost/fhir/Patient/{patient['id']}"},
        },
    )
    assert _ids(_bundle(client, f"/fhir/Patient/{patient['id']}/Procedure")) == [absolute["id"]]


def test_a_compartment_that_holds_its_own_resource_finds_it_by_id(client):
    encounter = created(client, {"resourceType": "Encounter", "status": "finished", "class": AMBULATORY})
    created(client, {"resourceType": "Encounter", "status": "finished", "class": AMBULATORY})
    found = _bundle(client, f"/fhir/Encounter/{encounter['id']}/Encounter")
    assert _ids(found) == [encounter["id"]]


def test_includes_work_inside_a_compartment(client):
    patient = created(client, fixtures.patient())
    order = created(
        client,
        {
            "resourceType": "ServiceRequest",
            "status": "active",
            "intent": "order",
            "subject": {"reference": f"Patient/{patient['id']}"},
        },
    )
    task = created(
        client,
        {
            "resourceType": "Task",
            "status": "requested",
            "intent": "order",
            "focus": {"reference": f"ServiceRequest/{order['id']}"},
        },
    )
    bundle = _bundle(client, f"/fhir/Patient/{patient['id']}/ServiceRequest?_revinclude=Task:focus")
    modes = {
        (e["resource"]["resourceType"], e["resource"]["id"], e["search"]["mode"]) for e in bundle["entry"]
    }
    assert modes == {("ServiceRequest", order["id"], "match"), ("Task", task["id"], "include")}


@pytest.mark.parametrize(
    ("path", "status", "message"),
    [
        ("/fhir/Patient/{id}/Task", 400, "Task is never in a Patient compartment in FHIR R4"),
        ("/fhir/Organization/{id}/Task", 400, "Organization is not a compartment"),
        ("/fhir/Patient/not_an_id/Procedure", 400, "'not_an_id' is not a valid FHIR id"),
        ("/fhir/Patient/{id}/NoSuchType", 404, "unknown resource type 'NoSuchType'"),
        ("/fhir/Patient/{id}/AuditEvent", 400, "the audit trail is searched at [base]/AuditEvent"),
    ],
)
def test_a_compartment_search_that_cannot_be_run_says_why(client, path: str, status: int, message: str):
    patient = created(client, fixtures.patient())
    response = send(client, "GET", path.format(id=patient["id"]))
    assert response.status_code == status
    assert message in response.get_json()["issue"][0]["diagnostics"]


def test_the_capability_statement_lists_the_compartments(client):
    rest = send(client, "GET", "/fhir/metadata").get_json()["rest"][0]
    assert "http://hl7.org/fhir/CompartmentDefinition/patient" in rest["compartment"]
    assert "http://hl7.org/fhir/CompartmentDefinition/encounter" in rest["compartment"]
