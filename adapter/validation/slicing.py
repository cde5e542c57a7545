"""Slicing: which slice each repetition belongs to (by its discriminators) and the slicing rules."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from adapter.definitions import primitive_json_types
from adapter.validation.checks import prefixed, reference_type
from adapter.validation.environment import Environment
from adapter.validation.errors import REQUIRED, STRUCTURE, ProfileLoadError
from adapter.validation.matching import (
    Step,
    choice_value,
    compile_steps,
    fixed_matcher,
    parse_segment,
    pattern_matcher,
    select_steps,
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


def _value_types(
    item: Any, item_type: str, parents: tuple[Step, ...] | None, last: str, env: Environment
) -> list[str]:
    """Type codes of the values a type discriminator looks at (resource types, choice suffixes).

    `parents` are the steps before the last one (None: the path is only $this).
    """
    if parents is None:
        if isinstance(item, dict) and isinstance(item.get("resourceType"), str):
            return [item["resourceType"]]
        return [item_type]
    values = select_steps([item], parents, _resolver(env)) if parents else [item]
    out: list[str] = []
    for parent in values:
        if not isinstance(parent, dict):
            continue
        if last in parent:
            found = parent[last] if isinstance(parent[last], list) else [parent[last]]
            out.extend(v["resourceType"] for v in found if isinstance(v, dict) and "resourceType" in v)
            continue
        suffix, _ = choice_value(parent, last)
        if suffix:
            primitive = suffix[:1].lower() + suffix[1:]
            out.append(primitive if primitive in primitive_json_types() else suffix)
    return out


def _referenced_type(value: Any, env: Environment) -> str | None:
    """The type of the resource a Reference points to, as a type discriminator on resolve() sees it.

    A literal reference names its type; a reference to a Bundle entry or a contained resource has the
    type of that resource (urn:uuid references say nothing by themselves); a logical reference can only
    be judged by its Reference.type.
    """
    if not isinstance(value, dict):
        return None
    reference = value.get("reference")
    found = reference_type(reference, env) if isinstance(reference, str) else None
    if found is None and isinstance(reference, str):
        target = _resolve(env, reference)
        kind = target.get("resourceType") if target is not None else None
        found = kind if isinstance(kind, str) else None
    if found is None and isinstance(value.get("type"), str):
        found = value["type"]
    return found


def _target_type_names(compiler: Compiler, node: ElementNode | None) -> set[str]:
    """Resource types the references of an element may point to (from their target profiles)."""
    names: set[str] = set()
    for type_ref in node.types if node is not None else ():
        if type_ref.code != "Reference":
            continue
        for url in type_ref.target_profiles:
            sd = compiler.registry.structure(url)
            names.add(sd["type"] if sd else url.rstrip("/").rsplit("/", 1)[-1])
    return names


# What one discriminator reads from an item (its values, or their types), computed once per item and
# shared by every slice; then each slice's test of that reading.
Extract = Callable[[Any, str, Environment], list]
Test = Callable[[list, Environment], bool]


def _ends_in_resolve(segments: list[str]) -> bool:
    return bool(segments) and parse_segment(segments[-1])[0] == "resolve"


def _extractor(kind: str, segments: list[str]) -> Extract:
    if kind == "type" and _ends_in_resolve(segments):
        # resolve() as the last step: the referenced resource's type, not the target's definition.
        references = compile_steps(segments[:-1])
        return lambda item, item_type, env: [
            _referenced_type(r, env) for r in select_steps([item], references, _resolver(env))
        ]
    if kind == "type":
        only_this = all(parse_segment(s)[0] == "$this" for s in segments)
        parents = None if only_this else compile_steps(segments[:-1])
        last = parse_segment(segments[-1])[0] if segments else "$this"
        return lambda item, item_type, env: _value_types(item, item_type, parents, last, env)
    steps = compile_steps(segments)
    if any(name == "resolve" for name, _ in steps):
        return lambda item, item_type, env: select_steps([item], steps, _resolver(env))
    return lambda item, item_type, env: select_steps([item], steps)


def _slice_test(compiler: Compiler, conforms: Conforms, slice_node: ElementNode, disc: dict) -> Test:
    kind = disc.get("type", "value")
    segments = split_path(str(disc.get("path", "$this")))
    if kind == "type" and _ends_in_resolve(segments):
        # The allowed types are the targets of the slice's Reference: the resolved resource's
        # definition has no type of its own to compare with.
        reference_node, _ = _target(compiler, slice_node, segments[:-1])
        targets = _target_type_names(compiler, reference_node)
        if not targets:
            return lambda found, env: True
        if targets & {"Resource", "DomainResource"}:
            return lambda found, env: any(t is not None for t in found)
        return lambda found, env: any(t in targets for t in found)
    target, _ = _target(compiler, slice_node, segments)
    if kind == "exists":
        if target is None:
            return lambda found, env: True
        must, must_not = target.min >= 1, target.max == 0
        return lambda found, env: (bool(found) or not must) and not (must_not and found)
    if kind == "type":
        allowed = _type_names(compiler, target) if target is not None else set()
        if not allowed:
            return lambda found, env: True
        return lambda found, env: any(t in allowed for t in found)
    if kind == "profile":
        profiles: tuple[str, ...] = ()
        if target is not None:
            for ref in target.types:
                profiles += ref.profiles if segments[-1:] != ["resolve()"] else ref.target_profiles
        if not profiles:
            return lambda found, env: True
        return lambda found, env: any(conforms(v, p, env) for v in found for p in profiles)
    # value and pattern discriminators read the fixed value, pattern or binding at the path
    expected = _expected_value(compiler, slice_node, segments, target)
    if expected is None and segments == ["url"] and slice_node.types and slice_node.types[0].profiles:
        expected = (True, slice_node.types[0].profiles[0])
    if expected is not None:
        exact, wanted = expected
        same = fixed_matcher(wanted) if exact else pattern_matcher(wanted)
        return lambda found, env: any(map(same, found))
    binding = target.element.get("binding") if target is not None else None
    if isinstance(binding, dict) and isinstance(binding.get("valueSet"), str):
        return _binding_test(compiler, binding["valueSet"])
    # Nothing to discriminate on: the slice cannot be recognised.
    return lambda found, env: False


def _binding_test(compiler: Compiler, value_set: str) -> Test:
    def test_binding(found: list, env: Environment) -> bool:
        for value in found:
            if isinstance(value, str) and compiler.terminology.check(value_set, None, value) == IN:
                return True
            if isinstance(value, dict):
                codings = value.get("coding") if "coding" in value else [value]
                for coding in codings if isinstance(codings, list) else ():
                    if isinstance(coding, dict) and isinstance(coding.get("code"), str):
                        status = compiler.terminology.check(value_set, coding.get("system"), coding["code"])
                        if status == IN:
                            return True
        return False

    return test_binding


def _resolve(env: Environment, reference: str) -> dict | None:
    return env.services.resolve_reference(reference, env) if env.services is not None else None


def _resolver(env: Environment) -> Callable[[str], dict | None]:
    return lambda reference: _resolve(env, reference)


class SliceMatcher:
    """The discriminator tests of one slice; an item belongs to the slice when all of them pass."""

    __slots__ = ("slice", "tests")

    def __init__(self, slice_node: ElementNode, tests: list[Test]) -> None:
        self.slice = slice_node
        self.tests = tests

    def matches(self, found: list[list], env: Environment) -> bool:
        """`found`: what each discriminator read from the item (see `Slicing.read`)."""
        for test, reading in zip(self.tests, found, strict=True):
            if not test(reading, env):
                return False
        return True


class Slicing:
    """A sliced element's discriminators (read once per item) and the matchers of its slices."""

    __slots__ = ("extractors", "matchers")

    def __init__(self, extractors: list[Extract], matchers: list[SliceMatcher]) -> None:
        self.extractors = extractors
        self.matchers = matchers

    def read(self, item: Any, item_type: str, env: Environment) -> list[list]:
        return [extract(item, item_type, env) for extract in self.extractors]


