"""The validation every write goes through: errors refuse the resource (422), warnings travel with it.

The process-wide validator knows the R4 core definitions plus the profile packages configured at
start-up (the project's CAR-T package by default). A deployment may also require, per resource type,
that every resource claims one of the loaded profiles for its type.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from pathlib import Path

from adapter.errors import Issue, UnprocessableResourceError
from adapter.validation.loader import load_definitions
from adapter.validation.registry import ProfileRegistry
from adapter.validation.validator import Validator

_BLOCKING = ("error", "fatal")
_lock = threading.Lock()
_validator: Validator | None = None
_profiles_by_type: dict[str, tuple[str, ...]] = {}
_required_types: frozenset[str] = frozenset()
_configured: tuple = ()


def configure(sources: Iterable[str | Path] = (), required_types: Iterable[str] = ()) -> Validator:
    """Build the process-wide validator over the core definitions plus `sources` (profile packages).

    `required_types`: resource types whose every write must claim one of the loaded profiles of that
    type ("*" for every type that has one).
    """
    global _validator, _profiles_by_type, _required_types, _configured
    sources = list(sources)
    key = (tuple(str(Path(source).resolve()) for source in sources), tuple(sorted(required_types)))
    if _validator is not None and key == _configured:
        return _validator  # compiled profiles are worth keeping: an app rebuilt with the same settings
    required_types = key[1]
    registry = ProfileRegistry()
    if sources:
        load_definitions(sources, registry)
    registry.complete()
    by_type: dict[str, list[str]] = {}
    for url in registry.added_structures():
        sd = registry.structure(url) or {}
        if sd.get("kind") == "resource" and sd.get("derivation") == "constraint" and sd.get("url"):
            by_type.setdefault(sd["type"], []).append(sd["url"])
    required = set(required_types)
    if "*" in required:
        required = set(by_type)
    unknown = sorted(required - set(by_type))
    if unknown:
        raise ValueError(f"no loaded profile constrains {', '.join(unknown)}; cannot require one")
    with _lock:
        _validator = Validator(registry)
        _profiles_by_type = {t: tuple(sorted(urls)) for t, urls in by_type.items()}
        _required_types = frozenset(required)
        _configured = key
    return _validator


def validator() -> Validator:
    """The process-wide validator, built on first use (compiling definitions takes a moment)."""
    global _validator
    if _validator is None:
        with _lock:
            if _validator is None:
                _validator = Validator(ProfileRegistry())
    return _validator


def supported_profiles(res_type: str) -> tuple[str, ...]:
    """The loaded profiles that constrain `res_type` (for the CapabilityStatement)."""
    return _profiles_by_type.get(res_type, ())


def code_systems_checked() -> list[tuple[str, str | None]]:
    """(url, version) of each CodeSystem whose codes the validator holds in full, so that it checks a
    code against a binding that draws on it (for TerminologyCapabilities). Other CodeSystems (examples,
    fragments, content not present) leave such codes unchecked."""
    return [
        (cs["url"], cs.get("version"))
        for cs in validator().registry.code_systems()
        if cs.get("content", "complete") == "complete" and isinstance(cs.get("url"), str)
    ]


def check_for_write(resource: dict) -> list[Issue]:
    """Validate against the base definition and every profile the resource claims.

    Returns the warnings and information issues; raises UnprocessableResourceError naming every error.
    """
    issues = validator().validate(resource)
    errors = [issue for issue in issues if issue.severity in _BLOCKING]
    res_type = resource.get("resourceType")
    if res_type in _required_types:
        errors.extend(_missing_profile(resource, res_type))
    if errors:
        raise UnprocessableResourceError(errors[0].diagnostics, issues=errors)
    return issues


def check_bundle_entries(bundle: dict) -> dict[int, tuple[Issue, ...]]:
    """Validate every entry resource of a batch/transaction Bundle in the Bundle's context (so that
    urn:uuid references between entries are resolved), before any of it is written.

    Returns each entry's warnings by index; raises UnprocessableResourceError naming every error of
    every entry. Issues of the Bundle itself are left to the Bundle processing, which answers them.
    """
    issues = validator().validate(bundle)
    per_entry: dict[int, list[Issue]] = {}
    errors: list[Issue] = []
    for issue in issues:
        index = _entry_index(issue)
        if index is None:
            continue
        if issue.severity in _BLOCKING:
            errors.append(issue)
        else:
            per_entry.setdefault(index, []).append(issue)
    for index, entry in enumerate(bundle.get("entry") or []):
        resource = entry.get("resource") if isinstance(entry, dict) else None
        # A resourceType that is not a string (a list, an object) is unhashable: the validator has
        # reported it already, and the set lookup would raise TypeError (a 500).
        res_type = resource.get("resourceType") if isinstance(resource, dict) else None
        if isinstance(res_type, str) and res_type in _required_types:
            errors.extend(_missing_profile(resource, f"Bundle.entry[{index}].resource"))
    if errors:
        raise UnprocessableResourceError(errors[0].diagnostics, issues=errors)
    return {index: tuple(found) for index, found in per_entry.items()}


def _entry_index(issue: Issue) -> int | None:
    for expression in issue.expression:
        if expression.startswith("Bundle.entry[") and "].resource" in expression:
            return int(expression[len("Bundle.entry[") : expression.index("]")])
    return None


def _missing_profile(resource: dict, where: str) -> list[Issue]:
    res_type = resource["resourceType"]
    claimed = set((resource.get("meta") or {}).get("profile") or [])
    allowed = _profiles_by_type[res_type]
    if claimed & set(allowed):
        return []
    return [
        Issue(
            "error",
            "required",
            f"this server requires every {res_type} to claim one of these profiles in meta.profile: "
            + ", ".join(allowed),
            (f"{where}.meta.profile",),
        )
    ]


def is_resource_type(name: str) -> bool:
    return validator().registry.is_known_resource_type(name)
