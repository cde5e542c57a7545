"""Profile constraints: cardinality, types, fixed/pattern, limits, reference targets, meta.profile."""

from __future__ import annotations

from decimal import Decimal

import pytest

from adapter.validation.registry import ProfileRegistry
from adapter.validation.validator import Validator

from .helpers import EX, element, errors, observation, patient, profile, where

SD = EX + "StructureDefinition/"
LOINC = "http://loinc.org"


@pytest.fixture(scope="module")
def validator() -> Validator:
    registry = ProfileRegistry()
    registry.add(
        profile(
            "StrictPatient",
            "Patient",
            [
                element("Patient.identifier", min=1, max="2"),
                element("Patient.name", min=1, max="1"),
                element("Patient.name.family", min=1, maxLength=10),
                element("Patient.gender", fixedCode="female"),
                element("Patient.birthDate", minValueDate="1900-01-01", maxValueDate="2030-12-31"),
                element("Patient.deceased[x]", max="0"),
                element(
                    "Patient.managingOrganization",
                    type=[{"code": "Reference", "targetProfile": [SD + "AcmeOrganization"]}],
                ),
                element(
                    "Patient.generalPractitioner",
                    type=[
                        {
                            "code": "Reference",
                            "targetProfile": ["http://hl7.org/fhir/StructureDefinition/Practitioner"],
                        }
                    ],
                ),
                element(
                    "Patient.multipleBirth[x]",
                    type=[{"code": "integer"}],
                    minValueInteger=1,
                    maxValueInteger=9,
                ),
            ],
        )
    )
    registry.add(profile("AcmeOrganization", "Organization", [element("Organization.name", min=1)]))
    registry.add(
        profile(
            "Haemoglobin",
            "Observation",
            [
                element(
                    "Observation.code",
                    patternCodeableConcept={"coding": [{"system": LOINC, "code": "718-7"}]},
                ),
                element("Observation.category", min=1),
                element("Observation.value[x]", type=[{"code": "Quantity"}], min=1),
                element("Observation.value[x].system", fixedUri="http://unitsofmeasure.org"),
                element("Observation.value[x].value", minValueDecimal=0, maxValueDecimal=30),
                element("Observation.subject", min=1),
            ],
        )
    )
    registry.add(
        profile(
            "FixedMeta",
            "Observation",
            [element("Observation.meta", min=1), element("Observation.meta.source", fixedUri="urn:lab:1")],
            base=SD + "Haemoglobin",
        )
    )
    return Validator(registry)


def _good_patient(**fields: object) -> dict:
    return (
        patient(
            identifier=[{"system": "urn:a", "value": "1"}],
            name=[{"family": "Lefèvre"}],
            gender="female",
            birthDate="1975-03-12",
        )
        | fields
    )


def test_conforming_patient(validator: Validator) -> None:
    assert validator.validate(_good_patient(), [SD + "StrictPatient"]) == []


def test_cardinality_narrowed_by_a_profile(validator: Validator) -> None:
    resource = _good_patient(
        identifier=[{"value": str(n)} for n in range(3)], name=[{"family": "A"}, {"family": "B"}]
    )
    issues = errors(validator.validate(resource, [SD + "StrictPatient"]))
    assert {(i.code, i.expression[0]) for i in issues} == {
        ("structure", "Patient.identifier"),
        ("structure", "Patient.name"),
    }
    missing = _good_patient()
    del missing["identifier"]
    assert where(errors(validator.validate(missing, [SD + "StrictPatient"]))) == ["Patient.identifier"]


def test_max_zero_and_restricted_choice_types(validator: Validator) -> None:
    issues = errors(validator.validate(_good_patient(deceasedBoolean=True), [SD + "StrictPatient"]))
    assert where(issues) == ["Patient.deceasedBoolean"]
    issues = errors(validator.validate(_good_patient(multipleBirthBoolean=True), [SD + "StrictPatient"]))
    assert "not allowed by the profile" in issues[0].diagnostics


def test_fixed_value(validator: Validator) -> None:
    issues = errors(validator.validate(_good_patient(gender="male"), [SD + "StrictPatient"]))
    assert [(i.code, i.expression[0]) for i in issues] == [("value", "Patient.gender")]


def test_max_length_and_min_max_values(validator: Validator) -> None:
    resource = _good_patient(
        name=[{"family": "Abcdefghijk"}], birthDate="1899-12-31", multipleBirthInteger=12
    )
    issues = errors(validator.validate(resource, [SD + "StrictPatient"]))
    assert {(i.code, i.expression[0]) for i in issues} == {
        ("too-long", "Patient.name[0].family"),
        ("value", "Patient.birthDate"),
        ("value", "Patient.multipleBirthInteger"),
    }


