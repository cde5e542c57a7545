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
    """Every way a context may name the element at `path`: its path, type-relative paths, its types."""
    names = {path, "Element", "Base"}
    head, _, rest = path.partition(".")
    if not rest:
        names.update({"Resource", "DomainResource"} if head in resource_types() else set())
        names.add(head)
        return frozenset(names)
    steps = rest.split(".")
    try:
        info = element_info(head)
        for index in range(len(steps)):
            element = info.element(".".join([head, *steps[: index + 1]]))
            tail = steps[index + 1 :]
            if not tail:
                names.add(_CHOICE.sub("", element.path))
            types = [t for t in element.types if t not in ("BackboneElement", "Element")]
            if len(types) == 1:
                names.add(".".join([types[0], *tail]))
    except KeyError:
        pass
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
