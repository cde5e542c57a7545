"""Extensions: core definitions by url, unknown urls, profiled extension slices, complex extensions."""

from __future__ import annotations

import pytest

from adapter.validation.registry import ProfileRegistry
from adapter.validation.validator import Validator

from .helpers import (
    BASE,
    EX,
    code_system,
    element,
    errors,
    extension_definition,
    patient,
    profile,
    value_set,
    warnings,
    where,
)

SD = EX + "StructureDefinition/"
BIRTH_TIME = BASE + "patient-birthTime"
BIRTH_PLACE = BASE + "patient-birthPlace"


def _complex_nationality() -> dict:
    sd = extension_definition("nationality", None)
    sd["differential"]["element"] += [
        {"id": "Extension.extension", "path": "Extension.extension", "min": 1},
        {
            "id": "Extension.extension:code",
            "path": "Extension.extension",
            "sliceName": "code",
            "min": 1,
            "max": "1",
        },
        {"id": "Extension.extension:code.url", "path": "Extension.extension.url", "fixedUri": "code"},
        {
            "id": "Extension.extension:code.value[x]",
            "path": "Extension.extension.value[x]",
            "min": 1,
            "type": [{"code": "CodeableConcept"}],
        },
        {
            "id": "Extension.extension:period",
            "path": "Extension.extension",
            "sliceName": "period",
            "max": "1",
        },
        {"id": "Extension.extension:period.url", "path": "Extension.extension.url", "fixedUri": "period"},
        {
            "id": "Extension.extension:period.value[x]",
            "path": "Extension.extension.value[x]",
            "type": [{"code": "Period"}],
        },
        {"id": "Extension.value[x]", "path": "Extension.value[x]", "max": "0"},
    ]
    return sd


@pytest.fixture(scope="module")
def validator() -> Validator:
    registry = ProfileRegistry()
    registry.add(code_system("eye-colour", [{"code": "blue"}, {"code": "brown"}]))
    registry.add(value_set("eye-colours", [{"system": EX + "CodeSystem/eye-colour"}]))
    binding = {"strength": "required", "valueSet": EX + "ValueSet/eye-colours"}
    registry.add(extension_definition("eye-colour", "code", binding=binding))
    registry.add(_complex_nationality())
    registry.add(
        profile(
            "ExtendedPatient",
            "Patient",
            [
                element(
                    "Patient.extension",
                    slicing={"discriminator": [{"type": "value", "path": "url"}], "rules": "open"},
                ),
                element(
                    "Patient.extension:eyes",
                    min=1,
                    max="1",
                    type=[{"code": "Extension", "profile": [SD + "eye-colour"]}],
                ),
                element(
                    "Patient.extension:nationality",
                    type=[{"code": "Extension", "profile": [SD + "nationality"]}],
                ),
            ],
        )
    )
    return Validator(registry)


def _eyes(code: str = "blue") -> dict:
    return {"url": SD + "eye-colour", "valueCode": code}


def test_core_extensions_are_checked_against_their_definition(validator: Validator) -> None:
    good = patient(
        birthDate="1974-12-25",
        _birthDate={"extension": [{"url": BIRTH_TIME, "valueDateTime": "1974-12-25T14:35:45-05:00"}]},
    )
    assert validator.validate(good) == []
    wrong = patient(
        _birthDate={"extension": [{"url": BIRTH_TIME, "valueString": "afternoon"}]}, birthDate="1974-12-25"
    )
    issues = errors(validator.validate(wrong))
    assert where(issues) == [
        "Patient.birthDate.extension[0].valueString",
        "Patient.birthDate.extension[0].value[x]",
    ]
    place = patient(extension=[{"url": BIRTH_PLACE, "valueAddress": {"city": "Lyon", "country": "FR"}}])
    assert validator.validate(place) == []


def test_unknown_extensions_warn_and_are_still_checked(validator: Validator) -> None:
    resource = patient(
        extension=[{"url": "http://example.org/unknown", "valueBoolean": "yes"}],
        modifierExtension=[{"url": "http://example.org/unknown-modifier", "valueBoolean": True}],
    )
    issues = validator.validate(resource)
    assert [(i.code, i.expression[0]) for i in warnings(issues)] == [
        ("extension", "Patient.extension[0]"),
        ("extension", "Patient.modifierExtension[0]"),
    ]
    assert where(errors(issues)) == ["Patient.extension[0].valueBoolean"]


def test_extension_url_is_required(validator: Validator) -> None:
    issues = errors(validator.validate(patient(extension=[{"valueString": "x"}])))
    assert where(issues) == ["Patient.extension[0].url"]


def test_required_extension_slice(validator: Validator) -> None:
    url = [SD + "ExtendedPatient"]
    assert validator.validate(patient(extension=[_eyes()]), url) == []
    issues = errors(validator.validate(patient(), url))
    assert "slice 'eyes'" in issues[0].diagnostics
    issues = errors(validator.validate(patient(extension=[_eyes("green")]), url))
    assert [(i.code, i.expression[0]) for i in issues] == [("code-invalid", "Patient.extension[0].valueCode")]
    issues = errors(validator.validate(patient(extension=[_eyes(), _eyes()]), url))
    assert "at most 1" in issues[0].diagnostics


def test_complex_extension(validator: Validator) -> None:
    url = [SD + "ExtendedPatient"]
    nationality = {
        "url": SD + "nationality",
        "extension": [
            {
                "url": "code",
                "valueCodeableConcept": {"coding": [{"system": "urn:iso:std:iso:3166", "code": "FR"}]},
            },
            {"url": "period", "valuePeriod": {"start": "2001-01-01"}},
        ],
    }
    assert validator.validate(patient(extension=[_eyes(), nationality]), url) == []
    no_code = {"url": SD + "nationality", "extension": [{"url": "period", "valuePeriod": {"start": "2001"}}]}
    issues = errors(validator.validate(patient(extension=[_eyes(), no_code]), url))
    assert "slice 'code'" in issues[0].diagnostics
    with_value = nationality | {"valueString": "FR"}
    issues = errors(validator.validate(patient(extension=[_eyes(), with_value]), url))
    assert "Patient.extension[1].valueString" in where(issues)
    wrong_type = {"url": SD + "nationality", "extension": [{"url": "code", "valueString": "FR"}]}
    issues = errors(validator.validate(patient(extension=[_eyes(), wrong_type]), url))
    assert "Patient.extension[1].extension[0].valueString" in where(issues)


def test_extension_contexts(validator: Validator) -> None:
    birth_time = {"url": BIRTH_TIME, "valueDateTime": "1974-12-25T14:35:45-05:00"}
    misplaced = patient(name=[{"family": "X", "_family": {"extension": [birth_time]}}])
    issues = errors(validator.validate(misplaced))
    assert [(i.code, i.expression[0]) for i in issues] == [
        ("extension", "Patient.name[0].family.extension[0]")
    ]
    assert "Patient.birthDate" in issues[0].diagnostics
    own_prefix = {"url": BASE + "humanname-own-prefix", "valueString": "van"}
    in_contact = patient(contact=[{"name": {"family": "Berg", "_family": {"extension": [own_prefix]}}}])
    assert validator.validate(in_contact) == []
    place = {"url": BIRTH_PLACE, "valueAddress": {"city": "Lyon"}}
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"resource": patient(extension=[place])}],
    }
    assert validator.validate(bundle) == []
    on_observation = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"text": "x"},
        "extension": [place],
    }
    bundle["entry"].append({"resource": on_observation | {"text": patient()["text"]}})
    assert where(errors(validator.validate(bundle))) == ["Bundle.entry[1].resource.extension[0]"]
