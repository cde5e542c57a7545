"""Where an extension may be used: StructureDefinition.context checked against the element it sits on."""

from __future__ import annotations

import re
from functools import lru_cache

from adapter.definitions import element_info, resource_types

_INDEX = re.compile(r"\[\d+\]")
_CHOICE = re.compile(r"\[x\]")


def element_path(where: str, resource_expr: str, resource_type: str) -> str:
    """The element path (no indexes) of an instance location, relative to the resource holding it.

    `Bundle.entry[0].resource.name[1].extension[0]` inside the entry's Patient is `Patient.name`.
    """
    inner = where[len(resource_expr) :] if where.startswith(resource_expr) else where
    path = resource_type + _INDEX.sub("", inner)
    return path.removesuffix(".extension").removesuffix(".modifierExtension")


@lru_cache(maxsize=4096)
def _names(path: str) -> frozenset[str]:
    """Every way a context may name the element at `path`: its element path and its type.

    `path` is made of JSON names (`Observation.component.valueCodeableConcept.coding`). Walking it
    through the definitions gives the element's path inside the innermost type that holds it
    (`CodeableConcept.coding`, or `Observation.component` for a backbone element) and its own type
    (`Coding`); a context of type `element` may name either.
    """
    names = {path, "Element", "Base"}
    head, _, rest = path.partition(".")
    if not rest:
        names.update({"Resource", "DomainResource"} if head in resource_types() else set())
        names.add(head)
        return frozenset(names)
    holder, lookup, element_path = head, head, [head]  # the type we are in, where its children live
    type_code = head
    for step in rest.split("."):
        try:
            child = element_info(holder).child(lookup, step)
        except KeyError:
            child = None
        if child is None:
            return frozenset(names)  # not a known element: only its literal path can match
        element, type_code = child.element, child.type_code
        element_path.append(_CHOICE.sub("", element.name))
        if element.content_reference:  # a recursive element is named by the element it repeats
            element_path = element.content_reference.split(".")
        if element.children_path or type_code in ("BackboneElement", "Element"):
            lookup = element.children_path or element.path  # inline children: same definition
        else:
            holder, lookup = type_code, type_code  # a datatype: continue in its own definition
            final_in_holder = ".".join(element_path)
            element_path = [type_code]
            continue
        final_in_holder = ".".join(element_path)
    names.add(final_in_holder)
    names.add(type_code)
    return frozenset(names)


def allowed_here(contexts: object, path: str, parent_extension: str | None) -> bool:
    """True when one of the definition's contexts admits the element at `path` (or lists no context)."""
    if not isinstance(contexts, list) or not contexts:
        return True
    names = _names(path)
    for context in contexts:
        if not isinstance(context, dict):
            continue
        kind, expression = context.get("type"), context.get("expression")
        if not isinstance(expression, str) or kind == "fhirpath":
            return True  # a FHIRPath context is not judged here
        if kind == "extension":
            if parent_extension is not None and expression == parent_extension:
                return True
            continue
        if _CHOICE.sub("", expression) in names or expression in names:
            return True
    return False


def describe(contexts: object) -> str:
    if not isinstance(contexts, list):
        return "?"
    return ", ".join(str(c.get("expression")) for c in contexts if isinstance(c, dict))


__all__ = ["allowed_here", "describe", "element_path"]
