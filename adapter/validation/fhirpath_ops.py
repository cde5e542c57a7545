"""Runtime semantics of the compiled FHIRPath subset: empty-aware logic, equality, ordering, unions."""

from __future__ import annotations

from collections.abc import Callable, Hashable
from decimal import Decimal
from typing import Any

from adapter.validation.dates import compare_dates


class _NoValue:
    """A primitive present only through its `_name` sibling (extensions, no value)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "NO_VALUE"


NO_VALUE = _NoValue()

# A compiled expression: (focus collection, evaluation context) -> result collection.
Fn = Callable[[list, Any], list]


def as_bool(collection: list) -> bool | None:
    """Singleton evaluation in a boolean context: empty -> None, a single non-boolean -> True."""
    if not collection:
        return None
    if len(collection) > 1:
        raise ValueError("a boolean was expected, got a collection")
    value = collection[0]
    return value if isinstance(value, bool) else True


def logic(op: str, left: Fn, right: Fn) -> Fn:
    """The three-valued `and`, `or`, `xor`, `implies` of FHIRPath, evaluating the right side lazily."""
    # One closure per operator over its operands: these run for nearly every constraint.
    if op == "and":

        def run_and(items: list, ctx: Any) -> list:
            a = as_bool(left(items, ctx))
            if a is False:
                return [False]
            b = as_bool(right(items, ctx))
            if b is False:
                return [False]
            return [True] if a and b else []

        return run_and
    if op == "or":

        def run_or(items: list, ctx: Any) -> list:
            a = as_bool(left(items, ctx))
            if a is True:
                return [True]
            b = as_bool(right(items, ctx))
            if b is True:
                return [True]
            return [False] if a is False and b is False else []

        return run_or
    if op == "implies":

        def run_implies(items: list, ctx: Any) -> list:
            a = as_bool(left(items, ctx))
            if a is False:
                return [True]
            b = as_bool(right(items, ctx))
            if b is True:
                return [True]
            return [False] if a is True and b is False else []

        return run_implies

    def run_xor(items: list, ctx: Any) -> list:
        a = as_bool(left(items, ctx))
        b = as_bool(right(items, ctx))
        return [] if a is None or b is None else [a != b]

    return run_xor


def _number(value: Any) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, int | Decimal | float):
        return None
    return Decimal(str(value)) if isinstance(value, float) else Decimal(value)


def _same(a: Any, b: Any) -> bool:
    if type(a) is str:  # the common case: codes, systems, ids
        return type(b) is str and a == b
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


def same_key(value: Any) -> Hashable | None:
    """A hashable key with `same_key(a) == same_key(b)` exactly when `_same(a, b)`; None when there is none.

    Lets unions and membership tests use sets instead of comparing every pair. Objects, arrays,
    NO_VALUE (equal to nothing, not even itself) and NaN have no key; callers compare those pairwise.
    """
    kind = type(value)
    if kind is str:
        return value  # the other kinds' keys are tuples, so a string never meets them
    if kind is bool:
        return (bool, value)
    if kind is int:
        return (Decimal, value)  # 1 and 1.0 are the same number; int and Decimal hash alike
    if kind is Decimal or kind is float:
        number = _number(value)
        return (Decimal, number) if number is not None and number.is_finite() else None
    if value is NO_VALUE or isinstance(value, dict | list | bool | int | Decimal | float):
        return None  # subclasses of the above: leave them to _same
    try:
        hash(value)
    except TypeError:
        return None
    return (kind, value)


def equal(left: list, right: list) -> bool | None:
    """FHIRPath `=`: None (empty) when a side is empty, else order-wise equality of the collections."""
    if not left or not right:
        return None
    if len(left) == 1 and len(right) == 1:
        a, b = left[0], right[0]
        if a is NO_VALUE or b is NO_VALUE:
            return None
        return _same(a, b)
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
    """FHIRPath `|`: both collections, duplicates removed (in linear time for primitives)."""
    out: list = []
    keys: set = set()
    others: list = []  # values without a key (objects, arrays), compared pairwise as before
    for part in (left, right):
        for item in part:
            key = same_key(item)
            if key is not None:
                if key not in keys:
                    keys.add(key)
                    out.append(item)
            elif not any(_same(item, seen) for seen in others):
                # NO_VALUE equals nothing, so every one of them stays.
                if item is not NO_VALUE:
                    others.append(item)
                out.append(item)
    return out


def literal_collection(tree: tuple) -> list | None:
    """The value of a tree made only of literals, `{}` and unions of them; None for anything else."""
    kind = tree[0]
    if kind == "lit":
        return [tree[1]]
    if kind == "empty":
        return []
    if kind == "op" and tree[1] == "|":
        left, right = literal_collection(tree[2]), literal_collection(tree[3])
        return union(left, right) if left is not None and right is not None else None
    if kind == "call" and tree[2] == "union" and len(tree[3]) == 1:
        left, right = literal_collection(tree[1]), literal_collection(tree[3][0])
        return union(left, right) if left is not None and right is not None else None
    return None


def literal_types(tree: tuple) -> frozenset[str]:
    """The literal types a `literal_collection` tree is made of."""
    if tree[0] == "lit":
        return frozenset({tree[2]})
    if tree[0] == "op":
        return literal_types(tree[2]) | literal_types(tree[3])
    if tree[0] == "call":
        return literal_types(tree[1]) | literal_types(tree[3][0])
    return frozenset()


class LiteralSet:
    """A collection known when compiling (`('a' | 'b')`), ready for O(1) `in` / `contains` tests."""

    __slots__ = ("values", "keys", "others")

    def __init__(self, values: list) -> None:
        self.values = values
        self.keys = {k for k in map(same_key, values) if k is not None}
        self.others = [v for v in values if same_key(v) is None]

    def holds(self, value: Any) -> bool:
        """FHIRPath membership of one value, as `equal([value], [v])` for some v would say."""
        if value is NO_VALUE:
            return False
        key = same_key(value)
        if key is not None:
            return key in self.keys
        return any(_same(value, other) for other in self.others)


__all__ = [
    "NO_VALUE",
    "LiteralSet",
    "as_bool",
    "compare",
    "equal",
    "literal_collection",
    "literal_types",
    "logic",
    "same_key",
    "union",
]
