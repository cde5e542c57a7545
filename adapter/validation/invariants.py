"""Constraints (ElementDefinition.constraint): native versions of the hot core invariants, else FHIRPath."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from adapter.validation.dates import compare_dates
from adapter.validation.environment import Environment
from adapter.validation.fhirpath_compiler import Context, Fn, Unsupported, compile_native
from adapter.validation.fhirpath_ops import as_bool
from adapter.validation.fhirpath_support import CompiledPath, as_boolean, compile_path

# A native check gets the focus (a JSON value) and the evaluation environment and answers pass/fail.
NativeCheck = Callable[[Any, Environment], bool]


def _present(obj: dict, name: str) -> bool:
    # A primitive may be present by its extension sibling alone.
    return obj.get(name) not in (None, [], {}) or obj.get("_" + name) not in (None, [], {})


def _has_value_x(obj: dict) -> bool:
    return any(k.startswith(("value", "_value")) and len(k) > 5 for k in obj)


def _ext_1(focus: Any, env: Environment) -> bool:
    if not isinstance(focus, dict):
        return True
    return bool(focus.get("extension")) != _has_value_x(focus)


def _contained(focus: Any) -> list[dict]:
    items = focus.get("contained") if isinstance(focus, dict) else None
    return [c for c in items if isinstance(c, dict)] if isinstance(items, list) else []


def _dom_2(focus: Any, env: Environment) -> bool:
    return not any(c.get("contained") for c in _contained(focus))


def _dom_4(focus: Any, env: Environment) -> bool:
    for item in _contained(focus):
        meta = item.get("meta")
        if isinstance(meta, dict) and (_present(meta, "versionId") or _present(meta, "lastUpdated")):
            return False
    return True


def _dom_5(focus: Any, env: Environment) -> bool:
    for item in _contained(focus):
        meta = item.get("meta")
        if isinstance(meta, dict) and meta.get("security"):
            return False
    return True


def _dom_6(focus: Any, env: Environment) -> bool:
    if focus is not env.root and env.resource is focus and _is_contained(focus, env.root):
        return True  # a contained resource's narrative lives in its container
    text = focus.get("text") if isinstance(focus, dict) else None
    return isinstance(text, dict) and _present(text, "div")


def _is_contained(focus: Any, root: dict) -> bool:
    return any(item is focus for item in _contained(root))


def _local_refs(node: Any, out: set[str]) -> None:
    # Every string starting with '#' anywhere counts: references, canonicals and uris alike (dom-3).
    if isinstance(node, dict):
        for value in node.values():
            _local_refs(value, out)
    elif isinstance(node, list):
        for value in node:
            _local_refs(value, out)
    elif isinstance(node, str) and node.startswith("#"):
        out.add(node)


def _dom_3(focus: Any, env: Environment) -> bool:
    contained = _contained(focus)
    if not contained:
        return True
    refs: set[str] = set()
    _local_refs({k: v for k, v in focus.items() if k != "contained"}, refs)
    for item in contained:
        _local_refs(item, refs)
    for item in contained:
        if "#" + str(item.get("id")) in refs:
            continue
        own: set[str] = set()
        _local_refs(item, own)
        if "#" not in own:
            return False
    return True


def _ref_1(focus: Any, env: Environment) -> bool:
    reference = focus.get("reference") if isinstance(focus, dict) else None
    if not isinstance(reference, str) or not reference.startswith("#") or reference == "#":
        return True
    return any(c.get("id") == reference[1:] for c in _contained(env.root))


def _per_1(focus: Any, env: Environment) -> bool:
    if not isinstance(focus, dict):
        return True
    order = compare_dates(focus.get("start"), focus.get("end"))
    return order is None or order <= 0


def _number(value: Any) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, int | Decimal | float):
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


def _rng_2(focus: Any, env: Environment) -> bool:
    if not isinstance(focus, dict):
        return True
    low, high = focus.get("low"), focus.get("high")
    if not isinstance(low, dict) or not isinstance(high, dict):
        return True
    a, b = _number(low.get("value")), _number(high.get("value"))
    if a is None or b is None:
        return True
    if (low.get("code"), low.get("system")) != (high.get("code"), high.get("system")):
        return True  # different units: a unit conversion would be needed, so do not judge
    return a <= b


def _absent_or(first: str, second: str) -> NativeCheck:
    def check(focus: Any, env: Environment) -> bool:
        return not isinstance(focus, dict) or not _present(focus, first) or _present(focus, second)

    return check


def _absent(name: str) -> NativeCheck:
    def check(focus: Any, env: Environment) -> bool:
        return not isinstance(focus, dict) or not _present(focus, name)

    return check


def _true(focus: Any, env: Environment) -> bool:
    return True


# Keyed by the constraint key AND its exact core expression: a profile reusing a key with other text
# is evaluated by FHIRPath instead.
_NATIVE: dict[tuple[str, str], NativeCheck] = {
    ("ext-1", "extension.exists() != value.exists()"): _ext_1,
    ("dom-2", "contained.contained.empty()"): _dom_2,
    ("dom-4", "contained.meta.versionId.empty() and contained.meta.lastUpdated.empty()"): _dom_4,
    ("dom-5", "contained.meta.security.empty()"): _dom_5,
    ("dom-6", "text.`div`.exists()"): _dom_6,
    ("per-1", "start.hasValue().not() or end.hasValue().not() or (start <= end)"): _per_1,
    ("rng-2", "low.empty() or high.empty() or (low <= high)"): _rng_2,
    ("qty-3", "code.empty() or system.exists()"): _absent_or("code", "system"),
    ("cpt-2", "value.empty() or system.exists()"): _absent_or("value", "system"),
    ("att-1", "data.empty() or contentType.exists()"): _absent_or("data", "contentType"),
    ("sqty-1", "comparator.empty()"): _absent("comparator"),
    ("txt-1", "htmlChecks()"): _true,
    ("txt-2", "htmlChecks()"): _true,
}
_NATIVE_GUARDS: dict[str, tuple[str, ...]] = {
    "dom-2": ("contained",),
    "dom-3": ("contained",),
    "dom-4": ("contained",),
    "dom-5": ("contained",),
    "per-1": ("end", "_end"),
    "rng-2": ("low",),
    "qty-3": ("code", "_code"),
    "cpt-2": ("value", "_value"),
    "att-1": ("data", "_data"),
    "sqty-1": ("comparator", "_comparator"),
    "ref-1": ("reference",),
}
_NATIVE_BY_KEY_PREFIX: dict[str, tuple[str, NativeCheck]] = {
    # dom-3 and ref-1 differ in whitespace and trace() calls between releases; match on a stable part.
    "dom-3": ("contained.where(", _dom_3),
    "ref-1": ("reference.startsWith('#').not()", _ref_1),
}


def native_check(key: str, expression: str) -> NativeCheck | None:
    """The native implementation of a core invariant, when this is exactly that invariant."""
    found = _NATIVE.get((key, " ".join(expression.split())))
    if found is not None:
        return found
    prefixed = _NATIVE_BY_KEY_PREFIX.get(key)
    if prefixed is not None and expression.startswith(prefixed[0]):
        return prefixed[1]
    return None


@dataclass(frozen=True)
class Scope:
    """Where a constraint sits: the types of its focus, the resource type, the fhirpathpy type path."""

    focus_types: frozenset[str]
    resource_type: str | None
    type_path: str | None


class Invariant:
    """One constraint, ready to run: natively when possible, else compiled FHIRPath, else fhirpathpy."""

    __slots__ = ("key", "severity", "human", "expression", "native", "fast", "compiled", "type_path", "guard")

    def __init__(self, key: str, severity: str, human: str, expression: str, scope: Scope) -> None:
        self.key = key
        self.severity = "warning" if severity == "warning" else "error"
        self.human = human
        self.expression = expression
        self.type_path = scope.type_path
        self.native = native_check(key, expression)
        self.fast: Fn | None = None
        self.compiled: CompiledPath | None = None
        # JSON properties of the focus of which one must be present for the constraint to fail.
        self.guard: tuple[str, ...] | None = _NATIVE_GUARDS.get(key) if self.native else None
        if self.native is None:
            try:
                self.fast, self.guard = compile_native(expression, scope.focus_types, scope.resource_type)
            except Unsupported:
                self.compiled = compile_path(expression)
            except (RecursionError, ValueError, KeyError):
                self.compiled = compile_path(expression)

    def evaluate(
        self, focus: Any, env: Environment, focus_type: str | None = None
    ) -> tuple[bool, str | None]:
        """(passed, problem): problem is set when the expression could not be evaluated.

        An empty result is not a failure: the expression had nothing to judge.
        """
        if self.native is not None:
            return self.native(focus, env), None
        if self.fast is not None:
            try:
                items = [focus]
                result = as_bool(self.fast(items, Context(env.resource, env.root, focus_type, items)))
            except Exception:  # noqa: BLE001 - a runtime surprise: let fhirpathpy judge instead
                pass
            else:
                return result is not False, None
        compiled = self.compiled or compile_path(self.expression)
        variables = {"resource": env.resource, "rootResource": env.root, "context": focus}
        try:
            result = as_boolean(compiled.evaluate(focus, self.type_path, variables, env.hooks()))
        except Exception as exc:  # noqa: BLE001 - fhirpathpy raises bare Exceptions for unsupported parts
            return True, f"{type(exc).__name__}: {exc}"
        return result is not False, None


def make_invariants(constraints: list[dict], scope: Scope) -> tuple[Invariant, ...]:
    """Invariants for an element's constraints; ele-1 is left out (the walker checks it natively)."""
    out: list[Invariant] = []
    seen: set[tuple[str, str]] = set()
    for constraint in constraints or ():
        if not isinstance(constraint, dict):
            continue
        key, expression = constraint.get("key"), constraint.get("expression")
        if not isinstance(key, str) or not isinstance(expression, str) or key == "ele-1":
            continue
        if (key, expression) in seen or native_check(key, expression) is _true:
            continue  # htmlChecks() is always true here: the xhtml primitive check does that work
        seen.add((key, expression))
        human = constraint.get("human") if isinstance(constraint.get("human"), str) else key
        out.append(Invariant(key, constraint.get("severity", "error"), human, expression, scope))
    return tuple(out)


__all__ = ["Invariant", "Scope", "make_invariants", "native_check"]
