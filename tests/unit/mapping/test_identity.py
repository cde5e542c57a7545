"""Deterministic identities: re-sending the same data updates what it created, whatever the source."""

from __future__ import annotations

from adapter.mapping import MappingRegistry
from adapter.mapping.identity import identifier_query, stable_id
from tests.unit.mapping.conftest import MAPPINGS

ADT = (MAPPINGS / "fixtures/hl7v2-adt/a01-ins-utf8.hl7").read_bytes()
INS = "urn:oid:1.2.250.1.213.1.4.8"
COI = "https://cart-adapter.example.org/fhir/NamingSystem/coi"


def test_stable_ids_depend_on_type_system_and_value_only() -> None:
    first = stable_id("Patient", INS, "275036938312363")
    assert first == stable_id("Patient", INS, "275036938312363")
    assert (
        len(
            {
                first,
                stable_id("Patient", INS, "275036938312364"),
                stable_id("Observation", INS, "275036938312363"),
                stable_id("Patient", INS + "9", "275036938312363"),
            }
        )
        == 4
    )


def test_conditional_queries_encode_what_needs_it() -> None:
    assert identifier_query(INS, "275036938312363") == f"identifier={INS}|275036938312363"
    assert identifier_query("https://x.org/ipp", "A B&C") == "identifier=https://x.org/ipp|A%20B%26C"


def test_resending_a_message_gives_the_same_bundle(registry: MappingRegistry) -> None:
    assert registry.map("hl7v2-adt", ADT).bundle == registry.map("hl7v2-adt", ADT).bundle


def test_a_message_repeated_in_one_file_gives_each_resource_once(registry: MappingRegistry) -> None:
    result = registry.map("hl7v2-adt", ADT + ADT + ADT)
    assert result.mapped == 3
    assert [e["resource"]["resourceType"] for e in result.bundle["entry"]] == ["Organization", "Patient"]
    urls = [e["fullUrl"] for e in result.bundle["entry"]]
    assert len(set(urls)) == len(urls)


def test_upserts_are_conditional_puts_and_ensures_conditional_creates(registry: MappingRegistry) -> None:
    site, patient = registry.map("hl7v2-adt", ADT).bundle["entry"]
    assert site["request"] == {
        "method": "POST",
        "url": "Organization",
        "ifNoneExist": "identifier=https://finess.esante.gouv.fr|690784152",
    }
    assert "id" not in site["resource"]
    assert patient["request"] == {"method": "PUT", "url": f"Patient?identifier={INS}|275036938312363"}
    assert patient["resource"]["id"] == stable_id("Patient", INS, "275036938312363")
    assert patient["fullUrl"] == "urn:uuid:" + patient["resource"]["id"]
    assert patient["resource"]["managingOrganization"] == {"reference": site["fullUrl"]}


def test_every_source_names_the_same_patient_pathway_and_order(registry: MappingRegistry) -> None:
    def urls(name: str, fixture: str, kind: str) -> set[str]:
        data = (MAPPINGS / "fixtures" / name / fixture).read_bytes()
        return {
            e["fullUrl"]
            for e in registry.map(name, data).bundle["entry"]
            if e["resource"]["resourceType"] == kind
        }

    patient = "urn:uuid:" + stable_id("Patient", INS, "275036938312363")
    careplan = "urn:uuid:" + stable_id(
        "CarePlan", "https://cart-adapter.example.org/pathway", "COI-FR-69-000042"
    )
    task = "urn:uuid:" + stable_id("Task", COI, "COI-FR-69-000042")
    for name, fixture in [
        ("hl7v2-siu", "appointments.hl7"),
        ("hl7v2-ras", "administrations.hl7"),
        ("csv-tracking", "tracking-sheet.csv"),
        ("json-export", "export.json"),
    ]:
        assert patient in urls(name, fixture, "Patient"), name
        assert careplan in urls(name, fixture, "CarePlan"), name
    for name, fixture in [
        ("hl7v2-order", "orders.hl7"),
        ("json-export", "export.json"),
        ("xml-reception", "receptions.xml"),
    ]:
        assert task in urls(name, fixture, "Task"), name


