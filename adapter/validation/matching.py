"""Comparing JSON values with fixed[x] and pattern[x], and walking simple FHIRPath paths over JSON."""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal
from functools import cache
from typing import Any

from adapter.definitions import structure_definitions
from adapter.fhirio.elements import children

_FUNCTION = re.compile(r"(\w+)\((.*)\)\Z")


def _same_primitive(value: Any, expected: Any) -> bool:
    # bool is an int in Python; FHIR never equates true with 1.
    if isinstance(value, bool) or isinstance(expected, bool):
        return value is expected
    if isinstance(value, int | Decimal | float) and isinstance(expected, int | Decimal | float):
        return Decimal(str(value)) == Decimal(str(expected))
    return value == expected


def equals_fixed(value: Any, fixed: Any) -> bool:
    """fixed[x]: the instance value is exactly the fixed value, with nothing more and nothing less."""
    if isinstance(fixed, dict):
        if not isinstance(value, dict) or set(value) != set(fixed):
            return False
        return all(equals_fixed(value[k], v) for k, v in fixed.items())
    if isinstance(fixed, list):
        if not isinstance(value, list) or len(value) != len(fixed):
            return False
        return all(equals_fixed(a, b) for a, b in zip(value, fixed, strict=True))
    return _same_primitive(value, fixed)


def matches_pattern(value: Any, pattern: Any) -> bool:
    """pattern[x]: every property of the pattern is in the value; each pattern array item has a match."""
    if isinstance(pattern, dict):
        if not isinstance(value, dict):
            return False
        return all(k in value and matches_pattern(value[k], v) for k, v in pattern.items())
    if isinstance(pattern, list):
        if not isinstance(value, list):
            return False
        return all(any(matches_pattern(item, p) for item in value) for p in pattern)
    return _same_primitive(value, pattern)


# A value test built once from a fixed[x] or pattern[x] value: does an instance value meet it?
Matcher = Callable[[Any], bool]


def fixed_matcher(fixed: Any) -> Matcher:
    """`equals_fixed(value, fixed)` as a function of the value, with the fixed value's shape unrolled."""
    if isinstance(fixed, dict):
        keys = set(fixed)
        parts = tuple((key, fixed_matcher(value)) for key, value in fixed.items())

        def fixed_object(value: Any) -> bool:
            if not isinstance(value, dict) or value.keys() != keys:
                return False
            return all(part(value[key]) for key, part in parts)

        return fixed_object
    if isinstance(fixed, list):
        items = tuple(fixed_matcher(item) for item in fixed)

        def fixed_array(value: Any) -> bool:
            if not isinstance(value, list) or len(value) != len(items):
                return False
            return all(part(item) for part, item in zip(items, value, strict=True))

        return fixed_array
    return _primitive_matcher(fixed)


def pattern_matcher(pattern: Any) -> Matcher:
    """`matches_pattern(value, pattern)` as a function of the value, with the pattern's shape unrolled.

    Patterns are checked on every coding, identifier and category of the profiled elements and in
    slice discriminators, so walking the pattern's JSON on each call is worth saving.
    """
    if isinstance(pattern, dict):
        parts = tuple((key, pattern_matcher(value)) for key, value in pattern.items())

        def pattern_object(value: Any) -> bool:
            if not isinstance(value, dict):
                return False
            for key, part in parts:
                if key not in value or not part(value[key]):
                    return False
            return True

        return pattern_object
    if isinstance(pattern, list):
        wanted = tuple(pattern_matcher(item) for item in pattern)

        def pattern_array(value: Any) -> bool:
            if not isinstance(value, list):
                return False
            for part in wanted:
                for item in value:
                    if part(item):
                        break
                else:
                    return False
            return True

        return pattern_array
    return _primitive_matcher(pattern)


def _primitive_matcher(expected: Any) -> Matcher:
    if type(expected) is str:
        # _same_primitive with a string expected is plain equality (a bool or number never equals it).
        return lambda value: value == expected
    return lambda value: _same_primitive(value, expected)


