"""A FHIRPath subset compiled to Python closures, statically typed from the element definitions."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

from adapter.definitions import element_info, primitive_json_types, resource_types
from adapter.validation.fhirpath_ops import (
    NO_VALUE,
    LiteralSet,
    compare,
    equal,
    literal_collection,
    literal_types,
    logic,
    union,
)
from adapter.validation.fhirpath_parser import Unsupported, focus_free, parse

# Constraint expressions mostly navigate elements and test existence, equality and order; those compile
# here into closures over plain JSON, tens of times faster than interpreting them. Anything
# outside the subset, or whose types cannot be told from the definitions, raises Unsupported and the
# caller falls back to fhirpathpy for that expression.
#
# A compiled expression: (focus collection, evaluation context) -> result collection.
Fn = Callable[[list, "Context"], list]
Types = frozenset[str]
_DATES = frozenset({"date", "dateTime", "instant"})
_ORDERED = frozenset({"integer", "decimal", "string", "unsignedInt", "positiveInt"})
_CHECKS: dict[str, Callable[[int], bool]] = {
    "<": lambda c: c < 0,
    "<=": lambda c: c <= 0,
    ">": lambda c: c > 0,
    ">=": lambda c: c >= 0,
}


class Context:
    """Per-evaluation values: %resource, %rootResource, and the focus's runtime type."""

    __slots__ = ("resource", "root", "focus_type", "focus", "memo")

    def __init__(self, resource: dict, root: dict, focus_type: str | None, focus: list) -> None:
        self.resource = resource
        self.root = root
        self.focus_type = focus_type
        self.focus = focus  # %context
        # Results of sub-expressions that do not depend on $this, by the function computing them.
        self.memo: dict[Fn, list] | None = None


@cache
def _child(type_key: str, name: str) -> tuple[tuple[str, ...], Types, bool]:
    """(JSON keys, result types, primitive?) of element `name` of a type or backbone path."""
    head = type_key.partition(".")[0]
    try:
        info = element_info(head)
        typed = info.child(type_key, name)
        if typed is not None and typed.element.is_choice:
            return (name,), frozenset({typed.type_code}), typed.json_type is not None
        try:
            element = info.element(f"{type_key}.{name}")
        except KeyError:
            element = info.element(f"{type_key}.{name}[x]")
    except KeyError:
        raise Unsupported(f"{type_key} has no element {name}") from None
    types = set()
    for code in element.json_names.values():
        inline = code in ("BackboneElement", "Element") and element.children_path
        types.add(element.children_path if inline else code)
    return tuple(element.json_names), frozenset(types), element.is_primitive


def navigate(keys: tuple[str, ...], primitive: bool) -> Fn:
    if len(keys) == 1:
        return _navigate_one(keys[0], "_" + keys[0] if primitive else None)
    shadows = tuple("_" + k for k in keys) if primitive else ()

    def run(items: list, ctx: Context) -> list:
        out: list = []
        for item in items:
            if type(item) is not dict:
                continue
            for index, key in enumerate(keys):
                value = item.get(key)
                if value is None:
                    if shadows and shadows[index] in item:
                        shadow = item[shadows[index]]
                        out.extend([NO_VALUE] * len(shadow) if type(shadow) is list else [NO_VALUE])
                    continue
                if type(value) is list:
                    out.extend(NO_VALUE if v is None else v for v in value)
                else:
                    out.append(value)
        return out

    return run


def _navigate_one(key: str, shadow: str | None) -> Fn:
    # Nearly every step names one JSON property (only choices have several).
    def run_one(items: list, ctx: Context) -> list:
        out: list = []
        for item in items:
            if type(item) is not dict:
                continue
            value = item.get(key)
            if value is None:
                if shadow is not None and shadow in item:
                    extra = item[shadow]
                    out.extend([NO_VALUE] * len(extra) if type(extra) is list else [NO_VALUE])
                continue
            if type(value) is list:
                # A null in an array stands for a value given only by the `_name` sibling.
                out.extend(value if None not in value else [NO_VALUE if v is None else v for v in value])
            else:
                out.append(value)
        return out

    return run_one


def _memo(function: Fn) -> Fn:
    """`function` evaluated once per evaluation context (it must not depend on $this)."""

    def remembered(items: list, ctx: Context) -> list:
        memo = ctx.memo
        if memo is None:
            memo = ctx.memo = {}
        found = memo.get(function)
        if found is None:
            found = memo[function] = function(items, ctx)
        return found

    return remembered


