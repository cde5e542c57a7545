"""Slicing: which slice each repetition belongs to (by its discriminators) and the slicing rules."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from adapter.definitions import primitive_json_types
from adapter.validation.checks import prefixed
from adapter.validation.environment import Environment
from adapter.validation.errors import REQUIRED, STRUCTURE, ProfileLoadError
from adapter.validation.matching import (
    choice_value,
    equals_fixed,
    matches_pattern,
    parse_segment,
    select,
    split_path,
)
from adapter.validation.terminology import IN

if TYPE_CHECKING:
    from adapter.validation.compiler import Compiler
    from adapter.validation.model import ElementNode, TypeRef

# conforms(value, profile url, env) -> bool: does a value meet a profile (the profile discriminator).
Conforms = Callable[[Any, str, Environment], bool]
# An item to slice: (JSON value, type code it has in the instance).
Item = tuple[Any, str]


def _target(compiler: Compiler, node: ElementNode, segments: list[str]) -> tuple[ElementNode | None, Any]:
    """The element (and its type) a discriminator path reaches inside one slice's definition."""
    current: ElementNode | None = node
    type_ref: TypeRef | None = node.types[0] if node.types else None
    for segment in segments:
        if current is None:
            return None, None
        name, argument = parse_segment(segment)
        if name == "$this":
            continue
        if name == "ofType" and argument:
            type_ref = current.type_for(argument) or type_ref
            continue
        if name == "resolve":
            targets = type_ref.target_profiles if type_ref is not None else ()
            try:
                root = compiler.structure(targets[0]).root if targets else None
            except ProfileLoadError:  # an unknown target profile simply cannot discriminate
                root = None
            current, type_ref = root, None
            continue
        children = compiler.body(current, type_ref).by_name
        if name == "extension" and argument:
            base = children.get("extension")
            current = _extension_slice(compiler, base, argument) if base is not None else None
            type_ref = current.types[0] if current is not None and current.types else None
            continue
        child = children.get(name) or children.get(name + "[x]")
        current = child
        type_ref = child.types[0] if child is not None and child.types else None
    return current, type_ref


def _fixed_or_pattern(node: ElementNode | None) -> tuple[bool, Any] | None:
    if node is None:
        return None
    fixed = prefixed(node.element, "fixed")
    if fixed is not None:
        return True, fixed[1]
    pattern = prefixed(node.element, "pattern")
    return (False, pattern[1]) if pattern is not None else None


def _expected_value(
    compiler: Compiler, slice_node: ElementNode, segments: list[str], target: ElementNode | None
) -> tuple[bool, Any] | None:
    """(exact, value) a value/pattern discriminator expects; looks into mandatory slices on the way."""
    found = _fixed_or_pattern(target)
    if found is not None:
        return found
    # `code.coding.code` where coding is itself sliced: a mandatory coding slice fixes the code.
    for cut in range(len(segments) - 1, 0, -1):
        middle, _ = _target(compiler, slice_node, segments[:cut])
        if middle is None or not middle.slices:
            continue
        for inner in middle.slices:
            if inner.min >= 1:
                found = _fixed_or_pattern(_target(compiler, inner, segments[cut:])[0])
                if found is not None:
                    return found
    return None


def _extension_slice(compiler: Compiler, base: ElementNode, url: str) -> ElementNode | None:
    for candidate in base.slices:
        if any(url in t.profiles for t in candidate.types):
            return candidate
        url_node, _ = _target(compiler, candidate, ["url"])
        fixed = prefixed(url_node.element, "fixed") if url_node is not None else None
        if fixed is not None and fixed[1] == url:
            return candidate
    return None


def _type_names(compiler: Compiler, node: ElementNode) -> set[str]:
    names: set[str] = set()
    for type_ref in node.types:
        if type_ref.code in ("Resource", "DomainResource") and type_ref.profiles:
            for profile in type_ref.profiles:
                sd = compiler.registry.structure(profile)
                names.add(sd["type"] if sd else type_ref.code)
        else:
            names.add(type_ref.code)
    return names


def _value_types(item: Any, item_type: str, segments: list[str]) -> list[str]:
    """Type codes of the values a type discriminator looks at (resource types, choice suffixes)."""
    if all(parse_segment(s)[0] == "$this" for s in segments):
        if isinstance(item, dict) and isinstance(item.get("resourceType"), str):
            return [item["resourceType"]]
        return [item_type]
    parents = select([item], segments[:-1])
    last = parse_segment(segments[-1])[0]
    out: list[str] = []
    for parent in parents:
        if not isinstance(parent, dict):
            continue
        if last in parent:
            values = parent[last] if isinstance(parent[last], list) else [parent[last]]
            out.extend(v["resourceType"] for v in values if isinstance(v, dict) and "resourceType" in v)
            continue
        suffix, _ = choice_value(parent, last)
        if suffix:
            primitive = suffix[:1].lower() + suffix[1:]
            out.append(primitive if primitive in primitive_json_types() else suffix)
    return out


# A discriminator test: given the item, its instance type and the environment, does it fit the slice?
Test = Callable[[Any, str, Environment], bool]


