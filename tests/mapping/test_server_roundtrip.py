"""Mapped Bundles through the real FHIR transaction endpoint: accepted, idempotent, CarePlan steps merged."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from adapter.fhirio.jsonio import parse_json
from adapter.mapping import MappingRegistry, StoredResource
from adapter.mapping.fixtures import discover
from adapter.mapping.specfiles import default_mappings_dir
from tests.api.helpers import send

MAPPINGS = default_mappings_dir()
FIXTURES = [
    f for f in discover(MAPPINGS) if "bundle" in parse_json(f.expected_path.read_bytes(), max_depth=128)
]


class HttpLookup:
    """The lookup the ingest endpoint gives the engine, here over the FHIR API of the test app."""

    def __init__(self, client) -> None:  # type: ignore[no-untyped-def]
        self.client = client

    def find(self, resource_type: str, system: str, value: str) -> StoredResource | None:
        query = quote(f"{system}|{value}", safe="")
        bundle = send(self.client, "GET", f"/fhir/{resource_type}?identifier={query}").get_json()
        if not bundle.get("entry"):
            return None
        resource = bundle["entry"][0]["resource"]
        return StoredResource(resource, resource.get("meta", {}).get("versionId"))


def post(client, bundle: dict) -> list[str]:  # type: ignore[no-untyped-def]
    response = send(client, "POST", "/fhir", bundle)
    assert response.status_code == 200, response.get_data(as_text=True)
    return [entry["response"]["status"] for entry in response.get_json()["entry"]]


def count(client, query: str) -> int:  # type: ignore[no-untyped-def]
    return len(send(client, "GET", f"/fhir/{query}").get_json().get("entry", []))


# What a fixture's Bundle refers to without building it, posted first: a reception points to its order by
# a conditional reference (ServiceRequest?identifier=COI), which the server refuses when nothing matches.
PREREQUISITES = {"xml-reception": [("hl7v2-order", "orders.hl7")]}


@pytest.mark.parametrize("fixture", FIXTURES, ids=lambda f: f"{f.mapping}/{f.input_path.name}")
def test_every_fixture_bundle_is_accepted_and_a_resend_creates_nothing(client, fixture) -> None:  # type: ignore[no-untyped-def]
    registry = MappingRegistry(MAPPINGS)
    for name, case in PREREQUISITES.get(fixture.mapping, []):
        post(client, registry.map(name, (MAPPINGS / "fixtures" / name / case).read_bytes()).bundle)
    bundle = registry.map(fixture.mapping, fixture.input_path.read_bytes()).bundle
    first = post(client, bundle)
    assert all(status.startswith(("200", "201")) for status in first)
    again = post(client, bundle)
    assert not any(status.startswith("201") for status in again)


def test_messages_from_several_sources_build_one_pathway(client) -> None:  # type: ignore[no-untyped-def]
    registry = MappingRegistry(MAPPINGS)
    lookup = HttpLookup(client)
    for name, fixture in [
        ("hl7v2-adt", "a01-ins-utf8.hl7"),
        ("hl7v2-order", "orders.hl7"),
        ("hl7v2-siu", "appointments.hl7"),
        ("hl7v2-ras", "administrations.hl7"),
        ("xml-reception", "receptions.xml"),
    ]:
        data = (MAPPINGS / "fixtures" / name / fixture).read_bytes()
        post(client, registry.map(name, data, lookup=lookup).bundle)
    ins = quote("urn:oid:1.2.250.1.213.1.4.8|275036938312363", safe="")
    assert count(client, f"Patient?identifier={ins}") == 1
    pathway = quote("https://cart-adapter.example.org/pathway|COI-FR-69-000042", safe="")
    plans = send(client, "GET", f"/fhir/CarePlan?identifier={pathway}").get_json()["entry"]
    assert len(plans) == 1
    steps = {
        a["detail"]["code"]["coding"][0]["code"]: a["detail"]["status"]
        for a in plans[0]["resource"]["activity"]
    }
    assert steps["apheresis"] == "scheduled"  # the appointment
    assert steps["lymphodepletion"] == "in-progress"  # the administrations
    assert steps["infusion"] == "completed"
    coi = quote("https://cart-adapter.example.org/fhir/NamingSystem/coi|COI-FR-69-000042", safe="")
    (task,) = send(client, "GET", f"/fhir/Task?identifier={coi}").get_json()["entry"]
    assert task["resource"]["businessStatus"]["coding"][0]["code"] == "product-received"
    assert task["resource"]["owner"]  # the manufacturer, from the order and the reception's product
    (order,) = send(client, "GET", f"/fhir/ServiceRequest?identifier={coi}").get_json()["entry"]
    assert task["resource"]["focus"]["reference"] == f"ServiceRequest/{order['resource']['id']}"
    # The administration names its bag by the id the reception (posted after it) wrote the bag at.
    administrations = send(client, "GET", "/fhir/MedicationAdministration").get_json()["entry"]
    (cart,) = [a["resource"] for a in administrations if a["resource"].get("extension")]
    bag = cart["extension"][0]["valueReference"]["reference"]
    assert send(client, "GET", f"/fhir/{bag}").get_json()["identifier"][0]["value"] == "LOT-7781-A"
