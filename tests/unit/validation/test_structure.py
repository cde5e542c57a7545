"""Base validation of shape: elements, JSON types, arrays, cardinality, choices, `_x` siblings, nesting."""

from __future__ import annotations

from decimal import Decimal

import pytest

from adapter.validation.validator import Validator

from .helpers import NARRATIVE, errors, observation, patient, where


def test_valid_patient_has_no_issues(core_validator: Validator) -> None:
    resource = patient(
        id="p1",
        active=True,
        name=[{"family": "Chalmers", "given": ["Peter", "James"]}],
        gender="male",
        birthDate="1974-12-25",
    )
    assert core_validator.validate(resource) == []


def test_unknown_elements_are_errors_with_their_path(core_validator: Validator) -> None:
    resource = patient(colour="blue", name=[{"family": "X", "nickname": "Y"}])
    issues = errors(core_validator.validate(resource))
    assert where(issues) == ["Patient.colour", "Patient.name[0].nickname"]
    assert all(i.code == "structure" for i in issues)


def test_json_types_of_primitives(core_validator: Validator) -> None:
    resource = patient(active="true", multipleBirthInteger=Decimal("2.0"), birthDate=19741225)
    issues = errors(core_validator.validate(resource))
    assert sorted(where(issues)) == ["Patient.active", "Patient.birthDate", "Patient.multipleBirthInteger"]


def test_primitive_formats_report_value_issues(core_validator: Validator) -> None:
    issues = errors(core_validator.validate(patient(birthDate="1974-02-30", id="bad id")))
    assert {(i.code, i.expression[0]) for i in issues} == {
        ("value", "Patient.birthDate"),
        ("value", "Patient.id"),
    }


def test_arrays_versus_single_values(core_validator: Validator) -> None:
    resource = patient(name={"family": "X"}, gender=["male"], telecom=[])
    issues = errors(core_validator.validate(resource))
    messages = {i.expression[0]: i.diagnostics for i in issues}
    assert "must be a JSON array" in messages["Patient.name"]
    assert "must not be a JSON array" in messages["Patient.gender"]
    assert "must not be empty" in messages["Patient.telecom"]


def test_missing_required_elements(core_validator: Validator) -> None:
    resource = {"resourceType": "Observation", "text": NARRATIVE}
    issues = errors(core_validator.validate(resource))
    assert {(i.code, i.expression[0]) for i in issues} == {
        ("required", "Observation.status"),
        ("required", "Observation.code"),
    }


def test_required_element_inside_a_backbone_element(core_validator: Validator) -> None:
    resource = observation(component=[{"valueString": "no code"}])
    assert where(errors(core_validator.validate(resource))) == ["Observation.component[0].code"]


def test_choice_type_only_one_and_only_allowed_types(core_validator: Validator) -> None:
    two = patient(deceasedBoolean=False, deceasedDateTime="2020-01-01")
    assert "only one type of deceased[x]" in errors(core_validator.validate(two))[0].diagnostics
    wrong = patient(deceasedString="yes")
    assert where(errors(core_validator.validate(wrong))) == ["Patient.deceasedString"]


def test_choice_value_is_checked_with_its_type(core_validator: Validator) -> None:
    resource = observation(valueQuantity={"value": "7.2", "unit": "g/dL"})
    assert where(errors(core_validator.validate(resource))) == ["Observation.valueQuantity.value"]


def test_primitive_extension_siblings(core_validator: Validator) -> None:
    birth_time = {
        "extension": [
            {
                "url": "http://hl7.org/fhir/StructureDefinition/patient-birthTime",
                "valueDateTime": "1974-12-25T14:35:45-05:00",
            }
        ]
    }
    assert core_validator.validate(patient(birthDate="1974-12-25", _birthDate=birth_time)) == []
    only_extension = patient(_birthDate=birth_time)
    assert errors(core_validator.validate(only_extension)) == []
    qualifier = {"url": "http://hl7.org/fhir/StructureDefinition/iso21090-EN-qualifier", "valueCode": "CL"}
    aligned = patient(name=[{"given": ["A", None], "_given": [None, {"id": "g2", "extension": [qualifier]}]}])
    assert errors(core_validator.validate(aligned)) == []


def test_bad_primitive_extension_siblings(core_validator: Validator) -> None:
    issues = errors(core_validator.validate(patient(birthDate="1974-12-25", _birthDate={"colour": "x"})))
    assert where(issues) == ["Patient.birthDate.colour"]
    empty = errors(core_validator.validate(patient(_birthDate={"id": "a"})))
    assert "ele-1" in empty[0].diagnostics
    mismatch = patient(name=[{"given": ["A", "B"], "_given": [None]}])
    assert "same length" in errors(core_validator.validate(mismatch))[0].diagnostics
    nulls = patient(name=[{"given": ["A", None]}])
    assert where(errors(core_validator.validate(nulls))) == ["Patient.name[0].given[1]"]
    complex_shadow = patient(_name=[{"id": "x"}])
    assert where(errors(core_validator.validate(complex_shadow))) == ["Patient._name"]


