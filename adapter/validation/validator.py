"""Validator: checks a FHIR R4 resource (plain JSON) against the core definitions and profiles."""

from __future__ import annotations

from typing import Any

from adapter.errors import Issue
from adapter.validation.compiler import Compiler
from adapter.validation.environment import Environment
from adapter.validation.errors import NOT_FOUND, STRUCTURE, ProfileLoadError
from adapter.validation.model import ElementNode, TypeRef
from adapter.validation.registry import CORE_PREFIX, ProfileRegistry, canonical_key
from adapter.validation.terminology import IN, coding_parts
from adapter.validation.walker import Walker


class Validator(Walker):
    """Validates resources; built once over a registry, compiling each StructureDefinition once."""

    def __init__(self, registry: ProfileRegistry | None = None) -> None:
        self.registry = registry if registry is not None else ProfileRegistry()
        self.compiler = Compiler(self.registry)
        # (type, requested profiles, meta.profile) -> the roots to walk, when working them out reported
        # nothing; every resource of a Bundle asks again, so this skips the lookups that would follow.
        self._roots: dict[tuple, list[ElementNode]] = {}
        self._roots_generation = self.registry.generation

    # -- public ---------------------------------------------------------------------------------------

    def validate(self, resource: dict, profiles: list[str] | None = None) -> list[Issue]:
        """Every issue found in `resource`, checked against its type, its meta.profile and `profiles`."""
        issues: list[Issue] = []
        if not isinstance(resource, dict):
            return [Issue("fatal", STRUCTURE, "a resource must be a JSON object", ())]
        env = Environment(resource, resource, self, issues, _bundle_entries(resource))
        name = resource.get("resourceType")
        where = name if isinstance(name, str) else "Resource"
        try:
            self._resource(resource, where, env, tuple(profiles or ()), True)
        except RecursionError:
            issues.append(Issue("fatal", STRUCTURE, f"{where}: the resource is nested too deeply", (where,)))
        except ProfileLoadError as exc:
            issues.append(Issue("error", exc.code, f"{where}: {exc.message}", (where,)))
        except Exception as exc:  # noqa: BLE001 - a validator bug must not take the caller down
            message = f"{where}: the validator failed ({type(exc).__name__}: {exc})"
            issues.append(Issue("fatal", "exception", message, (where,)))
        return _unique(issues)

    # -- resources ------------------------------------------------------------------------------------

    def _resource(
        self, resource: dict, expr: str, env: Environment, profiles: tuple[str, ...], top: bool
    ) -> None:
        name = resource.get("resourceType")
        if not isinstance(name, str):
            env.error(STRUCTURE, "resourceType is missing", expr)
            return
        meta = resource.get("meta")
        declared = meta.get("profile") if isinstance(meta, dict) else None
        key = None
        if declared is None or (isinstance(declared, list) and all(type(u) is str for u in declared)):
            key = (name, profiles, tuple(declared or ()))
        if self._roots_generation != self.registry.generation:
            self._roots.clear()
            self._roots_generation = self.registry.generation
        roots = self._roots.get(key) if key is not None else None
        if roots is None:
            reported = len(env.issues)
            roots = self._profile_roots(name, declared, expr, env, profiles, top)
            if key is not None and len(env.issues) == reported:
                if len(self._roots) >= 1024:  # meta.profile comes from the instance: stay bounded
                    self._roots.clear()
                self._roots[key] = roots
        for root in roots:
            self._object(resource, root, None, expr, env)

    def _profile_roots(
        self, name: str, declared: Any, expr: str, env: Environment, profiles: tuple[str, ...], top: bool
    ) -> list[ElementNode]:
        """The root elements to check a resource of type `name` against (reporting unusable profiles)."""
        if not self.registry.is_known_resource_type(name):
            env.error(STRUCTURE, f"unknown resourceType {name!r}", expr)
            return []
        urls = [CORE_PREFIX + name]
        for url in profiles:
            self._add_profile(urls, url, name, expr, env, explicit=top)
        for url in declared if isinstance(declared, list) else ():
            if isinstance(url, str):
                self._add_profile(urls, url, name, expr, env, explicit=False)
        roots = []
        for url in self._most_specific(urls):
            root = self.compiler.structure(url).root
            assert root is not None
            roots.append(root)
        return roots

    def _add_profile(
        self, urls: list[str], url: str, name: str, expr: str, env: Environment, explicit: bool
    ) -> None:
        try:
            compiled = self.compiler.structure(url)
        except ProfileLoadError as exc:
            if explicit:
                env.error(NOT_FOUND, f"profile {url} is not known: {exc.message}", expr)
            else:
                env.warning(
                    NOT_FOUND, f"profile {url} declared in meta.profile is not known; not checked", expr
                )
            return
        if compiled.type_name != name:
            env.error(STRUCTURE, f"profile {url} is for {compiled.type_name}, not {name}", expr)
            return
        if canonical_key(url) not in urls:
            urls.append(canonical_key(url))

    def _most_specific(self, urls: list[str]) -> list[str]:
        # A profile's snapshot already holds everything its bases require, so checking a base too
        # would only repeat the same issues.
        return [
            url
            for url in urls
            if not any(other != url and self.registry.derives_from(other, url) for other in urls)
        ]

    # -- services for FHIRPath and slicing ----------------------------------------------------------

    def resolve_reference(self, reference: str, env: Environment) -> dict | None:
        if reference.startswith("#"):
            for item in _list(env.root.get("contained")):
                if isinstance(item, dict) and item.get("id") == reference[1:]:
                    return item
            return env.root if reference == "#" else None
        found = env.entries.get(reference)
        if found is not None:
            return found
        for full_url, target in env.entries.items():
            if full_url.endswith("/" + reference):
                return target
        return None

    def conforms_to(self, value: Any, url: str, env: Environment) -> bool:
        """True when `value` (a resource or a datatype value) meets the profile `url` without errors."""
        trial: list[Issue] = []
        trial_env = env.with_issues(trial)
        try:
            compiled = self.compiler.structure(url)
        except ProfileLoadError:
            return False
        if not isinstance(value, dict) or compiled.root is None:
            return False
        if "resourceType" in value:
            inner = trial_env.nested(value, contained=False, prefix="value")
            self._resource(value, "value", inner, (url,), True)
        else:
            self._object(value, compiled.root, TypeRef(compiled.type_name), "value", trial_env)
        return not any(i.severity in ("error", "fatal") for i in trial)

    def member_of(self, value: Any, value_set: str) -> bool | None:
        terminology = self.compiler.terminology
        if isinstance(value, str):
            return terminology.check(value_set, None, value) == IN
        if isinstance(value, dict):
            codings = value.get("coding") if "coding" in value else [value]
            for coding in _list(codings):
                system, code = coding_parts(coding)
                if code is not None and terminology.check(value_set, system, code) == IN:
                    return True
            return False
        return None


def _list(value: Any) -> list:
    return value if isinstance(value, list) else []


def _bundle_entries(resource: dict) -> dict[str, dict]:
    if resource.get("resourceType") != "Bundle":
        return {}
    out: dict[str, dict] = {}
    for entry in _list(resource.get("entry")):
        if (
            isinstance(entry, dict)
            and isinstance(entry.get("fullUrl"), str)
            and isinstance(entry.get("resource"), dict)
        ):
            out[entry["fullUrl"]] = entry["resource"]
    return out


def _unique(issues: list[Issue]) -> list[Issue]:
    seen: set[Issue] = set()
    out: list[Issue] = []
    for issue in issues:
        if issue not in seen:
            seen.add(issue)
            out.append(issue)
    return out


__all__ = ["Validator"]
