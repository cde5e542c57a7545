"""Interim structural check of a resource with the R4B models of fhir.resources.

The StructureDefinition-driven validator (issue 4) replaces this as the single judge. Until then the
models check element names, types and required elements. Where the library is known to be wrong the
specification wins: it rejects primitive extensions on extension values (`_valueString` inside an
Extension), which R4 allows, so those are checked here by shape and hidden from the model. The stored
resource is always the one received, never the model's re-serialisation.
"""

from __future__ import annotations

from functools import cache
from importlib.util import find_spec
from typing import Any

from pydantic import ValidationError

from adapter.definitions import resource_types
from adapter.errors import Issue, UnprocessableResourceError


@cache
def _model_class(res_type: str) -> Any:
    from fhir.resources.R4B import get_fhir_model_class

    try:
        return get_fhir_model_class(res_type)
    except (KeyError, ValueError):
        return None


@cache
def served_resource_types() -> tuple[str, ...]:
    """The R4 resource types this server stores: those the interim structural check can judge."""
    # find_spec instead of importing: importing all 140 model modules would add seconds to start-up.
    return tuple(
        sorted(t for t in resource_types() if find_spec(f"fhir.resources.R4B.{t.lower()}") is not None)
    )


def is_known_type(res_type: str) -> bool:
    """True when res_type is a concrete R4 resource type (R4B-only types are not served)."""
    return res_type in _served_set()


@cache
def _served_set() -> frozenset[str]:
    return frozenset(served_resource_types())


def _without_extension_value_primitives(node: Any, found: list[tuple[str, Any]], path: str) -> Any:
    if isinstance(node, list):
        return [
            _without_extension_value_primitives(item, found, f"{path}[{i}]") for i, item in enumerate(node)
        ]
    if not isinstance(node, dict):
        return node
    is_extension = isinstance(node.get("url"), str)
    out = {}
    for key, value in node.items():
        if is_extension and key.startswith("_value"):
            found.append((f"{path}.{key}", value))
            continue
        out[key] = _without_extension_value_primitives(value, found, f"{path}.{key}")
    return out


def _expression(res_type: str, loc: tuple) -> str:
    text = res_type
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        elif part not in ("function-after", "function-plain", "function-wrap"):
            text += f".{part}"
    return text


def check_structure(resource: dict) -> None:
    """Raise UnprocessableResourceError naming every structural problem of `resource`."""
    res_type = resource.get("resourceType")
    if not isinstance(res_type, str) or not is_known_type(res_type):
        raise UnprocessableResourceError(f"unknown resourceType {res_type!r}", expression="resourceType")
    hidden: list[tuple[str, Any]] = []
    candidate = _without_extension_value_primitives(resource, hidden, res_type)
    issues = [
        Issue("error", "structure", f"{path} must be an object with id and/or extension", (path,))
        for path, value in hidden
        if not isinstance(value, dict) or set(value) - {"id", "extension"}
    ]
    try:
        _model_class(res_type).model_validate(candidate)
    except ValidationError as exc:
        for error in exc.errors():
            where = _expression(res_type, tuple(error.get("loc", ())))
            issues.append(Issue("error", "structure", f"{where}: {error.get('msg')}", (where,)))
    except (ValueError, TypeError) as exc:
        issues.append(Issue("error", "structure", f"{res_type}: {exc}", (res_type,)))
    if issues:
        raise UnprocessableResourceError(issues[0].diagnostics, issues=issues)