class _Compiler:
    def __init__(self, focus: Types, resource: str | None) -> None:
        self.focus = focus
        self.resource = resource
        self.criteria_depth = 0  # > 0 while compiling the criteria of where(), all()...

    def compile_criteria(self, tree: tuple, this: Types) -> tuple[Fn, Types]:
        """Compile an argument evaluated once per input item (where, exists, all, select)."""
        self.criteria_depth += 1
        try:
            return self.compile(tree, this)
        finally:
            self.criteria_depth -= 1

    def compile(self, tree: tuple, this: Types) -> tuple[Fn, Types]:
        kind = tree[0]
        constant = literal_collection(tree)
        if constant is not None and kind not in ("lit", "empty"):
            # `('a' | 'b' | 'c')`: built once here rather than re-unioned on every evaluation.
            return (lambda items, ctx: constant), literal_types(tree)
        if self.criteria_depth and kind in ("op", "call", "nav") and focus_free(tree):
            # `entry.all(request.exists() = (%resource.type = 'batch' or ...))`: the right side is the
            # same for every entry, so it is computed once per evaluation.
            depth, self.criteria_depth = self.criteria_depth, 0
            try:
                function, types = self.compile(tree, this)
            finally:
                self.criteria_depth = depth
            return _memo(function), types
        if kind == "lit":
            value = [tree[1]]
            return (lambda items, ctx: value), frozenset({tree[2]})
        if kind == "empty":
            return (lambda items, ctx: []), frozenset()
        if kind == "this":
            return (lambda items, ctx: items), this
        if kind == "var":
            return self.variable(tree[1])
        if kind == "nav":
            return self.nav(tree, this)
        if kind == "call":
            return self.call(tree, this)
        if kind == "op":
            return self.operator(tree, this)
        raise Unsupported(kind)

    def variable(self, name: str) -> tuple[Fn, Types]:
        if name == "context":
            return (lambda items, ctx: ctx.focus), self.focus
        if name == "ucum":
            value = ["http://unitsofmeasure.org"]
            return (lambda items, ctx: value), frozenset({"uri"})
        if name in ("resource", "rootResource") and self.resource:
            if name == "resource":
                return (lambda items, ctx: [ctx.resource]), frozenset({self.resource})
            return (lambda items, ctx: [ctx.root]), frozenset({"Resource"})
        raise Unsupported(f"%{name}")

    def nav(self, tree: tuple, this: Types) -> tuple[Fn, Types]:
        base_fn, base_types = self.compile(tree[1], this)
        name = tree[2]
        if tree[1] == ("this",) and name[:1].isupper() and name in base_types:
            return base_fn, base_types  # `Appointment.status` written from the resource itself
        keys: list[str] = []
        result: set[str] = set()
        primitive = False
        if not base_types:
            raise Unsupported(f"type of the input to {name} is unknown")
        for type_key in base_types:
            # A union input (a choice) navigates into the types that have the child, and only those.
            if type_key in primitive_json_types():
                continue  # a primitive's value is not a child element in FHIRPath
            try:
                found_keys, found_types, is_primitive = _child(type_key, name)
            except Unsupported:
                continue
            keys.extend(k for k in found_keys if k not in keys)
            result |= found_types
            primitive = primitive or is_primitive
        if not keys:
            raise Unsupported(f"none of {sorted(base_types)} has an element {name}")
        step = navigate(tuple(keys), primitive)
        if tree[1] == ("this",):
            return step, frozenset(result)
        return (lambda items, ctx: step(base_fn(items, ctx), ctx)), frozenset(result)

    def operator(self, tree: tuple, this: Types) -> tuple[Fn, Types]:
        _, op, left_tree, right_tree = tree
        left, left_types = self.compile(left_tree, this)
        right, right_types = self.compile(right_tree, this)
        if op in ("and", "or", "xor", "implies"):
            return logic(op, left, right), frozenset({"boolean"})
        if op in ("=", "!="):
            negate = op == "!="
            if left_types and right_types and left_types <= _DATES and right_types <= _DATES:
                # Dates are equal as instants, and unknown when their precisions differ.

                def date_eq(items: list, ctx: Context) -> list:
                    order = compare(left(items, ctx), right(items, ctx), True)
                    return [] if order is None else [(order == 0) != negate]

                return date_eq, frozenset({"boolean"})

            if right_tree[0] == "lit" and type(right_tree[1]) is str:
                text, literal = right_tree[1], [right_tree[1]]

                def eq_text(items: list, ctx: Context) -> list:
                    # `system = 'http://...'`: a single string compares directly.
                    values = left(items, ctx)
                    if len(values) == 1 and type(values[0]) is str:
                        return [(values[0] == text) != negate]
                    result = equal(values, literal)
                    return [] if result is None else [result != negate]

                return eq_text, frozenset({"boolean"})

            def eq(items: list, ctx: Context) -> list:
                result = equal(left(items, ctx), right(items, ctx))
                return [] if result is None else [result != negate]

            return eq, frozenset({"boolean"})
        if op in ("<", "<=", ">", ">="):
            dates = bool(left_types) and left_types <= _DATES and right_types <= _DATES
            if not dates and not (left_types | right_types) <= _ORDERED:
                raise Unsupported(f"ordering of {sorted(left_types | right_types)}")
            check = _CHECKS[op]

            def order(items: list, ctx: Context) -> list:
                result = compare(left(items, ctx), right(items, ctx), dates)
                return [] if result is None else [check(result)]

            return order, frozenset({"boolean"})
        if op in ("in", "contains"):
            member, group = (left, right) if op == "in" else (right, left)
            known = literal_collection(right_tree if op == "in" else left_tree)
            if known is not None:
                pool_set = LiteralSet(known)

                def literal_membership(items: list, ctx: Context) -> list:
                    value = member(items, ctx)
                    return [pool_set.holds(value[0])] if value else []

                return literal_membership, frozenset({"boolean"})

            def membership(items: list, ctx: Context) -> list:
                value = member(items, ctx)
                if not value:
                    return []
                pool = group(items, ctx)
                return [any(equal([value[0]], [other]) for other in pool)]

            return membership, frozenset({"boolean"})
        if op == "|":
            return (lambda items, ctx: union(left(items, ctx), right(items, ctx))), left_types | right_types
        if op in ("+", "&"):
            return self.arithmetic(op, left, right), left_types | right_types
        raise Unsupported(op)

    @staticmethod
    def arithmetic(op: str, left: Fn, right: Fn) -> Fn:
        def run(items: list, ctx: Context) -> list:
            a, b = left(items, ctx), right(items, ctx)
            if op == "&":
                return ["".join(str(x[0]) if x else "" for x in (a, b))]
            if len(a) != 1 or len(b) != 1:
                return []
            return [a[0] + b[0]]

        return run

    def call(self, tree: tuple, this: Types) -> tuple[Fn, Types]:
        from adapter.validation.fhirpath_functions import compile_function

        _, base_tree, name, args = tree
        if name in ("ofType", "as") and base_tree[0] == "nav" and len(args) == 1 and args[0][0] == "nav":
            # `value.ofType(Quantity)` reads the JSON property valueQuantity and nothing else.
            wanted = str(args[0][2])
            typed = ("nav", base_tree[1], base_tree[2] + wanted[:1].upper() + wanted[1:])
            try:
                return self.nav(typed, this)
            except Unsupported:
                pass
        base, base_types = self.compile(base_tree, this)
        return compile_function(self, name, base, base_types, args, this, base_tree == ("this",))


