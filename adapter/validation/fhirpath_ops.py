"""Runtime semantics of the compiled FHIRPath subset: empty-aware logic, equality, ordering, unions."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from adapter.validation.dates import compare_dates


class _NoValue:
    """A primitive present only through its `_name` sibling (extensions, no value)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "NO_VALUE"


NO_VALUE = _NoValue()


def as_bool(collection: list) -> bool | None:
    """Singleton evaluation in a boolean context: empty -> None, a single non-boolean -> True."""
    if not collection:
        return None
    if len(collection) > 1:
        raise ValueError("a boolean was expected, got a collection")
    value = collection[0]
    return value if isinstance(value, bool) else True


def logic(op: str) -> Callable[[Any, Any, list, Any], list]:
    """The three-valued `and`, `or`, `xor`, `implies` of FHIRPath, evaluating the right side lazily."""

    def run(left: Any, right: Any, items: list, ctx: Any) -> list:
        a = as_bool(left(items, ctx))
        if op == "and":
            if a is False:
                return [False]
            b = as_bool(right(items, ctx))
            if b is False:
                return [False]
            return [True] if a and b else []
        if op == "or":
            if a is True:
                return [True]
            b = as_bool(right(items, ctx))
            if b is True:
                return [True]
            return [False] if a is False and b is False else []
        if op == "implies":
            if a is False:
                return [True]
            b = as_bool(right(items, ctx))
            if b is True:
                return [True]
            return [False] if a is True and b is False else []
        b = as_bool(right(items, ctx))
        return [] if a is None or b is None else [a != b]

    return run


def _number(value: Any) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, int | Decimal | float):
        return None
    return Decimal(str(value)) if isinstance(value, float) else Decimal(value)


def _same(a: Any, b: Any) -> bool:
    if a is NO_VALUE or b is NO_VALUE:
        return False
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    x, y = _number(a), _number(b)
    if x is not None and y is not None:
        return x == y
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


def equal(left: list, right: list) -> bool | None:
    """FHIRPath `=`: None (empty) when a side is empty, else order-wise equality of the collections."""
    if not left or not right:
        return None
    if NO_VALUE in left or NO_VALUE in right:
        return None
    return len(left) == len(right) and all(_same(a, b) for a, b in zip(left, right, strict=True))


def compare(left: list, right: list, dates: bool) -> int | None:
    """-1/0/1 ordering of two singletons; None when empty or (dates) not comparable at their precision."""
    if len(left) != 1 or len(right) != 1:
        return None
    a, b = left[0], right[0]
    if a is NO_VALUE or b is NO_VALUE:
        return None
    if dates:
        return compare_dates(a, b)
    x, y = _number(a), _number(b)
    if x is not None and y is not None:
        return (x > y) - (x < y)
    if isinstance(a, str) and isinstance(b, str):
        return (a > b) - (a < b)
    return None


def union(left: list, right: list) -> list:
    """FHIRPath `|`: both collections, duplicates removed."""
    out: list = []
    for item in left + right:
        if not any(_same(item, seen) for seen in out):
            out.append(item)
    return out


__all__ = ["NO_VALUE", "as_bool", "compare", "equal", "logic", "union"]