def _discriminator_test(compiler: Compiler, conforms: Conforms, slice_node: ElementNode, disc: dict) -> Test:
    kind = disc.get("type", "value")
    segments = split_path(str(disc.get("path", "$this")))
    target, type_ref = _target(compiler, slice_node, segments)

    if kind == "exists":
        if target is None:
            return lambda item, item_type, env: True
        must, must_not = target.min >= 1, target.max == 0
        return lambda item, item_type, env: (
            (bool(select([item], segments)) or not must) and not (must_not and select([item], segments))
        )
    if kind == "type":
        allowed = _type_names(compiler, target) if target is not None else set()
        if not allowed:
            return lambda item, item_type, env: True
        return lambda item, item_type, env: any(t in allowed for t in _value_types(item, item_type, segments))
    if kind == "profile":
        profiles: tuple[str, ...] = ()
        if target is not None:
            for ref in target.types:
                profiles += ref.profiles if segments[-1:] != ["resolve()"] else ref.target_profiles
        if not profiles:
            return lambda item, item_type, env: True

        def test_profile(item: Any, item_type: str, env: Environment) -> bool:
            values = select([item], segments, lambda r: _resolve(env, r))
            return any(conforms(v, p, env) for v in values for p in profiles)

        return test_profile
    # value and pattern discriminators read the fixed value, pattern or binding at the path
    expected = _expected_value(compiler, slice_node, segments, target)
    if expected is None and segments == ["url"] and slice_node.types and slice_node.types[0].profiles:
        expected = (True, slice_node.types[0].profiles[0])
    if expected is not None:
        exact, wanted = expected

        def test_value(item: Any, item_type: str, env: Environment) -> bool:
            values = select([item], segments, lambda r: _resolve(env, r))
            if exact:
                return any(equals_fixed(v, wanted) for v in values)
            return any(matches_pattern(v, wanted) for v in values)

        return test_value
    binding = target.element.get("binding") if target is not None else None
    if isinstance(binding, dict) and isinstance(binding.get("valueSet"), str):
        value_set = binding["valueSet"]

        def test_binding(item: Any, item_type: str, env: Environment) -> bool:
            for value in select([item], segments):
                if isinstance(value, str) and compiler.terminology.check(value_set, None, value) == IN:
                    return True
                if isinstance(value, dict):
                    codings = value.get("coding") if "coding" in value else [value]
                    for coding in codings if isinstance(codings, list) else ():
                        if isinstance(coding, dict) and isinstance(coding.get("code"), str):
                            status = compiler.terminology.check(
                                value_set, coding.get("system"), coding["code"]
                            )
                            if status == IN:
                                return True
            return False

        return test_binding
    # Nothing to discriminate on: the slice cannot be recognised.
    return lambda item, item_type, env: False


def _resolve(env: Environment, reference: str) -> dict | None:
    return env.services.resolve_reference(reference, env) if env.services is not None else None


class SliceMatcher:
    """The discriminator tests of one slice; an item belongs to the slice when all of them pass."""

    __slots__ = ("slice", "tests")

    def __init__(self, slice_node: ElementNode, tests: list[Test]) -> None:
        self.slice = slice_node
        self.tests = tests

    def matches(self, item: Any, item_type: str, env: Environment) -> bool:
        return all(test(item, item_type, env) for test in self.tests)


def matchers(compiler: Compiler, conforms: Conforms, node: ElementNode) -> list[SliceMatcher]:
    """The matchers of a sliced element, built once and kept on the node."""
    if node.slice_matchers is None:
        discriminators = [d for d in (node.slicing or {}).get("discriminator") or () if isinstance(d, dict)]
        if not discriminators and node.types and node.types[0].code == "Extension":
            discriminators = [{"type": "value", "path": "url"}]
        built = []
        for slice_node in node.slices:
            built.append(
                SliceMatcher(
                    slice_node,
                    [_discriminator_test(compiler, conforms, slice_node, d) for d in discriminators],
                )
            )
        node.slice_matchers = built
    return node.slice_matchers


def assign(
    compiler: Compiler,
    conforms: Conforms,
    node: ElementNode,
    items: list[Item],
    expressions: list[str],
    expr: str,
    env: Environment,
) -> list[ElementNode | None]:
    """The slice of each item (None: unmatched), reporting slice cardinality and slicing rule problems."""
    found = matchers(compiler, conforms, node)
    assigned: list[ElementNode | None] = []
    order: list[int] = []
    for value, item_type in items:
        chosen = None
        for position, matcher in enumerate(found):
            if matcher.matches(value, item_type, env):
                chosen = matcher.slice
                order.append(position)
                break
        assigned.append(chosen)
    slicing = node.slicing or {}
    rules = slicing.get("rules", "open")
    for matcher in found:
        count = sum(1 for a in assigned if a is matcher.slice)
        label = f"slice '{matcher.slice.slice_name}'"
        if count < matcher.slice.min:
            env.error(REQUIRED, f"{label} requires at least {matcher.slice.min} item(s), found {count}", expr)
        if matcher.slice.max is not None and count > matcher.slice.max:
            env.error(STRUCTURE, f"{label} allows at most {matcher.slice.max} item(s), found {count}", expr)
    if rules == "closed":
        for index, chosen in enumerate(assigned):
            if chosen is None:
                env.error(STRUCTURE, "item matches no slice, and the slicing is closed", expressions[index])
    elif rules == "openAtEnd":
        last_matched = max((i for i, a in enumerate(assigned) if a is not None), default=-1)
        for index, chosen in enumerate(assigned[:last_matched]):
            if chosen is None:
                env.error(
                    STRUCTURE, "unmatched items must come after the slices (openAtEnd)", expressions[index]
                )
    if slicing.get("ordered") and order != sorted(order):
        env.error(STRUCTURE, "items are not in the order of the slices (ordered slicing)", expr)
    return assigned


__all__ = ["Conforms", "SliceMatcher", "assign", "matchers"]
