"""Per-element value checks built once per ElementDefinition: fixed, pattern, bindings, limits, references."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from adapter.definitions import resource_types
from adapter.validation.dates import compare_dates
from adapter.validation.environment import Environment
from adapter.validation.errors import CODE_INVALID, INVALID, NOT_FOUND, TOO_LONG, VALUE
from adapter.validation.matching import fixed_matcher, pattern_matcher
from adapter.validation.registry import canonical_key
from adapter.validation.terminology import IN, NOT_IN, UNKNOWN, coding_parts

if TYPE_CHECKING:
    from adapter.validation.registry import ProfileRegistry
    from adapter.validation.terminology import Expansion, Terminology

# A check looks at one value (a primitive, or a dict for complex types) and reports into the environment.
Check = Callable[[Any, str, Environment], None]

_BINDABLE = {"code", "Coding", "CodeableConcept", "Quantity", "string", "uri"}


def _show(value: Any) -> str:
    text = json.dumps(value, default=str, ensure_ascii=False, sort_keys=True)
    return text if len(text) <= 200 else text[:197] + "..."


def prefixed(element: dict, prefix: str) -> tuple[str, Any] | None:
    """(type suffix, value) of an element's fixed[x] / pattern[x] / minValue[x] / maxValue[x]."""
    for key, value in element.items():
        if key.startswith(prefix) and len(key) > len(prefix) and key[len(prefix)].isupper():
            return key[len(prefix) :], value
    return None


def _fixed_check(fixed: Any) -> Check:
    matches = fixed_matcher(fixed)

    def check(value: Any, expr: str, env: Environment) -> None:
        if not matches(value):
            env.error(VALUE, f"value must be exactly {_show(fixed)}, found {_show(value)}", expr)

    return check


def _pattern_check(pattern: Any) -> Check:
    matches = pattern_matcher(pattern)

    def check(value: Any, expr: str, env: Environment) -> None:
        if not matches(value):
            env.error(VALUE, f"value does not match the required pattern {_show(pattern)}", expr)

    return check


def _max_length_check(limit: int) -> Check:
    def check(value: Any, expr: str, env: Environment) -> None:
        if isinstance(value, str) and len(value) > limit:
            env.error(TOO_LONG, f"value is {len(value)} characters long, more than maxLength {limit}", expr)

    return check


def _order(value: Any, bound: Any) -> int | None:
    if isinstance(bound, dict):  # Quantity bounds: compare values when the units agree
        if not isinstance(value, dict) or (value.get("code"), value.get("system")) != (
            bound.get("code"),
            bound.get("system"),
        ):
            return None
        value, bound = value.get("value"), bound.get("value")
    if isinstance(bound, str) and isinstance(value, str):
        if bound[:1].isdigit() and ":" in bound and "-" not in bound:  # time
            return (value > bound) - (value < bound)
        return compare_dates(value, bound)
    numeric = (int, Decimal, float)
    if isinstance(value, numeric) and isinstance(bound, numeric) and not isinstance(value, bool):
        a, b = Decimal(str(value)), Decimal(str(bound))
        return (a > b) - (a < b)
    return None


def _range_check(bound: Any, is_min: bool) -> Check:
    word = "minValue" if is_min else "maxValue"

    def check(value: Any, expr: str, env: Environment) -> None:
        order = _order(value, bound)
        if order is not None and (order < 0 if is_min else order > 0):
            env.error(VALUE, f"value {_show(value)} is outside {word} {_show(bound)}", expr)

    return check


class _BindingCheck:
    """A binding judged by the value's shape: code/string/uri, Coding, Quantity or CodeableConcept."""

    __slots__ = ("terminology", "value_set", "strength", "_known", "_expansion")

    def __init__(self, terminology: Terminology, value_set: str, strength: str) -> None:
        self.terminology = terminology
        self.value_set = canonical_key(value_set)
        self.strength = strength
        self._known: bool | None = None
        self._expansion: Expansion | None = None

    def __call__(self, value: Any, expr: str, env: Environment) -> None:
        if self._known is None:
            self._expansion = self.terminology.expansion(self.value_set)
            self._known = self._expansion is not None
        expansion = self._expansion
        if expansion is None:
            if self.strength == "required":
                env.warning(NOT_FOUND, f"value set {self.value_set} is not available to check the code", expr)
            return
        if self._fits(expansion, value):
            return  # the usual case: no message to build
        if isinstance(value, str):
            self._judge([(None, value)], expr, env)
        elif isinstance(value, dict):
            if "coding" in value or "text" in value:
                listed = value.get("coding")
                listed = listed if isinstance(listed, list) else []
                codings = [coding_parts(c) for c in listed if isinstance(c, dict)]
                self._judge([(s, c) for s, c in codings if c is not None], expr, env, concept=True)
            elif isinstance(value.get("code"), str):
                self._judge([coding_parts(value)], expr, env)

    @staticmethod
    def _fits(expansion: Expansion, value: Any) -> bool:
        """True when a code of `value` is in the value set (what `_judge` would accept silently)."""
        if type(value) is str:
            return bool(value) and expansion.contains(None, value) == IN
        if type(value) is not dict:
            return False
        codings = value.get("coding") if "coding" in value or "text" in value else (value,)
        for coding in codings if isinstance(codings, list | tuple) else ():
            if type(coding) is dict:
                code, system = coding.get("code"), coding.get("system")
                if type(code) is str and code:
                    if expansion.contains(system if type(system) is str else None, code) == IN:
                        return True
        return False

    def _judge(
        self,
        codes: list[tuple[str | None, str | None]],
        expr: str,
        env: Environment,
        *,
        concept: bool = False,
    ) -> None:
        if not codes:
            if concept and self.strength == "required":
                env.error(
                    CODE_INVALID, f"no code given; one is required from value set {self.value_set}", expr
                )
            return
        results = [self.terminology.check(self.value_set, system, code) for system, code in codes if code]
        if IN in results:
            return
        shown = ", ".join(f"{s}#{c}" if s else str(c) for s, c in codes)
        if UNKNOWN in results:
            if self.strength == "required":
                env.add(
                    "information",
                    NOT_FOUND,
                    f"code {shown} could not be checked against value set {self.value_set} "
                    "(its code system is not available)",
                    expr,
                )
            return
        if NOT_IN in results:
            message = f"code {shown} is not in the {self.strength} value set {self.value_set}"
            if self.strength == "required":
                env.error(CODE_INVALID, message, expr)
            else:
                env.warning(CODE_INVALID, message, expr)