def test_expressions_carry_indexes(core_validator: Validator) -> None:
    resource = patient(name=[{"family": "A"}, {"given": ["B", 7]}])
    assert where(errors(core_validator.validate(resource))) == ["Patient.name[1].given[1]"]


def test_resource_type_is_required_and_known(core_validator: Validator) -> None:
    assert "resourceType is missing" in errors(core_validator.validate({"id": "x"}))[0].diagnostics
    assert (
        "unknown resourceType" in errors(core_validator.validate({"resourceType": "Patientx"}))[0].diagnostics
    )
    assert core_validator.validate([])[0].severity == "fatal"  # type: ignore[arg-type]


def test_contained_resources_are_validated_as_their_own_type(core_validator: Validator) -> None:
    resource = patient(
        contained=[{"resourceType": "Organization", "id": "org", "name": 12}],
        managingOrganization={"reference": "#org"},
    )
    assert where(errors(core_validator.validate(resource))) == ["Patient.contained[0].name"]


def test_bundle_entries_are_validated_as_their_own_type(core_validator: Validator) -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {"fullUrl": "urn:uuid:1b4fa4f6-44c9-4d41-a3b5-2a4fc4c1b8a1", "resource": patient()},
            {"resource": observation(status="done")},
            {"resource": {"resourceType": "Nope"}},
        ],
    }
    issues = errors(core_validator.validate(bundle))
    assert where(issues) == ["Bundle.entry[1].resource.status", "Bundle.entry[2].resource"]


def test_parameters_resource_parts_are_validated(core_validator: Validator) -> None:
    parameters = {
        "resourceType": "Parameters",
        "parameter": [{"name": "p", "resource": patient(gender=1)}, {"name": "n", "valueInteger": 2}],
    }
    assert where(errors(core_validator.validate(parameters))) == ["Parameters.parameter[0].resource.gender"]


def test_reference_target_types_from_the_base_definition(core_validator: Validator) -> None:
    resource = observation(subject={"reference": "Practitioner/1"})
    issues = errors(core_validator.validate(resource))
    assert where(issues) == ["Observation.subject"]
    assert "Practitioner" in issues[0].diagnostics
    fine = observation(subject={"reference": "http://example.org/fhir/Patient/1/_history/2"})
    assert errors(core_validator.validate(fine)) == []


def test_references_to_contained_and_bundle_entries_are_typed(core_validator: Validator) -> None:
    contained = observation(
        contained=[{"resourceType": "Practitioner", "id": "pr"}],
        subject={"reference": "#pr"},
    )
    assert where(errors(core_validator.validate(contained))) == ["Observation.subject"]
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": "urn:uuid:0c3151bd-1cbf-4d64-b04d-cd9187a4c6e0",
                "resource": {"resourceType": "Practitioner", "text": NARRATIVE},
                "request": {"method": "POST", "url": "Practitioner"},
            },
            {
                "resource": observation(
                    subject={"reference": "urn:uuid:0c3151bd-1cbf-4d64-b04d-cd9187a4c6e0"}
                ),
                "request": {"method": "POST", "url": "Observation"},
            },
        ],
    }
    assert where(errors(core_validator.validate(bundle))) == ["Bundle.entry[1].resource.subject"]


def test_required_bindings_on_codes(core_validator: Validator) -> None:
    issues = errors(core_validator.validate(observation(status="done")))
    assert [(i.code, i.expression[0]) for i in issues] == [("code-invalid", "Observation.status")]


@pytest.mark.parametrize(
    "fields",
    [
        {"entry": Decimal("1")},
        {"contained": "x"},
        {"category": [{"coding": 5}]},
        {"subject": {"reference": "#", "type": {"a": 1}}},
        {"extension": [{"url": 5, "valueString": ["a"]}]},
        {"_status": [None]},
        {"component": [None, {"code": None}]},
        {"meta": {"profile": [5, None, "http://example.org/x"]}},
    ],
)
def test_malformed_values_give_issues_not_exceptions(core_validator: Validator, fields: dict) -> None:
    issues = core_validator.validate(observation(**fields))
    assert errors(issues) or any(i.severity == "warning" for i in issues)
    assert all(i.code != "exception" for i in issues)


def test_deep_nesting_is_reported_not_raised(core_validator: Validator) -> None:
    item: dict = {"linkId": "1", "type": "group"}
    root = item
    for _ in range(2000):
        child = {"linkId": "1", "type": "group"}
        item["item"] = [child]
        item = child
    questionnaire = {"resourceType": "Questionnaire", "status": "active", "item": [root]}
    issues = core_validator.validate(questionnaire)
    assert issues[-1].severity == "fatal"
