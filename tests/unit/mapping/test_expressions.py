"""The expression language and templates: compiled once, safe, typed, and silent about missing values."""

from __future__ import annotations

from decimal import Decimal

import pytest

from adapter.mapping.errors import MappingSpecError, ValueProblem
from adapter.mapping.expressions import CompileContext, Scope, compile_expression
from adapter.mapping.tables import TableSet
from adapter.mapping.templates import compile_template
from tests.unit.mapping.conftest import MAPPINGS

VALUES = {
    "sex": "F",
    "given": "Hélène",
    "others": "Marie Louise",
    "n": Decimal("1.25"),
    "empty": None,
    "items": [{"code": "A"}, {"code": "B"}],
    "when": "20250710143000",
}


def ctx() -> CompileContext:
    return CompileContext(TableSet(MAPPINGS), set(VALUES))


def evaluate(text: str) -> object:
    return compile_expression(text, ctx(), "test").evaluate(
        Scope(dict(VALUES), {"patient": "urn:uuid:1"}, {}, "x")
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("sex == 'F'", True),
        ("sex in ['M', 'F']", True),
        ("sex not in ['M']", True),
        ("empty is None", True),
        ("n is not None", True),
        ("n > 1", True),
        ("empty > 1", False),
        ("empty or 'default'", "default"),
        ("sex and given", "Hélène"),
        ("'a' if sex == 'F' else 'b'", "a"),
        ("not empty", True),
        ("1.50", Decimal("1.50")),
        ("-n", Decimal("-1.25")),
        ("given + ' ' + others", "Hélène Marie Louise"),
        ("given + empty", None),
        ("[given] + split(others)", ["Hélène", "Marie", "Louise"]),
        ("items[1].code", "B"),
        ("items[5].code", None),
        ("{'k': sex}['k']", "F"),
        ("when | datetime", "2025-07-10T14:30:00+02:00"),
        ("when | date", "2025-07-10"),
        ("'12,5' | decimal", Decimal("12.5")),
        ("sex | code('v2-sex')", "female"),
        ("lookup('v2-sex', sex)", {"system": "http://hl7.org/fhir/administrative-gender", "code": "female"}),
        ("lookup('medication', 'cyclo', 'step')", "lymphodepletion"),
        ("known('medication', 'DEXA')", False),
        ("lookup('v2-sex', empty)", None),
        ("coalesce(empty, '', sex)", "F"),
        ("matches('275036938312363', '[0-9]{15}')", True),
        ("oid('1.2.250.1.213.1.4.8')", "urn:oid:1.2.250.1.213.1.4.8"),
        ("oid('HCL')", None),
        ("add_minutes('2025-10-26T01:30:00+02:00', 120)", "2025-10-26T02:30:00+01:00"),
        ("before('2025-05-07', '2025-05-05')", False),
        (
            "quantity('0,85', lookup('units', 'G/L'))",
            {
                "value": Decimal("0.85"),
                "unit": "10*3/uL",
                "system": "http://unitsofmeasure.org",
                "code": "10*3/uL",
            },
        ),
        ("ref('patient')", {"reference": "urn:uuid:1"}),
        ("ref('other')", None),
        ("count(items)", 2),
        ("join(['a', empty, 'b'], '-')", "a-b"),
    ],
)
def test_expressions(text: str, expected: object) -> None:
    assert evaluate(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("unknown_name", "unknown name"),
        ("open('/etc/passwd')", "unknown function"),
        ("__import__('os')", "unknown function"),
        ("sex.__class__", None),
        ("lookup(sex, 'F')", "quoted name"),
        ("lookup('no-such-table', sex)", "no code table"),
        ("date(sex, sex, sex)", "date()"),
        ("[x for x in items]", "unsupported syntax"),
        ("lambda: 1", "unsupported syntax"),
        ("sex *", "invalid expression"),
        ("sex * 2", "operators"),
    ],
)
def test_unsafe_or_wrong_expressions_fail_when_the_spec_is_compiled(text: str, message: str | None) -> None:
    if message is None:
        # attribute access reads dict keys only: no Python attribute is ever reachable
        assert evaluate(text) is None
        return
    with pytest.raises(MappingSpecError, match=message):
        compile_expression(text, ctx(), "test")


def test_conversion_errors_are_value_problems() -> None:
    with pytest.raises(ValueProblem, match="not in code table 'v2-sex'"):
        evaluate("lookup('v2-sex', 'Z')")
    with pytest.raises(ValueProblem, match="not a number"):
        evaluate("decimal('douze')")


def build(template: dict, values: dict | None = None) -> object:
    builder = compile_template(template, ctx(), "Patient")
    return builder(Scope(dict(values or VALUES), {}, {"sex": "PID-8"}, "message 1"))


def test_template_keeps_types_drops_empty_elements_and_interpolates() -> None:
    out = build(
        {
            "gender": "${code('v2-sex', sex)}",
            "name": [{"family": "LEFÈVRE", "given": "${[given] + split(others)}", "suffix": ["${empty}"]}],
            "text": "Née ${given}",
            "missing": "COI-${empty}",
            "valueDecimal": "${n}",
            "active": False,
            "literal": "$${not an expression}",
        }
    )
    assert out == {
        "gender": "female",
        "name": [{"family": "LEFÈVRE", "given": ["Hélène", "Marie", "Louise"]}],
        "text": "Née Hélène",
        "valueDecimal": Decimal("1.25"),
        "active": False,
        "literal": "${not an expression}",
    }


def test_when_and_each_directives() -> None:
    out = build(
        {
            "identifier": [
                {"$each": "item in items", "$when": "item.code != 'A'", "value": "${item.code}"},
                {"$when": "sex == 'M'", "value": "never"},
            ],
            "given": [{"$each": "g in split(others)", "$value": "${upper(g)}"}],
        }
    )
    assert out == {"identifier": [{"value": "B"}], "given": ["MARIE", "LOUISE"]}


def test_template_errors_name_the_target_element_and_the_source() -> None:
    with pytest.raises(ValueProblem) as caught:
        build({"gender": "${code('v2-sex', sex)}"}, {**VALUES, "sex": "Z"})
    assert caught.value.target == "Patient.gender"
    assert caught.value.source == "message 1, PID-8 (sex)"


@pytest.mark.parametrize(
    "template",
    [{"$each": "x in items"}, {"a": [{"$value": "x"}]}, {"a": [{"$each": "nonsense", "b": 1}]}, {"$foo": 1}],
)
def test_misplaced_directives_are_spec_errors(template: dict) -> None:
    with pytest.raises(MappingSpecError):
        compile_template(template, ctx(), "Patient")
