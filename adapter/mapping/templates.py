"""FHIR resource templates compiled once into builders: nested closures that fill in a record's values.

A built element without a value (None, '', [] or {}) is left out, so optional source fields simply
disappear from the resource instead of producing empty FHIR elements, which FHIR forbids. Parts that
depend only on spec constants (`${pathway_step}`, fixed codings) are computed once, at compile time.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from adapter.mapping.errors import MappingSpecError, ValueProblem
from adapter.mapping.expressions import CompileContext, Scope, compile_expression, compile_template_string

Builder = Callable[[Scope], Any]
# A compiled node: (builder, None, names) when it depends on the record, (None, value, names) when constant.
Compiled = tuple[Builder | None, Any, frozenset[str]]

_EACH = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s+in\s+(.+)", re.S)
_MISSING = object()
_DIRECTIVES = {"$when", "$each", "$value"}
_EMPTIABLE = (str, list, dict)


def _empty(value: Any) -> bool:
    return value is None or (not value and isinstance(value, str | list | dict))


def _copier(value: dict | list) -> Callable[[], Any]:
    """A function returning a fresh deep copy of a constant JSON tree, mostly at C speed (dict.copy)."""
    if isinstance(value, dict):
        nested = {k: _copier(v) for k, v in value.items() if isinstance(v, dict | list)}
        if not nested:
            return value.copy

        def copy_dict() -> dict:
            out = value.copy()
            for key, copy in nested.items():
                out[key] = copy()
            return out

        return copy_dict
    if not any(isinstance(v, dict | list) for v in value):
        return value.copy
    parts = [_copier(v) if isinstance(v, dict | list) else (lambda v=v: v) for v in value]
    return lambda: [part() for part in parts]


def _as_builder(compiled: Compiled) -> Builder:
    builder, value, _ = compiled
    if builder is not None:
        return builder
    if not isinstance(value, dict | list):
        return lambda scope: value
    # Copied for every resource, so no two resources share a mutable part.
    copy = _copier(value)
    return lambda scope: copy()


def locate(problem: ValueProblem, target: str, names: frozenset[str], scope: Scope) -> ValueProblem:
    """Say which element the failing value was for and, if the expression used picked values, where from."""
    if problem.target is None:
        problem.target = target
    if problem.source is None:
        picked = [f"{scope.sources[n]} ({n})" for n in sorted(names) if n in scope.sources]
        problem.source = f"{scope.location}, " + ", ".join(picked) if picked else scope.location
    return problem


def _string(node: str, ctx: CompileContext, target: str) -> Compiled:
    if "${" not in node:
        return None, (node or None), frozenset()
    refs_before = ctx.ref_calls
    evaluator, names = compile_template_string(node, ctx, target)
    if evaluator is None:
        return None, (node or None), frozenset()
    ctx.used_in(names, target)
    if ctx.ref_calls == refs_before and names <= ctx.foldable():
        try:
            value = evaluator(Scope(dict(ctx.constants), {}, {}, target))
        except ValueProblem:
            return evaluator, None, names  # reported with its record and place when it happens
        if isinstance(value, list):
            value = [v for v in value if not _empty(v)]
        return None, (None if _empty(value) else value), names
    return evaluator, None, names


def _node(node: Any, ctx: CompileContext, target: str) -> Compiled:
    if isinstance(node, str):
        return _string(node, ctx, target)
    if isinstance(node, float):
        return None, Decimal(repr(node)), frozenset()
    if node is None or isinstance(node, bool | int | Decimal):
        return None, node, frozenset()
    if isinstance(node, dict):
        return _dict(node, ctx, target)
    if isinstance(node, list):
        return _list(node, ctx, target)
    raise MappingSpecError(f"{target}: unsupported template value {node!r}")


def _dict(node: dict, ctx: CompileContext, target: str) -> Compiled:
    extra = set(node) & _DIRECTIVES - {"$when"}
    if extra:
        raise MappingSpecError(f"{target}: {sorted(extra)} may only be used on an item of a list")
    when = compile_expression(str(node["$when"]), ctx, f"{target}.$when") if "$when" in node else None
    children = []
    for key, value in node.items():
        if key == "$when":
            continue
        if not isinstance(key, str) or key.startswith("$"):
            raise MappingSpecError(f"{target}: unknown directive or key {key!r}")
        child_target = f"{target}.{key}"
        children.append((key, _node(value, ctx, child_target), child_target, isinstance(value, str)))
    if when is None and all(compiled[0] is None for _, compiled, _, _ in children):
        constant = {key: compiled[1] for key, compiled, _, _ in children if not _empty(compiled[1])}
        return None, (constant or None), frozenset()
    steps = []
    for key, compiled, child_target, is_text in children:
        builder, value, names = compiled
        if builder is None and not isinstance(value, dict | list):
            if not _empty(value):
                steps.append((key, None, value, child_target, names))
            continue
        if builder is None:
            steps.append((key, _as_builder(compiled), False, child_target, names))
            continue
        # Only a '${...}' string can give a list with holes; nested builders already leave them out.
        steps.append((key, builder, is_text, child_target, names))

    def build(scope: Scope) -> dict | None:
        if when is not None:
            try:
                if not when.evaluate(scope):
                    return None
            except ValueProblem as problem:
                raise locate(problem, target, when.names, scope) from None
        out = {}
        for key, builder, extra, child_target, names in steps:
            if builder is None:
                out[key] = extra
                continue
            try:
                value = builder(scope)
            except ValueProblem as problem:
                raise locate(problem, child_target, names, scope) from None
            if value is None:
                continue
            kind = value.__class__
            if extra and kind is list:
                value = [v for v in value if not _empty(v)]
            if value or kind not in _EMPTIABLE:
                out[key] = value
        return out or None

    return build, None, frozenset()


def _list(node: list, ctx: CompileContext, target: str) -> Compiled:
    parts: list[tuple[str, Any]] = []
    for i, item in enumerate(node):
        item_target = f"{target}[{i}]"
        if isinstance(item, dict) and "$each" in item:
            parts.append(("each", _each(item, ctx, item_target)))
            continue
        if isinstance(item, dict) and "$value" in item:
            raise MappingSpecError(f"{item_target}: '$value' needs '$each'")
        compiled = _node(item, ctx, item_target)
        parts.append(("one", (compiled, item_target)))
    if all(kind == "one" and part[0][0] is None for kind, part in parts):
        constant = [part[0][1] for _, part in parts if not _empty(part[0][1])]
        return None, (constant or None), frozenset()
    steps = []
    for kind, part in parts:
        if kind == "each":
            steps.append((part, None, None))
            continue
        compiled, item_target = part
        if compiled[0] is None and _empty(compiled[1]):
            continue
        steps.append((None, _as_builder(compiled), (item_target, compiled[2])))

    def build(scope: Scope) -> list | None:
        out: list = []
        for expand, builder, where in steps:
            if expand is not None:
                out.extend(expand(scope))
                continue
            try:
                value = builder(scope)
            except ValueProblem as problem:
                raise locate(problem, where[0], where[1], scope) from None
            if not _empty(value):
                out.append(value)
        return out or None

    return build, None, frozenset()


def _each(item: dict, ctx: CompileContext, target: str) -> Callable[[Scope], list]:
    match = _EACH.fullmatch(str(item["$each"]))
    if not match:
        raise MappingSpecError(f"{target}.$each: expected 'name in expression', got {item['$each']!r}")
    name, source_text = match.groups()
    source = compile_expression(source_text, ctx, f"{target}.$each")
    inner_ctx = ctx.with_names([name])
    when = compile_expression(str(item["$when"]), inner_ctx, f"{target}.$when") if "$when" in item else None
    if "$value" in item:
        if set(item) - _DIRECTIVES:
            raise MappingSpecError(f"{target}: '$value' cannot be mixed with element keys")
        compiled = _node(item["$value"], inner_ctx, target)
    else:
        compiled = _dict({k: v for k, v in item.items() if k not in _DIRECTIVES}, inner_ctx, target)
    builder, names = _as_builder(compiled), compiled[2]
    each_target = target.rsplit("[", 1)[0] + "[*]"

    def expand(scope: Scope) -> list:
        try:
            values = source.evaluate(scope)
        except ValueProblem as problem:
            raise locate(problem, target, source.names, scope) from None
        if _empty(values):
            return []
        values = values if isinstance(values, list) else [values]
        saved = scope.vars.get(name, _MISSING)
        out = []
        try:
            for value in values:
                scope.vars[name] = value
                if when is not None and not when.evaluate(scope):
                    continue
                try:
                    built = builder(scope)
                except ValueProblem as problem:
                    raise locate(problem, each_target, names, scope) from None
                if not _empty(built):
                    out.append(built)
        finally:
            if saved is _MISSING:
                scope.vars.pop(name, None)
            else:
                scope.vars[name] = saved
        return out

    return expand


def compile_template(template: dict, ctx: CompileContext, target: str) -> Builder:
    """Compile a resource template (a mapping of FHIR element names to values and '${...}' strings).

    Raises:
        MappingSpecError: bad directive, expression, function, table or name.
    """
    if not isinstance(template, dict):
        raise MappingSpecError(f"{target}: a template must be a mapping of FHIR elements")
    return _as_builder(_dict(template, ctx, target))
