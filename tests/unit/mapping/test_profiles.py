"""Mapped resources claim their CAR-T profile and conform to profiles/package; what cannot is refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from adapter.mapping import MappingRegistry
from adapter.mapping.fixtures import discover
from adapter.validation.loader import load_definitions
from adapter.validation.registry import ProfileRegistry
from adapter.validation.validator import Validator
from tests.unit.mapping.conftest import MAPPINGS, FakeLookup

PACKAGE = MAPPINGS.parent / "profiles" / "package"
SD = "https://cart-adapter.example.org/fhir/StructureDefinition/"
FIXTURES = [f for f in discover(MAPPINGS) if "bundle" in json.loads(f.expected_path.read_bytes())]
HL7 = MAPPINGS / "fixtures"

_BY_TYPE = {
    "Patient": "cart-patient",
    "CarePlan": "cart-pathway-careplan",
    "ServiceRequest": "cart-product-order",
    "Task": "cart-order-task",
    "BiologicallyDerivedProduct": "cart-product-bag",
}
_BY_CODE = {
    ("Procedure", "code", "leukapheresis"): "cart-apheresis-procedure",
    ("Procedure", "code", "cart-infusion"): "cart-infusion-procedure",
    ("Device", "type", "cryogenic-shipper"): "cart-cryogenic-shipper",
    ("Device", "type", "temperature-logger"): "cart-temperature-logger",
    ("Device", "type", "apheresis-machine"): "cart-apheresis-machine",
    ("MedicationAdministration", "category", "infusion"): "cart-product-administration",
}


def _codes(resource: dict, element: str) -> set[str]:
    return {c.get("code") for c in (resource.get(element) or {}).get("coding", [])}


def expected_profile(resource: dict) -> str | None:
    """The profile a mapped resource must claim, told from what it is (never from what it claims).

    The documented exceptions (mappings/README.md, "Profiles"): a chemotherapy administration claims
    cart-chemotherapy-administration only with a dose per m2; a shipper temperature without a value
    (cancelled) cannot claim cart-shipper-temperature; tocilizumab and lab results have no CAR-T profile.
    """
    kind = resource["resourceType"]
    if kind in _BY_TYPE:
        return SD + _BY_TYPE[kind]
    for (resource_type, element, code), profile in _BY_CODE.items():
        if kind == resource_type and code in _codes(resource, element):
            return SD + profile
    if kind == "Observation" and "shipper-temperature" in _codes(resource, "code"):
        return SD + "cart-shipper-temperature" if "valueQuantity" in resource else None
    if kind == "MedicationAdministration" and _codes(resource, "category") & {
        "lymphodepletion",
        "bridging-therapy",
    }:
        dose = (resource.get("dosage") or {}).get("dose") or {}
        return SD + "cart-chemotherapy-administration" if dose.get("code") == "mg/m2" else None
    return None


@pytest.fixture(scope="module")
def validator() -> Validator:
    return Validator(load_definitions([str(PACKAGE)], ProfileRegistry()))


def _errors(validator: Validator, bundle: dict) -> list[str]:
    return [
        f"{i.expression}: {i.diagnostics}"
        for i in validator.validate(bundle)
        if i.severity in ("error", "fatal")
    ]


@pytest.mark.parametrize("fixture", FIXTURES, ids=lambda f: f"{f.mapping}/{f.input_path.name}")
def test_every_fixture_maps_to_a_bundle_valid_against_the_cart_profiles(
    fixture, registry: MappingRegistry, validator: Validator
) -> None:
    bundle = registry.map(fixture.mapping, fixture.input_path.read_bytes(), fixture.content_type).bundle
    assert _errors(validator, bundle) == []  # warnings (narrative, extensible bindings) are allowed
    wrong = []
    for index, entry in enumerate(bundle["entry"]):
        resource = entry["resource"]
        claimed = (resource.get("meta") or {}).get("profile", [])
        expected = expected_profile(resource)
        if claimed != ([expected] if expected else []):
            wrong.append((index, resource["resourceType"], claimed, expected))
    assert wrong == []


def test_the_fixtures_exercise_every_profile_of_the_package(registry: MappingRegistry) -> None:
    claimed = {
        profile
        for fixture in FIXTURES
        for entry in registry.map(fixture.mapping, fixture.input_path.read_bytes()).bundle["entry"]
        for profile in (entry["resource"].get("meta") or {}).get("profile", [])
    }
    in_package = {
        json.loads(path.read_bytes())["url"]
        for path in PACKAGE.glob("StructureDefinition-*.json")
        if json.loads(path.read_bytes())["type"] != "Extension"
    }
    assert claimed == in_package


def test_a_reception_merged_into_the_stored_order_still_conforms(
    registry: MappingRegistry, validator: Validator
) -> None:
    store = FakeLookup()
    store.store(registry.map("hl7v2-order", (HL7 / "hl7v2-order/orders.hl7").read_bytes()).bundle)
    result = registry.map("xml-reception", (HL7 / "xml-reception/receptions.xml").read_bytes(), lookup=store)
    assert _errors(validator, result.bundle) == []
    tasks = [e["resource"] for e in result.bundle["entry"] if e["resource"]["resourceType"] == "Task"]
    assert {t["focus"]["reference"].split("/")[0] for t in tasks} == {"ServiceRequest"}
    assert all(not t["focus"]["reference"].startswith("ServiceRequest?") for t in tasks)  # the stored id


def test_a_reception_without_a_stored_order_is_rejected_when_the_store_is_asked(
    registry: MappingRegistry,
) -> None:
    result = registry.map(
        "xml-reception", (HL7 / "xml-reception/receptions.xml").read_bytes(), lookup=FakeLookup()
    )
    reasons = {r.location: r.issues[0] for r in result.rejected}
    first = reasons["/pui:receptions/pui:reception[1]"]
    assert first.message.startswith("no CAR-T order (ServiceRequest) with this chain of identity")
    assert first.source == "/pui:receptions/pui:reception[1], pui:coi"
    assert first.target == "Task.focus"
    # The reception's own fault is the one reported, even though its order is not stored either.
    assert reasons["/pui:receptions/pui:reception[2]"].message.startswith("the storage temperature must be")
    assert not any(e["resource"]["resourceType"] == "Task" for e in result.bundle["entry"])


def _ras(old: bytes, new: bytes) -> bytes:
    data = (HL7 / "hl7v2-ras/administrations.hl7").read_bytes()
    assert old in data
    return data.replace(old, new)


def _administrations(result) -> list[dict]:  # type: ignore[no-untyped-def]
    return [
        e["resource"]
        for e in result.bundle["entry"]
        if e["resource"]["resourceType"] == "MedicationAdministration"
    ]


def test_a_chemotherapy_claims_its_profile_only_with_a_dose_per_m2(
    registry: MappingRegistry, validator: Validator
) -> None:
    per_m2 = _ras(
        b"|FLUDA^Fludarabine^HCL-PHARMA|54|mg^mg^UCUM|", b"|FLUDA^Fludarabine^HCL-PHARMA|30|mg/m2^mg/m2^L|"
    )
    result = registry.map("hl7v2-ras", per_m2)
    assert _errors(validator, result.bundle) == []
    claims = {
        a["medicationCodeableConcept"]["coding"][0]["code"] + " " + a["dosage"]["dose"]["code"]: a.get("meta")
        for a in _administrations(result)
        if "lymphodepletion" in _codes(a, "category")
    }
    assert claims["L01BB05 mg/m2"] == {"profile": [SD + "cart-chemotherapy-administration"]}
    assert claims["L01AA01 mg"] is None  # the amount given, kept as sent: no body-surface area to divide by


@pytest.mark.parametrize(
    ("old", "new", "message", "source", "target"),
    [
        (
            b"|||||LOT-7781-A|||||CP",
            b"||||||||||CP",
            "a CAR-T product administration must name the bag given (administered-product): no lot in RXA-15",
            "message 3 (MSH-10 RAS0003), RXA #1, RXA-15",
            "MedicationAdministration.extension",
        ),
        (
            b"LOT-7781-A|||||CP\rRXR|IV^Intraveineuse",
            b"LOT-7781-A|||||CP",
            "no route of administration (RXR-1), which the CAR-T administration profiles require",
            "message 3 (MSH-10 RAS0003), RXA #1, RXR-1.1",
            "MedicationAdministration.dosage.route",
        ),
        (
            b"|YESCARTA^Yescarta^HCL-PHARMA|2|10*6/kg^",
            b"|YESCARTA^Yescarta^HCL-PHARMA||10*6/kg^",
            "a CAR-T product administration needs its cell dose: no administered amount in RXA-6",
            "message 3 (MSH-10 RAS0003), RXA #1, RXA-6",
            "MedicationAdministration.dosage.dose",
        ),
    ],
)
def test_a_car_t_administration_missing_what_its_profile_requires_is_rejected(
    registry: MappingRegistry, old: bytes, new: bytes, message: str, source: str, target: str
) -> None:
    result = registry.map("hl7v2-ras", _ras(old, new))
    (issue,) = next(r for r in result.rejected if r.location == "message 3 (MSH-10 RAS0003)").issues
    assert (issue.message, issue.source, issue.target) == (message, source, target)


def test_an_ins_without_its_identity_traits_is_rejected(registry: MappingRegistry) -> None:
    data = (HL7 / "hl7v2-adt/a01-ins-utf8.hl7").read_bytes()
    pid = next(s for s in data.split(b"\r") if s.startswith(b"PID|"))
    fields = pid.split(b"|")
    fields[7] = b""  # PID-7, the birth date
    result = registry.map("hl7v2-adt", data.replace(pid, b"|".join(fields)))
    (issue,) = result.rejected[0].issues
    assert issue.message == "an INS must come with the birth date it was qualified with (PID-7)"
    assert issue.source.endswith(", PID-7") and issue.target == "Patient.birthDate"


def test_a_shipper_temperature_must_name_its_shipper(registry: MappingRegistry) -> None:
    data = (HL7 / "hl7v2-oru/results.hl7").read_bytes()
    result = registry.map("hl7v2-oru", data.replace(b"||||DSH-4471^CXV1^CRYOPORT~TL-55612^^CRYOPORT", b""))
    issue = next(r for r in result.rejected if "ORU0002" in r.location).issues[0]
    assert issue.message.startswith("a shipper temperature must name the shipper")
    assert issue.target == "Observation.device"


def test_the_profile_constants_name_structure_definitions_of_the_package() -> None:
    from adapter.mapping.specfiles import load_document

    constants = load_document(MAPPINGS / "constants.yaml")["constants"]
    urls = {json.loads(p.read_bytes())["url"] for p in Path(PACKAGE).glob("StructureDefinition-*.json")}
    named = {v for k, v in constants.items() if k.startswith("profile_") or k.endswith("_url")}
    assert named and named <= urls
