"""Slicing: each discriminator type (value, pattern, type, exists, profile) and the slicing rules."""

from __future__ import annotations

import pytest

from adapter.validation.registry import ProfileRegistry
from adapter.validation.validator import Validator

from .helpers import EX, NARRATIVE, element, errors, observation, patient, profile, where

SD = EX + "StructureDefinition/"
INS = "urn:oid:1.2.250.1.213.1.4.8"
LOINC = "http://loinc.org"
CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"


def _slicing(path: str, kind: str, rules: str = "open", ordered: bool = False) -> dict:
    return {"discriminator": [{"type": kind, "path": path}], "rules": rules, "ordered": ordered}


@pytest.fixture(scope="module")
def validator() -> Validator:
    registry = ProfileRegistry()
    # value: identifier slices recognised by their fixed system; closed, so nothing else is allowed
    registry.add(
        profile(
            "ValueSliced",
            "Patient",
            [
                element("Patient.identifier", slicing=_slicing("system", "value", "closed")),
                element("Patient.identifier:INS", min=1, max="1"),
                element("Patient.identifier:INS.system", min=1, fixedUri=INS),
                element("Patient.identifier:INS.value", min=1),
                element("Patient.identifier:MRN", max="2"),
                element("Patient.identifier:MRN.system", fixedUri="urn:hospital:mrn"),
            ],
        )
    )
    # pattern: a category slice found by a CodeableConcept pattern, ordered and open at the end
    registry.add(
        profile(
            "PatternSliced",
            "Observation",
            [
                element(
                    "Observation.category", slicing=_slicing("$this", "pattern", "openAtEnd", ordered=True)
                ),
                element(
                    "Observation.category:lab",
                    min=1,
                    max="1",
                    patternCodeableConcept={"coding": [{"system": CATEGORY, "code": "laboratory"}]},
                ),
                element(
                    "Observation.category:vital",
                    patternCodeableConcept={"coding": [{"system": CATEGORY, "code": "vital-signs"}]},
                ),
            ],
        )
    )
    # type: Bundle entries sliced by the type of their resource
    registry.add(
        profile(
            "TypeSliced",
            "Bundle",
            [
                element("Bundle.entry", slicing=_slicing("resource", "type", "closed")),
                element("Bundle.entry:patient", min=1, max="1"),
                element("Bundle.entry:patient.resource", type=[{"code": "Patient"}]),
                element("Bundle.entry:observations"),
                element("Bundle.entry:observations.resource", type=[{"code": "Observation"}]),
            ],
        )
    )
    # exists: components with a value and components without one
    registry.add(
        profile(
            "ExistsSliced",
            "Observation",
            [
                element("Observation.component", slicing=_slicing("value", "exists", "closed")),
                element("Observation.component:measured", min=1),
                element("Observation.component:measured.value[x]", min=1, type=[{"code": "Quantity"}]),
                element("Observation.component:missing"),
                element("Observation.component:missing.value[x]", max="0"),
                element("Observation.component:missing.dataAbsentReason", min=1),
            ],
        )
    )
    # profile: contained resources recognised by the profile they conform to
    registry.add(profile("NamedOrganization", "Organization", [element("Organization.name", min=1)]))
    registry.add(
        profile(
            "ProfileSliced",
            "Patient",
            [
                element("Patient.contained", slicing=_slicing("$this", "profile")),
                element(
                    "Patient.contained:org",
                    min=1,
                    max="1",
                    type=[{"code": "Organization", "profile": [SD + "NamedOrganization"]}],
                ),
            ],
        )
    )
    return Validator(registry)


def _url(name: str) -> list[str]:
    return [SD + name]


