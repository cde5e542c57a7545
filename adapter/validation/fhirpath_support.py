"""FHIRPath through fhirpathpy: each expression compiled once, plus the FHIR functions fhirpathpy lacks."""

from __future__ import annotations

import contextvars
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import fhirpathpy
from fhirpathpy.engine.nodes import ResourceNode
from fhirpathpy.models import models

_MODEL = models["r4"]


@dataclass(frozen=True)
class Hooks:
    """What FHIR-specific functions need from the running validation (set per evaluation)."""

    resolve: Callable[[str], dict | None]
    conforms_to: Callable[[Any, str], bool | None]
    member_of: Callable[[Any, str], bool | None]


_HOOKS: contextvars.ContextVar[Hooks | None] = contextvars.ContextVar("fhirpath_hooks", default=None)


def _has_value(inputs: list) -> list:
    # A primitive with only extensions arrives as None; complex values are dicts.
    return [len(inputs) == 1 and inputs[0] is not None and not isinstance(inputs[0], dict | list)]


def _html_checks(inputs: list) -> list:
    # The narrative's XHTML is checked natively when the xhtml primitive is validated.
    return [True]


def _resolve(inputs: list) -> list:
    hooks = _HOOKS.get()
    out = []
    for item in inputs:
        reference = item.get("reference") if isinstance(item, dict) else item
        if hooks is not None and isinstance(reference, str):
            found = hooks.resolve(reference)
            if found is not None:
                out.append(found)
    return out


def _conforms_to(inputs: list, url: Any) -> list:
    hooks = _HOOKS.get()
    if hooks is None or len(inputs) != 1 or not isinstance(url, str):
        return []
    result = hooks.conforms_to(inputs[0], url)
    return [] if result is None else [result]


def _member_of(inputs: list, url: Any) -> list:
    hooks = _HOOKS.get()
    if hooks is None or len(inputs) != 1 or not isinstance(url, str):
        return []
    result = hooks.member_of(inputs[0], url)
    return [] if result is None else [result]


def _identity(inputs: list, *args: Any) -> list:
    return inputs


_EXTRA_FUNCTIONS: dict[str, dict] = {
    "hasValue": {"fn": _has_value},
    "htmlChecks": {"fn": _html_checks},
    "resolve": {"fn": _resolve},
    "conformsTo": {"fn": _conforms_to, "arity": {1: ["String"]}},
    "memberOf": {"fn": _member_of, "arity": {1: ["String"]}},
    # Validator-only functions whose effect is covered elsewhere (modifier checks, slice selection).
    "checkModifiers": {"fn": _identity, "arity": {0: [], 1: ["AnyAtRoot"]}},
}


def _no_trace(*args: Any, **kwargs: Any) -> None:
    return None


_OPTIONS = {"userInvocationTable": _EXTRA_FUNCTIONS, "traceFn": _no_trace}


class CompiledPath:
    """One FHIRPath expression, parsed once; `error` is set when it could not be parsed."""

    __slots__ = ("expression", "_fn", "error")

    def __init__(self, expression: str) -> None:
        self.expression = expression
        self.error: str | None = None
        self._fn: Any = None
        try:
            self._fn = fhirpathpy.compile(expression, _MODEL, _OPTIONS)
        except Exception as exc:  # noqa: BLE001 - the parser raises bare Exceptions
            self.error = f"cannot parse: {exc}"

    def evaluate(self, focus: Any, type_path: str | None, variables: dict, hooks: Hooks | None) -> list:
        """The result collection; raises whatever fhirpathpy raises (callers turn it into an issue)."""
        if self._fn is None:
            raise ValueError(self.error)
        if type_path and not (isinstance(focus, dict) and "resourceType" in focus):
            focus = ResourceNode.create_node(focus, type_path)
        token = _HOOKS.set(hooks)
        try:
            return self._fn(focus, variables)
        finally:
            _HOOKS.reset(token)


@lru_cache(maxsize=4096)
def compile_path(expression: str) -> CompiledPath:
    """The compiled form of an expression, shared by every element and profile that uses it."""
    return CompiledPath(expression)


def as_boolean(result: list) -> bool | None:
    """FHIRPath's singleton evaluation of a result as a boolean; None when it is empty."""
    if not result:
        return None
    if len(result) == 1:
        value = result[0]
        if isinstance(value, ResourceNode):
            value = value.data
        if isinstance(value, bool):
            return value
        return True
    raise ValueError(f"result is a collection of {len(result)} items, not a boolean")


__all__ = ["CompiledPath", "Hooks", "as_boolean", "compile_path"]