def matchers(compiler: Compiler, conforms: Conforms, node: ElementNode) -> Slicing:
    """The discriminators and slice matchers of a sliced element, built once and kept on the node."""
    if node.slice_matchers is None:
        discriminators = [d for d in (node.slicing or {}).get("discriminator") or () if isinstance(d, dict)]
        if not discriminators and node.types and node.types[0].code == "Extension":
            discriminators = [{"type": "value", "path": "url"}]
        extractors = [
            _extractor(d.get("type", "value"), split_path(str(d.get("path", "$this"))))
            for d in discriminators
        ]
        built = [
            SliceMatcher(slice_node, [_slice_test(compiler, conforms, slice_node, d) for d in discriminators])
            for slice_node in node.slices
        ]
        node.slice_matchers = Slicing(extractors, built)
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
    sliced = matchers(compiler, conforms, node)
    found = sliced.matchers
    assigned: list[ElementNode | None] = []
    order: list[int] = []
    counts = [0] * len(found)
    for value, item_type in items:
        chosen = None
        reading = sliced.read(value, item_type, env)
        for position, matcher in enumerate(found):
            if matcher.matches(reading, env):
                chosen = matcher.slice
                order.append(position)
                counts[position] += 1
                break
        assigned.append(chosen)
    slicing = node.slicing or {}
    rules = slicing.get("rules", "open")
    for matcher, count in zip(found, counts, strict=True):
        piece = matcher.slice
        if count < piece.min:
            message = f"slice '{piece.slice_name}' requires at least {piece.min} item(s), found {count}"
            env.error(REQUIRED, message, expr)
        if piece.max is not None and count > piece.max:
            message = f"slice '{piece.slice_name}' allows at most {piece.max} item(s), found {count}"
            env.error(STRUCTURE, message, expr)
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


__all__ = ["Conforms", "SliceMatcher", "Slicing", "assign", "matchers"]