def test_value_discriminator(validator: Validator) -> None:
    good = patient(
        identifier=[{"system": INS, "value": "275039912345697"}, {"system": "urn:hospital:mrn", "value": "9"}]
    )
    assert validator.validate(good, _url("ValueSliced")) == []
    missing = patient(identifier=[{"system": "urn:hospital:mrn", "value": "9"}])
    issues = errors(validator.validate(missing, _url("ValueSliced")))
    assert [(i.code, i.expression[0]) for i in issues] == [("required", "Patient.identifier")]
    assert "slice 'INS'" in issues[0].diagnostics


def test_slice_constraints_apply_to_matched_items(validator: Validator) -> None:
    resource = patient(identifier=[{"system": INS}])
    issues = errors(validator.validate(resource, _url("ValueSliced")))
    assert where(issues) == ["Patient.identifier[0].value"]


def test_slice_max_and_closed_rules(validator: Validator) -> None:
    mrn = {"system": "urn:hospital:mrn", "value": "1"}
    resource = patient(
        identifier=[{"system": INS, "value": "1"}, mrn, mrn, mrn, {"system": "urn:other", "value": "x"}]
    )
    issues = errors(validator.validate(resource, _url("ValueSliced")))
    assert {(i.code, i.expression[0]) for i in issues} == {
        ("structure", "Patient.identifier"),
        ("structure", "Patient.identifier[4]"),
    }
    assert any("closed" in i.diagnostics for i in issues)


def _category(code: str) -> dict:
    return {"coding": [{"system": CATEGORY, "code": code}]}


def test_pattern_discriminator_ordered_and_open_at_end(validator: Validator) -> None:
    good = observation(category=[_category("laboratory"), _category("vital-signs"), _category("imaging")])
    assert validator.validate(good, _url("PatternSliced")) == []
    unordered = observation(category=[_category("vital-signs"), _category("laboratory")])
    assert "ordered" in errors(validator.validate(unordered, _url("PatternSliced")))[0].diagnostics
    early = observation(category=[_category("imaging"), _category("laboratory")])
    issues = errors(validator.validate(early, _url("PatternSliced")))
    assert where(issues) == ["Observation.category[0]"]
    assert "openAtEnd" in issues[0].diagnostics
    missing = observation(category=[_category("imaging")])
    assert "slice 'lab'" in errors(validator.validate(missing, _url("PatternSliced")))[0].diagnostics


def _entry(resource: dict) -> dict:
    return {"resource": resource}


def test_type_discriminator(validator: Validator) -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [_entry(patient()), _entry(observation())],
    }
    assert validator.validate(bundle, _url("TypeSliced")) == []
    practitioner = {"resourceType": "Practitioner", "text": NARRATIVE}
    bundle["entry"] = [_entry(observation()), _entry(practitioner)]
    issues = errors(validator.validate(bundle, _url("TypeSliced")))
    assert {i.expression[0] for i in issues} == {"Bundle.entry", "Bundle.entry[1]"}


def test_exists_discriminator(validator: Validator) -> None:
    code = {"coding": [{"system": LOINC, "code": "8480-6"}]}
    measured = {"code": code, "valueQuantity": {"value": 120}}
    missing = {"code": code, "dataAbsentReason": {"text": "not measured"}}
    assert validator.validate(observation(component=[measured, missing]), _url("ExistsSliced")) == []
    issues = errors(validator.validate(observation(component=[missing]), _url("ExistsSliced")))
    assert "slice 'measured'" in issues[0].diagnostics
    wrong_type = {"code": code, "valueString": "high"}
    issues = errors(validator.validate(observation(component=[wrong_type]), _url("ExistsSliced")))
    assert "Observation.component[0].valueString" in where(issues)


def test_profile_discriminator(validator: Validator) -> None:
    named = {"resourceType": "Organization", "id": "o", "name": "Acme"}
    good = patient(contained=[named], managingOrganization={"reference": "#o"})
    assert validator.validate(good, _url("ProfileSliced")) == []
    anonymous = {"resourceType": "Organization", "id": "o", "identifier": [{"value": "1"}]}
    bad = patient(contained=[anonymous], managingOrganization={"reference": "#o"})
    issues = errors(validator.validate(bad, _url("ProfileSliced")))
    assert "slice 'org'" in issues[0].diagnostics


