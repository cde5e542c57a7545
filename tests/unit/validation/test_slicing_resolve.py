"""Type discriminators on resolve(): the referenced resource's type picks the slice, not the target's root."""

from __future__ import annotations

import pytest

from adapter.validation.registry import ProfileRegistry
from adapter.validation.validator import Validator

from .helpers import BASE, EX, NARRATIVE, element, errors, profile

SD = EX + "StructureDefinition/"
BDP_UUID = "urn:uuid:6f1c7c9e-2b7a-4a39-9d0e-3f1f5b0c8a11"


def _by_resolved_type(
    name: str, rules: str, path: str = "resolve()", target: str = BASE + "BiologicallyDerivedProduct"
) -> dict:
    # supportingInformation is Reference(Any); the slice narrows one repetition to the product.
    return profile(
        name,
        "MedicationAdministration",
        [
            element(
                "MedicationAdministration.supportingInformation",
                slicing={"discriminator": [{"type": "type", "path": path}], "rules": rules},
            ),
            element(
                "MedicationAdministration.supportingInformation:product",
                min=1,
                max="1",
                type=[{"code": "Reference", "targetProfile": [target]}],
            ),
        ],
    )


@pytest.fixture(scope="module")
def validator() -> Validator:
    registry = ProfileRegistry()
    registry.add(_by_resolved_type("ResolvedOpen", "open"))
    registry.add(_by_resolved_type("ResolvedClosed", "closed"))
    registry.add(_by_resolved_type("ResolvedThis", "open", path="$this.resolve()"))
    # A target that is itself a profile: its type (BiologicallyDerivedProduct) is what is compared.
    registry.add(profile("Bag", "BiologicallyDerivedProduct", []))
    registry.add(_by_resolved_type("ResolvedProfiled", "open", target=SD + "Bag"))
    return Validator(registry)


def _administration(*references: dict, profile_name: str | None = None) -> dict:
    resource = {
        "resourceType": "MedicationAdministration",
        "text": NARRATIVE,
        "status": "completed",
        "medicationCodeableConcept": {"text": "cilta-cel"},
        "subject": {"reference": "Patient/p1"},
        "effectiveDateTime": "2026-03-01",
        "supportingInformation": list(references),
    }
    if profile_name:
        resource["meta"] = {"profile": [SD + profile_name]}
    return resource


def _messages(validator: Validator, resource: dict, name: str | None = None) -> list[str]:
    profiles = [SD + name] if name else None
    return [i.diagnostics for i in errors(validator.validate(resource, profiles))]


@pytest.mark.parametrize("name", ["ResolvedOpen", "ResolvedThis", "ResolvedProfiled"])
def test_other_references_stay_out_of_the_slice(validator: Validator, name: str) -> None:
    # The reported bug: the Patient reference was counted in the product slice (2 > max 1) and then
    # checked against the slice's Reference(BiologicallyDerivedProduct).
    resource = _administration({"reference": "BiologicallyDerivedProduct/b1"}, {"reference": "Patient/p1"})
    assert _messages(validator, resource, name) == []


@pytest.mark.parametrize("name", ["ResolvedOpen", "ResolvedProfiled"])
def test_a_missing_product_is_reported(validator: Validator, name: str) -> None:
    resource = _administration({"reference": "Patient/p1"})
    assert _messages(validator, resource, name) == [
        "MedicationAdministration.supportingInformation: slice 'product' requires at least 1 item(s), found 0"
    ]


def test_two_products_exceed_the_slice_max(validator: Validator) -> None:
    resource = _administration(
        {"reference": "BiologicallyDerivedProduct/b1"},
        {"reference": "https://example.org/fhir/BiologicallyDerivedProduct/b2/_history/3"},
    )
    assert _messages(validator, resource, "ResolvedOpen") == [
        "MedicationAdministration.supportingInformation: slice 'product' allows at most 1 item(s), found 2"
    ]


def test_closed_slicing_rejects_references_of_other_types(validator: Validator) -> None:
    resource = _administration({"reference": "BiologicallyDerivedProduct/b1"}, {"reference": "Patient/p1"})
    assert _messages(validator, resource, "ResolvedClosed") == [
        "MedicationAdministration.supportingInformation[1]: item matches no slice, and the slicing is closed"
    ]


def test_a_logical_reference_is_judged_by_its_type(validator: Validator) -> None:
    logical = {"type": "BiologicallyDerivedProduct", "identifier": {"system": "urn:coi", "value": "C1"}}
    assert _messages(validator, _administration(logical), "ResolvedOpen") == []
    untyped = {"identifier": {"system": "urn:coi", "value": "C1"}}
    assert len(_messages(validator, _administration(untyped), "ResolvedOpen")) == 1


def test_a_contained_target_is_judged_by_its_resource_type(validator: Validator) -> None:
    resource = _administration({"reference": "#bag"}, {"reference": "#patient"})
    resource["contained"] = [
        {"resourceType": "BiologicallyDerivedProduct", "id": "bag"},
        {"resourceType": "Patient", "id": "patient"},
    ]
    assert _messages(validator, resource, "ResolvedOpen") == []


def _bundle(*resources: tuple[str, dict]) -> dict:
    entries = [
        {
            "fullUrl": full_url,
            "resource": resource,
            "request": {"method": "POST", "url": resource["resourceType"]},
        }
        for full_url, resource in resources
    ]
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


def test_a_bundle_internal_reference_takes_the_type_of_the_entry(validator: Validator) -> None:
    bag = {"resourceType": "BiologicallyDerivedProduct", "text": NARRATIVE}
    patient = {"resourceType": "Patient", "text": NARRATIVE}
    patient_uuid = "urn:uuid:0b5c8f7e-39a4-4d7e-a3b9-2d1f0c6e9a22"
    administration = _administration(
        {"reference": BDP_UUID}, {"reference": patient_uuid}, profile_name="ResolvedClosed"
    )
    bundle = _bundle((BDP_UUID, bag), (patient_uuid, patient), ("urn:uuid:1", administration))
    assert _messages(validator, bundle) == [
        "Bundle.entry[2].resource.supportingInformation[1]: item matches no slice, and the slicing is closed"
    ]
    # Swapped: the urn:uuid names no type, only the entry it points to does.
    administration["supportingInformation"] = [{"reference": patient_uuid}, {"reference": BDP_UUID}]
    assert _messages(validator, bundle) == [
        "Bundle.entry[2].resource.supportingInformation[0]: item matches no slice, and the slicing is closed"
    ]
    # Not in the Bundle: nothing tells what a urn:uuid points to, so it is no product.
    administration["supportingInformation"] = [{"reference": "urn:uuid:7d2e4c1a-0000-4000-8000-000000000000"}]
    found = _messages(validator, bundle)
    assert any("slice 'product' requires at least 1 item(s), found 0" in m for m in found)