def compile_native(
    expression: str, focus_types: frozenset[str], resource_type: str | None
) -> tuple[Fn, tuple[str, ...] | None]:
    """Compile `expression` for a focus of `focus_types` (types or backbone paths).

    Returns the function and its guard: JSON properties of the focus of which at least one must be
    present for the expression to be false (None when there is no such shortcut). Raises Unsupported.
    """
    tree = parse(expression)
    focus = frozenset(focus_types)
    if not focus:
        raise Unsupported("the type of the focus is not known")
    resource = resource_type if resource_type in resource_types() else None
    function, _ = _Compiler(focus, resource).compile(tree, focus)
    guard = _guard(tree, focus)
    return function, tuple(sorted(guard)) if guard else None


def _keys_of(tree: tuple, focus: Types) -> frozenset[str] | None:
    """JSON properties (with `_` siblings) of a plain `name` step from the focus."""
    if tree[0] != "nav" or tree[1] != ("this",):
        return None
    keys: set[str] = set()
    for type_key in focus:
        try:
            found, _, primitive = _child(type_key, tree[2])
        except Unsupported:
            return None
        keys.update(found)
        if primitive:
            keys.update("_" + k for k in found)
    return frozenset(keys)


def _guard(tree: tuple, focus: Types) -> frozenset[str] | None:
    """Properties one of which must be present for `tree` to be false; None when not derivable."""
    if tree[0] == "call" and not tree[3]:
        if tree[2] == "empty":
            return _keys_of(tree[1], focus)
        if tree[2] == "not" and tree[1][0] == "call" and tree[1][2] == "exists" and not tree[1][3]:
            return _keys_of(tree[1][1], focus)
        return None
    if tree[0] != "op":
        return None
    _, op, left, right = tree
    if op == "or":
        return _guard(left, focus) or _guard(right, focus)
    if op == "and":
        a, b = _guard(left, focus), _guard(right, focus)
        return a | b if a is not None and b is not None else None
    if op == "implies":
        if left[0] == "call" and left[2] == "exists" and not left[3]:
            return _keys_of(left[1], focus)
        return _guard(right, focus)
    return None


__all__ = ["Context", "Fn", "Types", "Unsupported", "compile_native", "literal_collection", "navigate"]
