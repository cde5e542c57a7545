"""Clients of every role on one fresh database, each with its own bearer token."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from adapter.fhirio.jsonio import dump_json
from tests.conftest import bearer_for

COI = "https://cart-adapter.example.org/fhir/NamingSystem/coi"
FINESS_X = "690781810"  # Hospices Civils de Lyon
FINESS_Y = "750712184"  # AP-HP Saint-Louis


class Caller:
    """Sends FHIR requests with one client's token."""

    def __init__(self, client, authorization: str):  # type: ignore[no-untyped-def]
        self.client = client
        self.authorization = authorization

    def __call__(self, method: str, url: str, resource: object | None = None, **headers: str):  # type: ignore[no-untyped-def]
        hdrs = {"Authorization": self.authorization, "Content-Type": "application/fhir+json"}
        hdrs.update({k.replace("_", "-"): v for k, v in headers.items()})
        data = (
            resource if isinstance(resource, bytes) else dump_json(resource) if resource is not None else None
        )
        return self.client.open(url, method=method, data=data, headers=hdrs)


@dataclass
class World:
    admin: Caller
    hospital_x: Caller
    hospital_y: Caller
    maker_a: Caller
    maker_b: Caller
    ids: dict[str, str]


def _patient(ins: str, family: str, given: str, coi: str | None = None) -> dict:
    identifiers = [{"use": "official", "system": "urn:oid:1.2.250.1.213.1.4.8", "value": ins}]
    if coi:
        identifiers.append({"system": COI, "value": coi})
    return {
        "resourceType": "Patient",
        "text": {
            "status": "generated",
            "div": f'<div xmlns="http://www.w3.org/1999/xhtml">{given} {family}</div>',
        },
        "identifier": identifiers,
        "name": [{"family": family, "given": [given]}],
        "telecom": [{"system": "phone", "value": "+33 6 12 34 56 78"}],
        "address": [{"line": ["3 quai des Célestins"], "city": "Lyon", "postalCode": "69002"}],
        "gender": "female",
        "birthDate": "1968-11-02",
    }


def order_and_task(patient_id: str, owner: str, order: str) -> tuple[dict, dict]:
    request = {
        "resourceType": "ServiceRequest",
        "status": "active",
        "intent": "order",
        "code": {"text": "CAR-T product order"},
        "subject": {"reference": f"Patient/{patient_id}", "display": "Mme Nom Secret"},
    }
    task = {
        "resourceType": "Task",
        "identifier": [{"system": "https://cart-adapter.example.org/order", "value": order}],
        "status": "requested",
        "intent": "order",
        "businessStatus": {"text": "requested"},
        "for": {"reference": f"Patient/{patient_id}"},
        "owner": {"reference": owner},
    }
    return request, task


@pytest.fixture
def world(app) -> World:  # type: ignore[no-untyped-def]
    client = app.test_client()
    admin = Caller(client, bearer_for(app, "sec-admin"))
    x = Caller(client, bearer_for(app, "hcl", "hospital", organization=FINESS_X))
    y = Caller(client, bearer_for(app, "aphp", "hospital", organization=FINESS_Y))
    scopes = (
        "system/Task.rus system/Patient.rs system/ServiceRequest.rs system/Observation.crs system/Device.crus"
    )
    a = Caller(
        client,
        bearer_for(
            app,
            "maker-a",
            "manufacturer",
            scopes,
            organization="Organization/mfr-a",
            patient_fields=("birthDate",),
        ),
    )
    b = Caller(client, bearer_for(app, "maker-b", "manufacturer", scopes, organization="Organization/mfr-b"))
    ids: dict[str, str] = {}

    def create(caller: Caller, resource: dict) -> str:
        response = caller("POST", f"/fhir/{resource['resourceType']}", resource)
        assert response.status_code == 201, response.data
        return response.get_json()["id"]

    ids["px1"] = create(x, _patient("2680169123456", "Martin", "Sophie", coi="COI-FR-69-000101"))
    ids["px2"] = create(x, _patient("1720769654321", "Bernard", "Luc"))
    request, task = order_and_task(ids["px1"], "Organization/mfr-a", "ORD-X-1")
    ids["srx1"] = create(x, request)
    task["focus"] = {"reference": f"ServiceRequest/{ids['srx1']}"}
    ids["tx1"] = create(x, task)
    ids["py1"] = create(y, _patient("2550275111222", "Petit", "Claire", coi="COI-FR-75-000007"))
    request, task = order_and_task(ids["py1"], "Organization/mfr-b", "ORD-Y-1")
    ids["sry1"] = create(y, request)
    task["focus"] = {"reference": f"ServiceRequest/{ids['sry1']}"}
    ids["ty1"] = create(y, task)
    return World(admin, x, y, a, b, ids)
