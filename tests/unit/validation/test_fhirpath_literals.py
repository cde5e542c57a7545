"""Literal collections folded at compile time, O(1) membership, and unions that de-duplicate by hashing."""

from __future__ import annotations

import itertools
import time
from decimal import Decimal
from typing import Any

import pytest

from adapter.validation import fhirpath_compiler
from adapter.validation.fhirpath_compiler import Context, compile_native, literal_collection
from adapter.validation.fhirpath_ops import NO_VALUE, LiteralSet, _same, as_bool, same_key, union
from adapter.validation.fhirpath_parser import parse


def _run(expression: str, focus: Any, focus_type: str = "Observation") -> bool | None:
    function, _ = compile_native(expression, frozenset({focus_type}), focus_type)
    items = [focus]
    return as_bool(function(items, Context(focus, focus, focus_type, items)))


TIMING = {"resourceType": "Timing", "repeat": {"when": ["HS"], "offset": 30}}


@pytest.mark.parametrize(
    ("expression", "focus", "expected"),
    [
        ("status in ('final' | 'amended')", {"status": "amended"}, True),
        ("status in ('final' | 'amended')", {"status": "preliminary"}, False),
        ("status in ('final' | 'amended')", {}, None),  # empty in anything: empty
        ("status in ('final' | 'amended')", {"_status": {"extension": []}}, False),  # no value
        ("('final' | 'amended') contains status", {"status": "final"}, True),
        ("('final'.union('amended')) contains status", {"status": "amended"}, True),
        ("status in {}", {"status": "final"}, False),
        ("(1 | 2.0) contains 2", {}, True),  # numbers compare by value: 2 = 2.0
        ("(1 | 2) contains true", {}, False),  # a boolean is never a number
        ("('1' | '2') contains 1", {}, False),  # nor is a string
        ("('a' | 'b' | 'a').count() = 2", {}, True),
        ("(1 | 1.0 | true | 'true').count() = 3", {}, True),
    ],
)
def test_literal_membership_semantics(expression: str, focus: dict, expected: bool | None) -> None:
    assert _run(expression, {"resourceType": "Observation"} | focus) is expected


def test_tim_9_style_membership_over_a_repeating_element() -> None:
    expression = "offset.empty() or (when.exists() and ((when in ('C' | 'CM' | 'CD' | 'CV')).not()))"
    assert _run(expression, TIMING["repeat"], "Timing.repeat") is True
    assert _run(expression, {"when": ["CM"], "offset": 30}, "Timing.repeat") is False


def test_literal_unions_are_folded_when_compiling(monkeypatch: pytest.MonkeyPatch) -> None:
    function, _ = compile_native(
        "status in ('final' | 'amended' | 'corrected')", frozenset({"Observation"}), "Observation"
    )
    function2, _ = compile_native("('a' | 'b' | 'a').count() = 2", frozenset({"Observation"}), "Observation")

    def no_union(*args: object) -> list:
        raise AssertionError("a literal union was evaluated at run time")

    monkeypatch.setattr(fhirpath_compiler, "union", no_union)
    focus = {"resourceType": "Observation", "status": "corrected"}
    assert function([focus], Context(focus, focus, "Observation", [focus])) == [True]
    assert function2([focus], Context(focus, focus, "Observation", [focus])) == [True]


def test_literal_collection_only_folds_literals() -> None:
    assert literal_collection(parse("'a' | 'b' | 'a'")) == ["a", "b"]
    assert literal_collection(parse("{}")) == []
    assert literal_collection(parse("'a' | status")) is None
    assert literal_collection(parse("%resource | 'a'")) is None


SAMPLES: list[Any] = [
    "1", "a", "", 1, 2, 0, Decimal("1.0"), Decimal("1"), Decimal("2.50"), 2.5, 1.0, True, False,
    None, NO_VALUE, {"a": 1}, {"a": Decimal("1.0")}, [1], [Decimal(1)], Decimal("NaN"), float("inf"),
    Decimal("Infinity"), "2024-01-01",
]  # fmt: skip


def test_same_key_agrees_with_fhirpath_equality() -> None:
    for a, b in itertools.product(SAMPLES, repeat=2):
        ka, kb = same_key(a), same_key(b)
        if ka is not None and kb is not None:
            assert (ka == kb) is _same(a, b), (a, b)
        elif ka is not None or kb is not None:
            assert not _same(a, b), (a, b)  # a keyed value never equals a keyless one


def test_union_keeps_first_occurrences_in_order() -> None:
    left = [1, Decimal("1.0"), True, "1", {"a": 1}, NO_VALUE, 2.5]
    right = [{"a": Decimal("1")}, NO_VALUE, Decimal("2.50"), False, "1", [1], [1]]
    assert union(left, right) == [1, True, "1", {"a": 1}, NO_VALUE, 2.5, NO_VALUE, False, [1]]


def test_literal_set_membership_matches_pairwise_equality() -> None:
    pool = LiteralSet([1, "a", True, {"x": 1}, float("inf")])
    for value in SAMPLES:
        expected = any(_same(value, other) for other in pool.values) and value is not NO_VALUE
        assert pool.holds(value) is expected, value


def test_union_and_is_distinct_are_linear() -> None:
    # Quadratic de-duplication would compare ~2 * 10^8 pairs here: minutes, not milliseconds.
    values = [f"urn:uuid:{i}" for i in range(20000)]
    started = time.process_time()
    assert len(union(values, values[:100])) == 20000
    focus = {"resourceType": "Bundle", "entry": [{"fullUrl": v} for v in values]}
    assert _run("entry.fullUrl.isDistinct()", focus, "Bundle") is True
    assert time.process_time() - started < 2.0
