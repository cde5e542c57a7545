"""The code system that a token parameter's path implies, for elements of type code and boolean.

R4 search.html (token): a `code` element carries no system; its system is the one that the value set
named by its binding draws from, and a boolean's is http://hl7.org/fhir/special-values. Indexing that
system lets `gender=http://hl7.org/fhir/administrative-gender|female` match, and keeps `|female`
(a value without a system) from matching a code that has one. It is resolved once per parameter path
from the core definitions, so indexing a resource does no extra work.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING

from adapter.definitions import (
    ElementInfo,
    code_systems,
    element_info,
    structure_definition_for_type,
    value_sets,
)

if TYPE_CHECKING:
    from adapter.search.params import PathSpec

BOOLEAN_SYSTEM = "http://hl7.org/fhir/special-values"


# What a path implies: one system for all its codes, or (when its value set draws from several code
# systems, as Task.intent does) the system of each code.
Implied = tuple[str | None, tuple[tuple[str, str], ...]]


def implied_systems(res_type: str, spec: PathSpec) -> Implied:
    """The system of the values `spec` reaches on `res_type` when they are booleans, or codes bound to a
    core value set whose codes each come from one code system; (None, ()) otherwise, and when the path
    cannot be typed."""
    leaf = _leaf(res_type, spec)
    if leaf is None:
        return None, ()
    owner, element, type_code = leaf
    if type_code == "boolean":
        return BOOLEAN_SYSTEM, ()
    value_set = _bindings(owner).get(element.path) if type_code == "code" else None
    if value_set is None:
        return None, ()
    systems = _systems(value_set.partition("|")[0])
    if systems is None:
        return None, ()
    if len(systems) == 1:
        return next(iter(systems)), ()
    if None in systems.values():
        return None, ()  # a code could be from a system whose codes are not known here
    # Several systems: each code by the one system that has it (a code two of them share has none).
    owners: dict[str, set[str]] = {}
    for system, codes in systems.items():
        for code in codes or ():
            owners.setdefault(code, set()).add(system)
    return None, tuple(sorted((code, found.pop()) for code, found in owners.items() if len(found) == 1))


def _leaf(res_type: str, spec: PathSpec) -> tuple[str, ElementInfo, str] | None:
    """The type that defines the last element of the path, that element, and its type code."""
    if not spec.steps:
        return None
    owner = context = res_type
    casts = dict(spec.step_casts)
    last = len(spec.steps) - 1
    for position, step in enumerate(spec.steps):
        found = _child(owner, context, step, spec.cast if position == last else casts.get(position))
        if found is None:
            return None
        element, type_code = found
        if position == last:
            return owner, element, type_code
        if element.children_path:  # a backbone element: its children are defined in the same type
            context = element.children_path
        else:
            owner = context = type_code
    return None


def _child(owner: str, context: str, step: str, cast: str | None) -> tuple[ElementInfo, str] | None:
    try:
        info = element_info(owner)
    except KeyError:
        return None
    child = info.child(context, step + cast[0].upper() + cast[1:] if cast else step)
    if child is not None:
        return child.element, child.type_code
    for element in info.children(context):
        # A choice named by its stem has a type only when it allows one.
        if element.name == step + "[x]" and len(element.types) == 1 and cast is None:
            return element, element.types[0]
    return None


@cache
def _bindings(type_name: str) -> dict[str, str]:
    """Element path -> the value set its binding names, for the elements of one type."""
    sd = structure_definition_for_type(type_name)
    return {
        e["path"]: e["binding"]["valueSet"]
        for e in sd.get("snapshot", {}).get("element", ())
        if isinstance(e.get("binding"), dict) and e["binding"].get("valueSet")
    }


@cache
def _systems(url: str, depth: int = 0) -> dict[str, frozenset[str] | None] | None:
    """The code systems a core value set includes codes from, each with those codes (None: codes that
    cannot be listed here, all of a system not shipped); None when the value set is not known or
    includes something else than codes of a system."""
    value_set = value_sets().get(url)
    if value_set is None or depth > 5:
        return None
    out: dict[str, frozenset[str] | None] = {}
    for include in value_set.get("compose", {}).get("include", ()):
        parts: list[dict[str, frozenset[str] | None] | None] = [
            _systems(inner.partition("|")[0], depth + 1) for inner in include.get("valueSet", ())
        ]
        if include.get("system"):
            parts.append({include["system"]: _codes(include)})
        if not parts or None in parts:
            return None
        for part in parts:
            for system, codes in part.items():  # type: ignore[union-attr]
                if system not in out:
                    out[system] = codes
                else:
                    known = out[system]
                    out[system] = None if known is None or codes is None else known | codes
    return out


def _codes(include: dict) -> frozenset[str] | None:
    if include.get("filter"):
        return None
    if include.get("concept"):
        return frozenset(c["code"] for c in include["concept"] if isinstance(c.get("code"), str))
    system = code_systems().get(include["system"])
    if system is None or system.get("content") not in (None, "complete"):
        return None
    found: set[str] = set()
    stack = list(system.get("concept", ()))
    while stack:
        concept = stack.pop()
        found.add(concept["code"])
        stack.extend(concept.get("concept", ()))
    return frozenset(found)
