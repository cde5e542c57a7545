"""Shortcuts of the hot paths give the answers of the general code they stand in for."""

from __future__ import annotations

import json
import random
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from adapter.validation import checks
from adapter.validation.fhirpath_compiler import Context, compile_native
from adapter.validation.fhirpath_ops import as_bool
from adapter.validation.fhirpath_parser import focus_free, parse
from adapter.validation.loader import load_definitions
from adapter.validation.matching import equals_fixed, fixed_matcher, matches_pattern, pattern_matcher
from adapter.validation.registry import ProfileRegistry
from adapter.validation.validator import Validator

from .helpers import EX, patient, profile

PROFILES = Path(__file__).resolve().parents[3] / "profiles"


def _run(expression: str, focus: Any, focus_type: str) -> list:
    function, _ = compile_native(expression, frozenset({focus_type}), focus_type)
    items = [focus]
    return function(items, Context(focus, focus, focus_type, items))


# -- FHIRPath: sub-expressions computed once per evaluation -------------------------------------------


@pytest.mark.parametrize(
    ("expression", "free"),
    [
        ("%resource.type = 'batch'", True),
        ("'a' | 'b'", True),
        ("%resource.entry.where(request.exists())", True),  # the criteria read the entries
        ("'a'.union(%resource.id)", True),
        ("request.exists()", False),
        ("$this", False),
        ("%resource.entry.union(entry)", False),  # union's argument is read where the call is
        ("('Anne' | given).count()", False),
    ],
)
def test_focus_free_trees(expression: str, free: bool) -> None:
    assert focus_free(parse(expression)) is free


def test_criteria_reading_this_are_evaluated_per_item() -> None:
    person = {"resourceType": "Patient", "name": [{"given": ["Anne"]}, {"given": ["Marie"]}]}
    assert as_bool(_run("name.where(('Anne' | given).count() = 2).count() = 1", person, "Patient"))
    assert as_bool(_run("name.where('Anne'.union(given).count() = 2).count() = 1", person, "Patient"))


BDL_3 = (
    "entry.all(request.exists() = (%resource.type = 'batch' or %resource.type = 'transaction' "
    "or %resource.type = 'history'))"
)


def test_remembered_values_belong_to_one_evaluation() -> None:
    entries = [{"fullUrl": "urn:uuid:1", "request": {"method": "POST", "url": "Patient"}}] * 3
    transaction = {"resourceType": "Bundle", "type": "transaction", "entry": entries}
    collection = {"resourceType": "Bundle", "type": "collection", "entry": entries}
    function, _ = compile_native(BDL_3, frozenset({"Bundle"}), "Bundle")
    for bundle, expected in ((transaction, [True]), (collection, [False]), (transaction, [True])):
        items = [bundle]
        assert function(items, Context(bundle, bundle, "Bundle", items)) == expected


@pytest.mark.parametrize(
    ("focus", "expected"),
    [
        ({"code": "a"}, [True]),
        ({"code": "b"}, [False]),
        ({}, []),
        ({"_code": {"extension": [{"url": "x", "valueString": "y"}]}}, []),  # no value: unknown
        ({"value": 1}, [False]),  # an integer is never the string '1'
    ],
)
def test_comparison_with_a_string_literal(focus: dict, expected: list) -> None:
    expression = "code = 'a'" if "value" not in focus else "value = '1'"
    assert _run(expression, focus, "Coding" if "value" not in focus else "Quantity") == expected


def test_criteria_still_require_a_boolean() -> None:
    person = {"resourceType": "Patient", "name": [{"given": ["Anne", "Marie"]}]}
    with pytest.raises(ValueError):
        _run("name.where(given)", person, "Patient")


# -- fixed[x] and pattern[x] compiled once ----------------------------------------------------------