def test_reference_targets_restricted_by_profile(validator: Validator) -> None:
    resource = _good_patient(
        managingOrganization={"reference": "Practitioner/1"},
        generalPractitioner=[{"reference": "Organization/1"}, {"reference": "Practitioner/2"}],
    )
    issues = errors(validator.validate(resource, [SD + "StrictPatient"]))
    assert where(issues) == ["Patient.managingOrganization", "Patient.generalPractitioner[0]"]
    ok = _good_patient(managingOrganization={"reference": "Organization/acme", "display": "Acme"})
    assert validator.validate(ok, [SD + "StrictPatient"]) == []


def _hb(**fields: object) -> dict:
    return (
        observation(
            category=[
                {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                            "code": "laboratory",
                        }
                    ]
                }
            ],
            code={"coding": [{"system": LOINC, "code": "718-7", "display": "Hemoglobin"}], "text": "Hb"},
            subject={"reference": "Patient/1"},
            valueQuantity={
                "value": Decimal("13.2"),
                "unit": "g/dL",
                "system": "http://unitsofmeasure.org",
                "code": "g/dL",
            },
        )
        | fields
    )


def test_pattern_on_codeable_concept(validator: Validator) -> None:
    assert validator.validate(_hb(), [SD + "Haemoglobin"]) == []
    other = _hb(code={"coding": [{"system": LOINC, "code": "2345-7"}]})
    issues = errors(validator.validate(other, [SD + "Haemoglobin"]))
    assert [(i.code, i.expression[0]) for i in issues] == [("value", "Observation.code")]


def test_constraints_below_a_choice_datatype(validator: Validator) -> None:
    quantity = {"value": Decimal("31"), "unit": "g/dL", "system": "http://example.org/units", "code": "g/dL"}
    issues = errors(validator.validate(_hb(valueQuantity=quantity), [SD + "Haemoglobin"]))
    assert {i.expression[0] for i in issues} == {
        "Observation.valueQuantity.value",
        "Observation.valueQuantity.system",
    }
    issues = errors(validator.validate(_hb(valueQuantity=None) | {"valueString": "13"}, [SD + "Haemoglobin"]))
    assert "Observation.valueString" in where(issues)


def test_profile_deriving_from_a_profile(validator: Validator) -> None:
    derived = [SD + "FixedMeta"]
    assert validator.validate(_hb(meta={"source": "urn:lab:1"}), derived) == []
    issues = errors(validator.validate(_hb(meta={"source": "urn:lab:2"}, code={"text": "Hb"}), derived))
    assert {i.expression[0] for i in issues} == {"Observation.meta.source", "Observation.code"}


def test_meta_profile_is_used_and_base_checks_are_not_repeated(validator: Validator) -> None:
    resource = _hb(meta={"profile": [SD + "Haemoglobin"]}, status="done")
    issues = validator.validate(resource)
    assert [(i.code, i.expression[0]) for i in issues] == [("code-invalid", "Observation.status")]


def test_unknown_profiles(validator: Validator) -> None:
    explicit = validator.validate(_hb(), [SD + "Nope"])
    assert [(i.severity, i.code) for i in explicit] == [("error", "not-found")]
    declared = validator.validate(_hb(meta={"profile": [SD + "Nope"]}))
    assert [(i.severity, i.code) for i in declared] == [("warning", "not-found")]


def test_profile_for_another_type(validator: Validator) -> None:
    issues = errors(validator.validate(_hb(), [SD + "StrictPatient"]))
    assert "is for Patient, not Observation" in issues[0].diagnostics


def test_fixed_complex_value_is_exact() -> None:
    registry = ProfileRegistry()
    fixed = {"coding": [{"system": LOINC, "code": "718-7"}]}
    registry.add(
        profile("FixedCode", "Observation", [element("Observation.code", fixedCodeableConcept=fixed)])
    )
    validator = Validator(registry)
    assert validator.validate(observation(code=fixed), [SD + "FixedCode"]) == []
    extra = {"coding": [{"system": LOINC, "code": "718-7", "display": "Hb"}]}
    issues = errors(validator.validate(observation(code=extra), [SD + "FixedCode"]))
    assert [(i.code, i.expression[0]) for i in issues] == [("value", "Observation.code")]


def test_definitions_added_after_the_validator_was_built() -> None:
    registry = ProfileRegistry()
    validator = Validator(registry)
    late = SD + "LatePatient"
    assert [i.code for i in validator.validate(patient(), [late])] == ["not-found"]
    registry.add(profile("LatePatient", "Patient", [element("Patient.gender", min=1)]))
    assert where(errors(validator.validate(patient(), [late]))) == ["Patient.gender"]