def test_core_vital_signs_profile_slices() -> None:
    validator = Validator()
    bp = observation(
        category=[_category("vital-signs")],
        code={"coding": [{"system": LOINC, "code": "85354-9"}]},
        subject={"reference": "Patient/1"},
        effectiveDateTime="2024-01-01T10:00:00Z",
        component=[
            {
                "code": {"coding": [{"system": LOINC, "code": code}]},
                "valueQuantity": {
                    "value": value,
                    "unit": "mmHg",
                    "system": "http://unitsofmeasure.org",
                    "code": "mm[Hg]",
                },
            }
            for code, value in (("8480-6", 120), ("8462-4", 80))
        ],
    )
    url = ["http://hl7.org/fhir/StructureDefinition/bp"]
    assert validator.validate(bp, url) == []
    bp["component"] = bp["component"][:1]
    issues = errors(validator.validate(bp, url))
    assert {i.diagnostics.split(": ", 1)[1] for i in issues} == {
        "minimum required = 2, but only found 1",
        "slice 'DiastolicBP' requires at least 1 item(s), found 0",
    }


def test_discriminator_through_an_extension_and_type_slices_on_a_choice() -> None:
    registry = ProfileRegistry()
    source = "http://example.org/fhir/StructureDefinition/source"
    registry.add(
        profile(
            "ExtensionDiscriminated",
            "Patient",
            [
                element(
                    "Patient.name",
                    slicing={
                        "discriminator": [{"type": "value", "path": f"extension('{source}').value"}],
                        "rules": "open",
                    },
                ),
                element("Patient.name:fromCard", min=1, max="1"),
                element(
                    "Patient.name:fromCard.extension",
                    slicing={"discriminator": [{"type": "value", "path": "url"}], "rules": "open"},
                ),
                element("Patient.name:fromCard.extension:source", min=1, max="1"),
                element("Patient.name:fromCard.extension:source.url", fixedUri=source),
                element(
                    "Patient.name:fromCard.extension:source.value[x]",
                    type=[{"code": "code"}],
                    fixedCode="card",
                ),
                element("Patient.name:fromCard.family", min=1),
            ],
        )
    )
    registry.add(
        profile(
            "TypeSlicedValue",
            "Observation",
            [
                element(
                    "Observation.value[x]",
                    slicing={"discriminator": [{"type": "type", "path": "$this"}], "rules": "closed"},
                ),
                element("Observation.value[x]:valueQuantity", type=[{"code": "Quantity"}]),
                element("Observation.value[x]:valueQuantity.unit", min=1),
                element("Observation.value[x]:valueString", type=[{"code": "string"}], maxLength=5),
            ],
        )
    )
    validator = Validator(registry)
    card = {"url": source, "valueCode": "card"}
    good = patient(name=[{"text": "nick"}, {"family": "Lefèvre", "extension": [card]}])
    assert validator.validate(good, _url("ExtensionDiscriminated")) == []
    no_family = patient(name=[{"given": ["H"], "extension": [card]}])
    assert where(errors(validator.validate(no_family, _url("ExtensionDiscriminated")))) == [
        "Patient.name[0].family"
    ]
    url = _url("TypeSlicedValue")
    assert validator.validate(observation(valueQuantity={"value": 1, "unit": "mg"}), url) == []
    assert where(errors(validator.validate(observation(valueQuantity={"value": 1}), url))) == [
        "Observation.valueQuantity.unit"
    ]
    assert where(errors(validator.validate(observation(valueString="too long"), url))) == [
        "Observation.valueString"
    ]
    issues = errors(validator.validate(observation(valueBoolean=True), url))
    assert "Observation.valueBoolean" in where(issues)