def _json(rnd: random.Random, depth: int = 0) -> Any:
    choice = rnd.randrange(9 if depth < 3 else 6)
    if choice == 0:
        return rnd.choice(["a", "b", "", "1"])
    if choice == 1:
        return rnd.choice([1, 2, 0])
    if choice == 2:
        return rnd.choice([Decimal("1.0"), Decimal("2"), 1.0])
    if choice == 3:
        return rnd.choice([True, False])
    if choice in (4, 5):
        return None
    if choice in (6, 7):
        return {k: _json(rnd, depth + 1) for k in rnd.sample(["system", "code", "value"], rnd.randrange(3))}
    return [_json(rnd, depth + 1) for _ in range(rnd.randrange(3))]


def test_compiled_fixed_and_pattern_values_agree_with_the_walkers() -> None:
    rnd = random.Random(3)
    values = [_json(rnd) for _ in range(400)]
    for expected in values[:80]:
        fixed, pattern = fixed_matcher(expected), pattern_matcher(expected)
        for value in values:
            assert fixed(value) is equals_fixed(value, expected), (value, expected)
            assert pattern(value) is matches_pattern(value, expected), (value, expected)


# -- whole validations: shortcuts off and on report the same ------------------------------------------


def _examples() -> list[dict]:
    folder = PROFILES / "examples"
    files = sorted((folder / "valid").glob("*.json")) + sorted((folder / "invalid").glob("*.json"))
    files += sorted(folder.glob("pathway-transaction*.json"))
    return [json.loads(path.read_text(encoding="utf-8")) for path in files]


@pytest.fixture(scope="module")
def car_t() -> Validator:
    return Validator(load_definitions([PROFILES / "package"], ProfileRegistry()))


def test_binding_shortcut_reports_as_the_full_judgement(
    car_t: Validator, monkeypatch: pytest.MonkeyPatch
) -> None:
    examples = _examples()
    assert len(examples) > 40
    fast = [car_t.validate(example) for example in examples]
    assert any(i.code == "code-invalid" for issues in fast for i in issues)
    monkeypatch.setattr(checks._BindingCheck, "_fits", staticmethod(lambda expansion, value: False))
    assert [car_t.validate(example) for example in examples] == fast


# -- the roots to walk per resource, remembered ---------------------------------------------------------


def test_unknown_declared_profiles_are_reported_every_time(core_validator: Validator) -> None:
    resource = patient(meta={"profile": [EX + "StructureDefinition/nowhere"]})
    for _ in range(2):
        found = [i.diagnostics for i in core_validator.validate(resource)]
        assert any("nowhere declared in meta.profile is not known" in m for m in found)


def test_profiles_added_later_are_used() -> None:
    registry = ProfileRegistry()
    validator = Validator(registry)
    url = EX + "StructureDefinition/NeedsGender"
    resource = patient(meta={"profile": [url]})
    assert any("not known" in i.diagnostics for i in validator.validate(resource))
    registry.add(
        profile("NeedsGender", "Patient", [{"id": "Patient.gender", "path": "Patient.gender", "min": 1}])
    )
    found = [i.diagnostics for i in validator.validate(resource)]
    assert found == ["Patient.gender: minimum required = 1, but only found 0"]
    resource["gender"] = "female"
    assert validator.validate(resource) == []


# -- repeating primitives without `_name` siblings ------------------------------------------------------


def test_repeating_primitives_report_each_bad_item(core_validator: Validator) -> None:
    person = patient(name=[{"given": ["Anne", "", 5, ["x"], "Marie\x01"]}])
    assert [i.diagnostics for i in core_validator.validate(person)] == [
        "Patient.name[0].given[1]: must not be empty (found '', type string)",
        "Patient.name[0].given[2]: must be a JSON string (found 5, type string)",
        "Patient.name[0].given[3]: this element repeats at most once, so it must not be a JSON array",
        "Patient.name[0].given[4]: contains control characters (found 'Marie\\x01', type string)",
    ]
    nulls = patient(name=[{"given": ["Anne", None]}])
    assert [i.diagnostics for i in core_validator.validate(nulls)] == [
        "Patient.name[0].given[1]: null is not allowed here"
    ]
    extended = patient(
        name=[
            {"given": ["Anne", None], "_given": [None, {"extension": [{"url": "urn:x", "valueString": "y"}]}]}
        ]
    )
    assert [i.severity for i in core_validator.validate(extended)] == ["warning"]  # unknown extension only
