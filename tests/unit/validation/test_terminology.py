"""ValueSet expansion from compose over loaded CodeSystems, and binding strengths on elements."""

from __future__ import annotations

import pytest

from adapter.validation.registry import ProfileRegistry
from adapter.validation.terminology import IN, NOT_IN, UNKNOWN, Terminology
from adapter.validation.validator import Validator

from .helpers import (
    EX,
    code_system,
    element,
    errors,
    observation,
    patient,
    profile,
    value_set,
    warnings,
    where,
)

SNOMED = "http://snomed.info/sct"
ANIMALS = EX + "CodeSystem/animals"
HIERARCHY = [
    {
        "code": "animal",
        "concept": [
            {"code": "mammal", "concept": [{"code": "dog"}, {"code": "cat"}]},
            {"code": "bird", "concept": [{"code": "parrot"}]},
        ],
    },
    {"code": "rock"},
]


@pytest.fixture(scope="module")
def registry() -> ProfileRegistry:
    registry = ProfileRegistry()
    registry.add(code_system("animals", HIERARCHY))
    registry.add(code_system("colours", [{"code": "Red"}, {"code": "Blue"}], caseSensitive=False))
    registry.add(value_set("all-animals", [{"system": ANIMALS}]))
    registry.add(value_set("pets", [{"system": ANIMALS, "concept": [{"code": "dog"}, {"code": "parrot"}]}]))
    registry.add(
        value_set(
            "mammals",
            [{"system": ANIMALS, "filter": [{"property": "concept", "op": "is-a", "value": "mammal"}]}],
        )
    )
    registry.add(
        value_set(
            "below-mammal",
            [
                {
                    "system": ANIMALS,
                    "filter": [{"property": "concept", "op": "descendent-of", "value": "mammal"}],
                }
            ],
        )
    )
    registry.add(
        value_set(
            "no-cats", [{"system": ANIMALS}], exclude=[{"system": ANIMALS, "concept": [{"code": "cat"}]}]
        )
    )
    registry.add(value_set("nested", [{"valueSet": [EX + "ValueSet/mammals"]}]))
    registry.add(value_set("colours", [{"system": EX + "CodeSystem/colours"}]))
    registry.add(value_set("snomed-any", [{"system": SNOMED}]))
    registry.add(value_set("snomed-listed", [{"system": SNOMED, "concept": [{"code": "73211009"}]}]))
    registry.add(value_set("mixed", [{"system": ANIMALS, "concept": [{"code": "dog"}]}, {"system": SNOMED}]))
    return registry


@pytest.mark.parametrize(
    ("vs", "code", "expected"),
    [
        ("all-animals", "rock", IN),
        ("all-animals", "unicorn", NOT_IN),
        ("pets", "dog", IN),
        ("pets", "cat", NOT_IN),
        ("mammals", "mammal", IN),
        ("mammals", "cat", IN),
        ("mammals", "parrot", NOT_IN),
        ("below-mammal", "mammal", NOT_IN),
        ("below-mammal", "dog", IN),
        ("no-cats", "cat", NOT_IN),
        ("no-cats", "dog", IN),
        ("nested", "dog", IN),
        ("nested", "bird", NOT_IN),
    ],
)
def test_expansion_of_compose(registry: ProfileRegistry, vs: str, code: str, expected: str) -> None:
    terminology = Terminology(registry)
    assert terminology.check(EX + "ValueSet/" + vs, ANIMALS, code) == expected


def test_codes_from_systems_that_are_not_loaded(registry: ProfileRegistry) -> None:
    terminology = Terminology(registry)
    assert terminology.check(EX + "ValueSet/snomed-any", SNOMED, "73211009") == UNKNOWN
    assert terminology.check(EX + "ValueSet/snomed-listed", SNOMED, "73211009") == IN
    assert terminology.check(EX + "ValueSet/snomed-listed", SNOMED, "1") == NOT_IN
    assert terminology.check(EX + "ValueSet/pets", SNOMED, "dog") == NOT_IN
    assert terminology.check(EX + "ValueSet/mixed", None, "dog") == IN
    assert terminology.check(EX + "ValueSet/mixed", None, "x") == UNKNOWN


def test_case_insensitive_code_systems_and_versioned_urls(registry: ProfileRegistry) -> None:
    terminology = Terminology(registry)
    assert terminology.check(EX + "ValueSet/colours|1.0", EX + "CodeSystem/colours", "red") == IN
    assert terminology.expansion(EX + "ValueSet/unknown") is None
    assert terminology.expansion(EX + "ValueSet/mammals") is terminology.expansion(EX + "ValueSet/mammals")


