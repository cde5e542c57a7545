"""A FHIR client library written elsewhere (fhirpy) talks to a live server on a loopback port."""

from __future__ import annotations

from fhirpy import SyncFHIRClient

from tests import fixtures


def test_fhirpy_create_read_update_search_and_transaction(live_server):
    client = SyncFHIRClient(
        live_server.base, authorization=f"Bearer {live_server.token()}", requests_config={"timeout": 10}
    )

    patient = client.resource("Patient", **fixtures.patient("1850775123456", "Dubois", "Élodie"))
    patient.save()
    assert patient.id and patient["meta"]["versionId"] == "1"

    read = client.reference("Patient", patient.id).to_resource()
    assert read["name"][0]["given"][0] == "Élodie"

    read["gender"] = "female"
    read["birthDate"] = "1985-07-14"
    read.save()
    assert client.reference("Patient", patient.id).to_resource()["meta"]["versionId"] == "2"

    found = client.resources("Patient").search(identifier=f"{fixtures.INS_NIR}|1850775123456").fetch()
    assert [p.id for p in found] == [patient.id]
    assert client.resources("Patient").search(family="dubois").count() == 1

    # Conditional update through the search set, the way an interface engine without server ids works.
    org, created = (
        client.resources("Organization")
        .search(identifier=f"{fixtures.FINESS}|690781810")
        .update(client.resource("Organization", **fixtures.organization()))
    )
    assert created

    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": "urn:uuid:3c0fd6a4-3b43-4a57-9a35-3b8a0f1e2f10",
                "resource": fixtures.task(owner=f"Organization/{org.id}", order="ORD-CLIENT-1"),
                "request": {"method": "POST", "url": "Task"},
            },
            {
                "resource": {
                    "resourceType": "ServiceRequest",
                    "status": "active",
                    "intent": "order",
                    "subject": {"reference": f"Patient/{patient.id}"},
                    "basedOn": [],
                    "supportingInfo": [{"reference": "urn:uuid:3c0fd6a4-3b43-4a57-9a35-3b8a0f1e2f10"}],
                },
                "request": {"method": "POST", "url": "ServiceRequest"},
            },
        ],
    }
    bundle["entry"][1]["resource"].pop("basedOn")
    response = client.execute("", method="post", data=bundle)
    assert response["type"] == "transaction-response"
    assert [e["response"]["status"] for e in response["entry"]] == ["201 Created", "201 Created"]

    tasks = client.resources("Task").search(owner=f"Organization/{org.id}").fetch()
    assert len(tasks) == 1
    requests_ = client.resources("ServiceRequest").search(subject=f"Patient/{patient.id}").fetch()
    assert requests_[0]["supportingInfo"][0]["reference"] == f"Task/{tasks[0].id}"