def reference_type(reference: str, env: Environment) -> str | None:
    """The resource type a reference points to, when it can be told from the reference itself."""
    if reference.startswith("#"):
        contained = env.root.get("contained")
        for item in contained if isinstance(contained, list) else ():
            if isinstance(item, dict) and item.get("id") == reference[1:]:
                return item.get("resourceType")
        return None
    target = env.entries.get(reference)
    if target is not None:
        return target.get("resourceType")
    if reference.startswith(("urn:uuid:", "urn:oid:")):
        return None
    parts = reference.split("?")[0].split("/")
    if len(parts) >= 4 and parts[-2] == "_history":
        parts = parts[:-2]
    if len(parts) >= 2 and parts[-2][:1].isupper():
        return parts[-2]
    return None


def _reference_check(allowed: frozenset[str], shown: str) -> Check:
    def check(value: Any, expr: str, env: Environment) -> None:
        if not isinstance(value, dict):
            return
        found: str | None = None
        reference = value.get("reference")
        if isinstance(reference, str):
            found = reference_type(reference, env)
        if found is None and isinstance(value.get("type"), str):
            found = value["type"]
        if isinstance(found, str) and found not in allowed:
            env.error(INVALID, f"reference to a {found} is not allowed here (allowed: {shown})", expr)

    return check


# A relative literal reference is [type]/[id] or [type]/[id]/_history/[vid], with FHIR ids as parts.
_RELATIVE = re.compile(r"([A-Z][A-Za-z]+)/([^/]*)(?:/_history/([^/]*))?")
_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")


def _literal_reference_check(value: Any, expr: str, env: Environment) -> None:
    """A relative reference to a resource type must be [type]/[id] or [type]/[id]/_history/[vid] with
    valid ids: "Organization/" followed by 300 characters, or "Organization/a/" followed by more path,
    can name no resource (and would not fit where the server keeps who owns a Task)."""
    if not isinstance(value, dict):
        return
    reference = value.get("reference")
    if not isinstance(reference, str):
        return
    head, slash, _ = reference.partition("/")
    if not slash or head not in resource_types():
        return
    match = _RELATIVE.fullmatch(reference)
    if match is None or not _ID.fullmatch(match[2]) or (match[3] is not None and not _ID.fullmatch(match[3])):
        env.error(
            VALUE,
            f"{_show(reference)} is not a valid reference: a relative reference is [type]/[id] or "
            "[type]/[id]/_history/[version], each id 1 to 64 letters, digits, '-' or '.'",
            f"{expr}.reference",
        )


def _target_types(type_refs: list[dict], registry: ProfileRegistry) -> frozenset[str] | None:
    allowed: set[str] = set()
    for type_ref in type_refs:
        if not isinstance(type_ref, dict) or type_ref.get("code") != "Reference":
            continue
        targets = type_ref.get("targetProfile") or []
        if not targets:
            return None
        for url in targets:
            sd = registry.structure(url) if isinstance(url, str) else None
            name = sd.get("type") if sd else str(url).rsplit("/", 1)[-1]
            if name in ("Resource", "DomainResource"):
                return None
            allowed.add(name)
    return frozenset(allowed) if allowed else None


def element_checks(element: dict, registry: ProfileRegistry, terminology: Terminology) -> tuple[Check, ...]:
    """Every value check an ElementDefinition asks for, as closures over precomputed data."""
    out: list[Check] = []
    fixed = prefixed(element, "fixed")
    if fixed is not None:
        out.append(_fixed_check(fixed[1]))
    pattern = prefixed(element, "pattern")
    if pattern is not None:
        out.append(_pattern_check(pattern[1]))
    max_length = element.get("maxLength")
    if isinstance(max_length, int) and not isinstance(max_length, bool) and max_length > 0:
        out.append(_max_length_check(max_length))
    for prefix, is_min in (("minValue", True), ("maxValue", False)):
        bound = prefixed(element, prefix)
        if bound is not None:
            out.append(_range_check(bound[1], is_min))
    type_refs = [t for t in element.get("type") or () if isinstance(t, dict)]
    binding = element.get("binding")
    if isinstance(binding, dict) and isinstance(binding.get("valueSet"), str):
        strength = binding.get("strength")
        codes = {t.get("code") for t in type_refs}
        if strength in ("required", "extensible", "preferred") and codes & _BINDABLE:
            out.append(_BindingCheck(terminology, binding["valueSet"], strength))
    if any(t.get("code") == "Reference" for t in type_refs):
        out.append(_literal_reference_check)
    allowed = _target_types(type_refs, registry)
    if allowed:
        out.append(_reference_check(allowed, ", ".join(sorted(allowed))))
    return tuple(out)


__all__ = ["Check", "element_checks", "prefixed", "reference_type"]