@cache
def type_suffixes() -> frozenset[str]:
    """Every type name as it ends a choice element's JSON name (valueString, valueQuantity...)."""
    names = {sd["type"] for sd in structure_definitions().values() if sd.get("derivation") != "constraint"}
    return frozenset(name[:1].upper() + name[1:] for name in names)


def choice_value(obj: dict, name: str) -> tuple[str | None, Any]:
    """(type suffix, value) of a choice element `name[x]` in a JSON object, e.g. ("Quantity", {...})."""
    suffixes = type_suffixes()
    for key, value in obj.items():
        if key.startswith(name) and key[len(name) :] in suffixes:
            return key[len(name) :], value
    return None, None


def split_path(path: str) -> list[str]:
    """Segments of a discriminator path; dots inside function arguments do not split."""
    out: list[str] = []
    depth = 0
    quoted = False
    current = ""
    for char in path:
        if char == "'":
            quoted = not quoted
        elif not quoted and char == "(":
            depth += 1
        elif not quoted and char == ")":
            depth -= 1
        if char == "." and depth == 0 and not quoted:
            out.append(current)
            current = ""
        else:
            current += char
    if current:
        out.append(current)
    return out


def parse_segment(segment: str) -> tuple[str, str | None]:
    """("name", None) for a plain step, ("function", "argument") for extension('x'), ofType(T)..."""
    match = _FUNCTION.match(segment)
    if match is None:
        return segment, None
    return match[1], match[2].strip().strip("'\"")


def _merge_of_type(segments: list[str]) -> list[str]:
    # `value.ofType(Quantity)` is the JSON property valueQuantity.
    out: list[str] = []
    for segment in segments:
        name, argument = parse_segment(segment)
        if name == "ofType" and argument and out and "(" not in out[-1] and out[-1] != "$this":
            out[-1] = out[-1] + argument[:1].upper() + argument[1:]
        else:
            out.append(segment)
    return out


# One parsed step of a discriminator path: (name, None) for a property, (function, argument) for a call.
Step = tuple[str, str | None]


def compile_steps(segments: list[str]) -> tuple[Step, ...]:
    """The steps `select_steps` walks, parsed once (ofType folded into choice names, $this dropped).

    Slicing evaluates the same discriminator paths for every repetition of every instance, so they are
    parsed once per slicing definition rather than on each item.
    """
    steps = (parse_segment(segment) for segment in _merge_of_type(segments))
    return tuple(step for step in steps if step[0] != "$this")


def select(items: list, segments: list[str], resolve: Any = None) -> list:
    """The values reached from `items` by a discriminator path (lists flattened, choices by prefix)."""
    return select_steps(items, compile_steps(segments), resolve)


def select_steps(items: list, steps: tuple[Step, ...], resolve: Any = None) -> list:
    """`select` over steps already parsed by `compile_steps`."""
    for name, argument in steps:
        if argument is not None or name == "resolve":
            found: list = []
            for item in items:
                found.extend(_apply_function(item, name, argument, resolve))
            items = found
        else:
            items = children(items, name, _choice)
    return items


def _choice(item: dict, name: str) -> Any:
    return choice_value(item, name)[1]


def _apply_function(item: Any, name: str, argument: str | None, resolve: Any) -> list:
    if name == "extension" and isinstance(item, dict):
        found = item.get("extension")
        found = found if isinstance(found, list) else []
        return [e for e in found if isinstance(e, dict) and e.get("url") == argument]
    if name == "resolve":
        if resolve is None or not isinstance(item, dict) or not isinstance(item.get("reference"), str):
            return []
        target = resolve(item["reference"])
        return [target] if target is not None else []
    if name == "ofType":
        # ofType after a choice step is handled by the caller knowing the JSON name; keep the value.
        return [item]
    return []


__all__ = [
    "Matcher",
    "Step",
    "choice_value",
    "compile_steps",
    "equals_fixed",
    "fixed_matcher",
    "matches_pattern",
    "pattern_matcher",
    "parse_segment",
    "select",
    "select_steps",
    "split_path",
]