def test_core_value_sets_expand() -> None:
    terminology = Terminology(ProfileRegistry())
    status = "http://hl7.org/fhir/ValueSet/observation-status|4.0.1"
    assert terminology.check(status, None, "corrected") == IN
    assert terminology.check(status, None, "done") == NOT_IN
    mime = "http://hl7.org/fhir/ValueSet/mimetypes"
    assert terminology.check(mime, "urn:ietf:bcp:13", "application/fhir+json") == IN
    assert terminology.check(mime, "urn:ietf:bcp:13", "not a mime type") == NOT_IN
    currencies = "http://hl7.org/fhir/ValueSet/currencies|4.0.1"
    assert terminology.check(currencies, None, "EUR") == IN
    assert terminology.check(currencies, None, "euro") == NOT_IN


def _binding(strength: str, vs: str, path: str = "Observation.code") -> dict:
    return element(path, binding={"strength": strength, "valueSet": EX + "ValueSet/" + vs})


def _coded(system: str, code: str) -> dict:
    return {"coding": [{"system": system, "code": code}]}


@pytest.fixture(scope="module")
def bound(registry: ProfileRegistry) -> Validator:
    registry.add(profile("RequiredCode", "Observation", [_binding("required", "mammals")]))
    registry.add(profile("ExtensibleCode", "Observation", [_binding("extensible", "mammals")]))
    registry.add(profile("PreferredCode", "Observation", [_binding("preferred", "mammals")]))
    registry.add(profile("RequiredSnomed", "Observation", [_binding("required", "snomed-any")]))
    registry.add(profile("ExtensibleSnomed", "Observation", [_binding("extensible", "snomed-any")]))
    registry.add(
        profile(
            "BoundCoding",
            "Observation",
            [
                element(
                    "Observation.value[x]",
                    type=[{"code": "Quantity"}],
                    binding={"strength": "required", "valueSet": EX + "ValueSet/pets"},
                )
            ],
        )
    )
    return Validator(registry)


def _url(name: str) -> list[str]:
    return [EX + "StructureDefinition/" + name]


def test_required_binding(bound: Validator) -> None:
    good = observation(code=_coded(ANIMALS, "cat"))
    assert bound.validate(good, _url("RequiredCode")) == []
    mixed = observation(
        code={"coding": [{"system": "http://loinc.org", "code": "1"}, {"system": ANIMALS, "code": "dog"}]}
    )
    assert bound.validate(mixed, _url("RequiredCode")) == []
    bad = observation(code=_coded(ANIMALS, "parrot"))
    issues = errors(bound.validate(bad, _url("RequiredCode")))
    assert [(i.code, i.expression[0]) for i in issues] == [("code-invalid", "Observation.code")]
    text_only = observation(code={"text": "a dog"})
    assert "no code given" in errors(bound.validate(text_only, _url("RequiredCode")))[0].diagnostics


def test_extensible_and_preferred_bindings_warn(bound: Validator) -> None:
    bad = observation(code=_coded(ANIMALS, "parrot"))
    for name in ("ExtensibleCode", "PreferredCode"):
        issues = bound.validate(bad, _url(name))
        assert errors(issues) == []
        assert [(i.code, i.expression[0]) for i in warnings(issues)] == [("code-invalid", "Observation.code")]
    assert bound.validate(observation(code={"text": "free text"}), _url("ExtensibleCode")) == []


def test_unknown_code_systems(bound: Validator) -> None:
    snomed = observation(code=_coded(SNOMED, "73211009"))
    issues = bound.validate(snomed, _url("RequiredSnomed"))
    assert [(i.severity, i.code) for i in issues] == [("information", "not-found")]
    assert bound.validate(snomed, _url("ExtensibleSnomed")) == []


def test_binding_on_a_quantity(bound: Validator) -> None:
    good = observation(valueQuantity={"value": 1, "system": ANIMALS, "code": "dog"})
    assert bound.validate(good, _url("BoundCoding")) == []
    bad = observation(valueQuantity={"value": 1, "system": ANIMALS, "code": "cat"})
    assert where(errors(bound.validate(bad, _url("BoundCoding")))) == ["Observation.valueQuantity"]


def test_core_required_binding_with_a_grammar_system(core_validator: Validator) -> None:
    attachment = {"contentType": "text/plain", "data": "SGVsbG8="}
    assert core_validator.validate(patient(photo=[attachment])) == []
    resource = patient(photo=[attachment | {"contentType": "plain text"}])
    assert where(errors(core_validator.validate(resource))) == ["Patient.photo[0].contentType"]
