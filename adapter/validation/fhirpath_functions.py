"""The FHIRPath functions of the compiled subset (existence, filtering, strings, types)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING

from adapter.definitions import resource_types
from adapter.validation.fhirpath_compiler import Context, Fn, Types, Unsupported, navigate
from adapter.validation.fhirpath_ops import NO_VALUE, as_bool, union

if TYPE_CHECKING:
    from adapter.validation.fhirpath_compiler import _Compiler

_BOOLEAN = frozenset({"boolean"})
_INTEGER = frozenset({"integer"})
_STRING = frozenset({"string"})
_ABSTRACT = {"Resource": None, "DomainResource": None}


def _type_name(tree: tuple) -> str:
    if tree[0] != "nav" or tree[1] != ("this",):
        raise Unsupported("a type name was expected")
    return str(tree[2]).removeprefix("FHIR.")


def _string_arg(tree: tuple) -> str:
    if tree[0] != "lit" or not isinstance(tree[1], str):
        raise Unsupported("a string literal was expected")
    return tree[1]


def _existence(name: str, base: Fn) -> Fn:
    if name == "exists":
        return lambda items, ctx: [bool(base(items, ctx))]
    if name == "empty":
        return lambda items, ctx: [not base(items, ctx)]
    if name == "count":
        return lambda items, ctx: [len(base(items, ctx))]

    def negate(items: list, ctx: Context) -> list:
        value = as_bool(base(items, ctx))
        return [] if value is None else [not value]

    return negate


def _has_value(base: Fn) -> Fn:
    def run(items: list, ctx: Context) -> list:
        values = base(items, ctx)
        return [len(values) == 1 and values[0] is not NO_VALUE and not isinstance(values[0], dict | list)]

    return run


def _passes(result: list) -> bool:
    """`as_bool(result) is True`, inlined for criteria run once per input item."""
    if not result:
        return False
    if len(result) > 1:
        return as_bool(result) is True  # raises: a boolean was expected
    value = result[0]
    return value is True or not isinstance(value, bool)


def _filtering(name: str, base: Fn, criteria: Fn) -> Fn:
    if name == "where":
        return lambda items, ctx: [i for i in base(items, ctx) if _passes(criteria([i], ctx))]
    if name == "exists":

        def exists(items: list, ctx: Context) -> list:
            for item in base(items, ctx):
                if _passes(criteria([item], ctx)):
                    return [True]
            return [False]

        return exists
    if name == "all":

        def all_(items: list, ctx: Context) -> list:
            for item in base(items, ctx):
                if not _passes(criteria([item], ctx)):
                    return [False]
            return [True]

        return all_

    def select(items: list, ctx: Context) -> list:
        out: list = []
        for item in base(items, ctx):
            out.extend(criteria([item], ctx))
        return out

    return select


def _subsetting(name: str, base: Fn) -> Fn:
    if name == "first":
        return lambda items, ctx: base(items, ctx)[:1]
    if name == "last":
        return lambda items, ctx: base(items, ctx)[-1:]
    if name == "tail":
        return lambda items, ctx: base(items, ctx)[1:]
    if name == "distinct":
        return lambda items, ctx: union(base(items, ctx), [])
    return lambda items, ctx: [len(union(v := base(items, ctx), [])) == len(v)]  # isDistinct


def _strings(name: str, base: Fn, argument: str | None) -> Fn:
    if name == "matches":
        pattern = re.compile(argument or "", re.DOTALL)
        test: Callable[[str], object] = pattern.search
    elif name == "startsWith":
        test = lambda text: text.startswith(argument or "")  # noqa: E731
    elif name == "endsWith":
        test = lambda text: text.endswith(argument or "")  # noqa: E731
    else:
        test = lambda text: (argument or "") in text  # noqa: E731

    def run(items: list, ctx: Context) -> list:
        values = base(items, ctx)
        if len(values) != 1 or not isinstance(values[0], str):
            return []
        return [test(values[0]) is not None if name == "matches" else bool(test(values[0]))]

    return run


def _to_integer(base: Fn) -> Fn:
    def run(items: list, ctx: Context) -> list:
        values = base(items, ctx)
        if len(values) != 1:
            return []
        value = values[0]
        if isinstance(value, bool):
            return [int(value)]
        if isinstance(value, int):
            return [value]
        if isinstance(value, str) and re.fullmatch(r"[+-]?\d+", value):
            return [int(value)]
        return []

    return run


def _substring(base: Fn, start: int, length: int | None) -> Fn:
    def run(items: list, ctx: Context) -> list:
        values = base(items, ctx)
        if len(values) != 1 or not isinstance(values[0], str) or not 0 <= start < len(values[0]):
            return []
        text = values[0]
        return [text[start:] if length is None else text[start : start + length]]

    return run


def _to_string(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _runtime_type(item: object, ctx: Context, on_focus: bool, static: str | None) -> str | None:
    if isinstance(item, dict) and isinstance(item.get("resourceType"), str):
        return str(item["resourceType"])
    if on_focus and ctx.focus_type:
        return ctx.focus_type
    return static


def _type_test(name: str, base: Fn, base_types: Types, on_focus: bool, wanted: str) -> Fn:
    static = next(iter(base_types)) if len(base_types) == 1 else None
    resources = bool(base_types) and base_types <= (resource_types() | set(_ABSTRACT))
    if not (on_focus or static or resources):
        raise Unsupported(f"{name}() on values whose type is not known")

    def matches(item: object, ctx: Context) -> bool:
        found = _runtime_type(item, ctx, on_focus, static)
        if wanted in _ABSTRACT:
            return isinstance(item, dict) and "resourceType" in item
        return found == wanted

    if name == "is":

        def is_type(items: list, ctx: Context) -> list:
            values = base(items, ctx)
            return [matches(values[0], ctx)] if len(values) == 1 else []

        return is_type
    return lambda items, ctx: [v for v in base(items, ctx) if matches(v, ctx)]


def compile_function(
    compiler: _Compiler,
    name: str,
    base: Fn,
    base_types: Types,
    args: list[tuple],
    this: Types,
    on_this: bool,
) -> tuple[Fn, Types]:
    """One function call on `base`; raises Unsupported for functions or argument forms not handled.

    Criteria (where, all, exists, select, iif) see each input item as $this; the operand of intersect
    and union is evaluated where the call itself is, as FHIRPath says.
    """
    count = len(args)
    if name in ("exists", "empty", "count", "not") and count == 0:
        return _existence(name, base), (_INTEGER if name == "count" else _BOOLEAN)
    if name == "hasValue" and count == 0:
        return _has_value(base), _BOOLEAN
    if name in ("where", "exists", "all", "select") and count == 1:
        criteria, criteria_types = compiler.compile_criteria(args[0], base_types)
        result = base_types if name == "where" else (criteria_types if name == "select" else _BOOLEAN)
        return _filtering(name, base, criteria), result
    if name in ("first", "last", "tail", "distinct", "isDistinct") and count == 0:
        return _subsetting(name, base), (_BOOLEAN if name == "isDistinct" else base_types)
    if name in ("intersect", "union") and count == 1:
        other, other_types = compiler.compile(args[0], this)
        if name == "union":
            return (lambda items, ctx: union(base(items, ctx), other(items, ctx))), base_types | other_types

        def intersect(items: list, ctx: Context) -> list:
            pool = other(items, ctx)
            return [v for v in union(base(items, ctx), []) if v in pool]

        return intersect, base_types
    if name in ("matches", "startsWith", "endsWith", "contains") and count == 1:
        return _strings(name, base, _string_arg(args[0])), _BOOLEAN
    if name == "length" and count == 0:
        return (lambda items, ctx: [len(v[0])] if len(v := base(items, ctx)) == 1 else []), _INTEGER
    if name == "toString" and count == 0:
        return (lambda items, ctx: [_to_string(v[0])] if len(v := base(items, ctx)) == 1 else []), _STRING
    if name in ("is", "as", "ofType") and count == 1:
        wanted = _type_name(args[0])
        if name != "is" and base_types == frozenset({wanted}):
            return base, base_types
        result = _BOOLEAN if name == "is" else frozenset({wanted})
        return _type_test(name, base, base_types, on_this, wanted), result
    if name == "extension" and count == 1:
        url = _string_arg(args[0])
        step = navigate(("extension",), False)

        def extension(items: list, ctx: Context) -> list:
            return [e for e in step(base(items, ctx), ctx) if isinstance(e, dict) and e.get("url") == url]

        return extension, frozenset({"Extension"})
    if name == "iif" and count in (2, 3):
        condition, _ = compiler.compile(args[0], base_types)
        then, then_types = compiler.compile(args[1], base_types)
        other, other_types = compiler.compile(args[2], base_types) if count == 3 else (None, frozenset())

        def iif(items: list, ctx: Context) -> list:
            values = base(items, ctx)
            if as_bool(condition(values, ctx)) is True:
                return then(values, ctx)
            return other(values, ctx) if other is not None else []

        return iif, then_types | other_types
    if name == "toInteger" and count == 0:
        return _to_integer(base), _INTEGER
    if name == "substring" and count in (1, 2):
        start = args[0][1] if args[0][0] == "lit" and isinstance(args[0][1], int) else None
        length = args[1][1] if count == 2 and args[1][0] == "lit" and isinstance(args[1][1], int) else None
        if start is None or (count == 2 and length is None):
            raise Unsupported("substring() needs integer literals")
        return _substring(base, start, length), _STRING
    if name == "trace" and count >= 1:
        return base, base_types
    if name == "htmlChecks" and count == 0:
        return (lambda items, ctx: [True]), _BOOLEAN
    raise Unsupported(f"{name}() with {count} arguments")


__all__ = ["compile_function"]