def test_the_cart_infusion_is_one_record_whatever_the_source(registry: MappingRegistry) -> None:
    def keys(name: str, fixture: str, resource_type: str) -> set[str]:
        data = (MAPPINGS / "fixtures" / name / fixture).read_bytes()
        return {
            e["resource"]["identifier"][0]["value"]
            for e in registry.map(name, data).bundle["entry"]
            if e["resource"]["resourceType"] == resource_type
            and any(i["system"] == COI for i in e["resource"]["identifier"])
        }

    # The act: the pharmacy's RAS and the unit's sheet name one infusion Procedure (COI and day).
    assert keys("hl7v2-ras", "administrations.hl7", "Procedure") == {"COI-FR-69-000042-infusion-2025-05-10"}
    assert "COI-FR-69-000042-infusion-2025-05-10" in keys("csv-tracking", "tracking-sheet.csv", "Procedure")
    # The product administration (bag and cell dose, which the sheet does not have): RAS and the export.
    assert keys("hl7v2-ras", "administrations.hl7", "MedicationAdministration") == {
        "COI-FR-69-000042-cart-2025-05-10"
    }
    assert keys("json-export", "export.json", "MedicationAdministration") == {
        "COI-FR-69-000077-cart-2025-11-18"
    }
    assert keys("csv-tracking", "tracking-sheet.csv", "MedicationAdministration") == set()


def test_a_reception_moves_the_stored_order_task_and_keeps_the_rest(registry: MappingRegistry) -> None:
    from tests.unit.mapping.conftest import FakeLookup

    store = FakeLookup()
    store.store(
        registry.map("hl7v2-order", (MAPPINGS / "fixtures/hl7v2-order/orders.hl7").read_bytes()).bundle
    )
    bundle = registry.map(
        "xml-reception", (MAPPINGS / "fixtures/xml-reception/receptions.xml").read_bytes(), lookup=store
    ).bundle
    task = next(
        e
        for e in bundle["entry"]
        if e["resource"]["resourceType"] == "Task"
        and e["resource"]["identifier"][0]["value"] == "COI-FR-69-000042"
    )
    resource = task["resource"]
    assert resource["businessStatus"]["coding"][0]["code"] == "product-received"
    assert resource["owner"] and resource["requester"] and resource["focus"]  # from the order, kept
    assert {"system": "https://cart-adapter.example.org/order", "value": "CMD-2025-0042"} in resource[
        "identifier"
    ]
    assert task["request"]["ifMatch"] == 'W/"1"'


def test_stable_ids_are_rfc4122_version5_uuids() -> None:
    import uuid

    from adapter.mapping.identity import NAMESPACE

    for args in [("Patient", INS, "275036938312363"), ("CarePlan", "https://x.org/p", "COI-é")]:
        assert stable_id(*args) == str(uuid.uuid5(NAMESPACE, "|".join(args)))


def test_resources_share_no_mutable_part(registry: MappingRegistry) -> None:
    data = (MAPPINGS / "fixtures/hl7v2-siu/appointments.hl7").read_bytes()
    first, second = (
        e["resource"]
        for e in registry.map("hl7v2-siu", data).bundle["entry"]
        if e["resource"]["resourceType"] == "CarePlan"
    )
    first["activity"][1]["detail"]["code"]["coding"][0]["code"] = "changed"
    assert second["activity"][1]["detail"]["code"]["coding"][0]["code"] == "bridging-therapy"
    again = registry.map("hl7v2-siu", data).bundle["entry"]
    plans = [e["resource"] for e in again if e["resource"]["resourceType"] == "CarePlan"]
    assert plans[0]["activity"][1]["detail"]["code"]["coding"][0]["code"] == "bridging-therapy"
