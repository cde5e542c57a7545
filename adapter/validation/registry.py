"""ProfileRegistry: the core R4 definitions plus any StructureDefinitions, ValueSets and CodeSystems added."""

from __future__ import annotations

from collections.abc import Iterable

from adapter import definitions
from adapter.validation.errors import INVALID, NOT_FOUND, ProfileLoadError

CORE_PREFIX = definitions.CORE_PREFIX
_KINDS = ("StructureDefinition", "ValueSet", "CodeSystem")


def canonical_key(url: str) -> str:
    """A canonical without its `|version` suffix; one version of each definition is kept."""
    return url.partition("|")[0]


def _check_structure_definition(sd: dict) -> None:
    url = sd.get("url")
    if not isinstance(url, str) or not url:
        raise ProfileLoadError("StructureDefinition without a url", source=str(sd.get("id") or "?"))
    for key in ("type", "kind"):
        if not isinstance(sd.get(key), str):
            raise ProfileLoadError(f"StructureDefinition {url} has no {key}", source=url)
    views = [sd.get(view) for view in ("snapshot", "differential")]
    if not any(isinstance(v, dict) and isinstance(v.get("element"), list) for v in views):
        raise ProfileLoadError(f"StructureDefinition {url} has neither snapshot nor differential", source=url)
    for view in views:
        if not isinstance(view, dict):
            continue
        if not isinstance(view.get("element", []), list):
            raise ProfileLoadError(f"StructureDefinition {url}: element is not a list", source=url)
        for index, element in enumerate(view.get("element") or ()):
            problem = _element_problem(element)
            if problem is not None:
                raise ProfileLoadError(f"StructureDefinition {url}: element {index} {problem}", source=url)
    if sd.get("derivation") == "constraint" and not isinstance(sd.get("baseDefinition"), str):
        raise ProfileLoadError(f"profile {url} has no baseDefinition", source=url)


def _strings(value: object) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _element_problem(element: object) -> str | None:
    """What makes an ElementDefinition unusable (only the parts the validator reads), or None."""
    if not isinstance(element, dict) or not isinstance(element.get("path"), str) or not element["path"]:
        return "has no path"
    for key in ("id", "sliceName", "contentReference", "max"):
        if key in element and not isinstance(element[key], str):
            return f"({element['path']}) has a {key} that is not a string"
    if "max" in element and element["max"] != "*" and not element["max"].isdigit():
        return f"({element['path']}) has max {element['max']!r}, neither * nor a number"
    for key in ("min", "maxLength"):
        value = element.get(key, 0)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            return f"({element['path']}) has a {key} that is not a non-negative integer"
    types = element.get("type", [])
    if not isinstance(types, list) or not all(
        isinstance(t, dict)
        and isinstance(t.get("code"), str)
        and _strings(t.get("profile", []))
        and _strings(t.get("targetProfile", []))
        for t in types
    ):
        return f"({element['path']}) has a malformed type"
    slicing = element.get("slicing", {})
    discriminators = slicing.get("discriminator", []) if isinstance(slicing, dict) else None
    if not isinstance(discriminators, list) or not all(
        isinstance(d, dict) and isinstance(d.get("type"), str) and isinstance(d.get("path"), str)
        for d in discriminators
    ):
        return f"({element['path']}) has a malformed slicing"
    constraints = element.get("constraint", [])
    if not isinstance(constraints, list) or not all(
        isinstance(c, dict) and isinstance(c.get("key"), str) for c in constraints
    ):
        return f"({element['path']}) has a malformed constraint"
    for key in ("binding", "base"):
        if key in element and not isinstance(element[key], dict):
            return f"({element['path']}) has a {key} that is not an object"
    return None


class ProfileRegistry:
    """Every definition the validator may use, keyed by canonical url (version suffixes ignored).

    Differential-only StructureDefinitions get a snapshot when added; when their base is not known yet,
    generation waits until the base arrives or the definition is first used (see `complete`).
    """

    def __init__(self, *, include_core: bool = True) -> None:
        self._core = include_core
        self._structures: dict[str, dict] = {}
        self._pending: dict[str, dict] = {}
        self._value_sets: dict[str, dict] = {}
        self._code_systems: dict[str, dict] = {}
        self._generating: set[str] = set()
        self._failed: set[str] = set()
        # derives_from answers; the validator asks for every pair of profiles of every resource.
        self._derives: dict[tuple[str, str], bool] = {}
        # Bumped on every change so caches built from the registry know when they are stale.
        self.generation = 0

    # -- adding ---------------------------------------------------------------------------------------

    def add(self, resource: dict) -> bool:
        """Add a StructureDefinition, ValueSet, CodeSystem or a Bundle of them.

        Returns False for resource types that carry no definitions (they are ignored).
        Raises ProfileLoadError for malformed definitions.
        """
        if not isinstance(resource, dict):
            raise ProfileLoadError("a definition must be a JSON object")
        kind = resource.get("resourceType")
        if kind == "Bundle":
            added = False
            for entry in resource.get("entry") or ():
                inner = entry.get("resource") if isinstance(entry, dict) else None
                if isinstance(inner, dict) and inner.get("resourceType") in _KINDS:
                    added = self.add(inner) or added
            return added
        if kind not in _KINDS:
            return False
        url = resource.get("url")
        if not isinstance(url, str) or not url:
            raise ProfileLoadError(f"{kind} without a url", source=str(resource.get("id") or "?"))
        key = canonical_key(url)
        self.generation += 1
        self._derives.clear()  # a new or replaced definition may change a base chain
        if kind == "ValueSet":
            self._value_sets[key] = resource
        elif kind == "CodeSystem":
            self._code_systems[key] = resource
        else:
            _check_structure_definition(resource)
            self._pending.pop(key, None)
            if isinstance(resource.get("snapshot"), dict) and resource["snapshot"].get("element"):
                self._structures[key] = resource
            elif self._base_available(resource):
                self._structures.pop(key, None)
                self._generate(key, resource)
            else:
                self._structures.pop(key, None)
                self._pending[key] = resource
            self._retry_pending()
        return True

    def add_all(self, resources: Iterable[dict]) -> int:
        """Add several definitions; returns how many were definitions."""
        return sum(1 for resource in resources if self.add(resource))

    def _retry_pending(self) -> None:
        # A differential waits for its base; each new definition may unblock some of them. One that
        # still fails stays pending, so the error surfaces when it is used or on complete().
        progress = True
        while progress and self._pending:
            progress = False
            for key, sd in list(self._pending.items()):
                if key in self._failed or not self._base_available(sd):
                    continue
                try:
                    self._generate(key, sd)
                except ProfileLoadError:
                    self._failed.add(key)
                    continue
                progress = True

    def _base_available(self, sd: dict) -> bool:
        base = sd.get("baseDefinition")
        if not isinstance(base, str):
            return sd.get("derivation") != "constraint"
        key = canonical_key(base)
        return key in self._structures or (self._core and key in definitions.structure_definitions())

    def _generate(self, key: str, sd: dict) -> dict:
        from adapter.validation.snapshot import generate_snapshot

        if key in self._generating:
            raise ProfileLoadError(f"StructureDefinition {key} derives from itself", source=key)
        self._generating.add(key)
        try:
            with_snapshot = generate_snapshot(sd, self)
        except ProfileLoadError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
            # Anything the shape checks above let through still ends as a load error, never a crash.
            raise ProfileLoadError(
                f"StructureDefinition {key}: cannot build its snapshot ({type(exc).__name__}: {exc})",
                source=key,
            ) from None
        finally:
            self._generating.discard(key)
        self._pending.pop(key, None)
        self._failed.discard(key)
        self._structures[key] = with_snapshot
        return with_snapshot

    def complete(self) -> None:
        """Generate every pending snapshot; ProfileLoadError names the first that cannot be built."""
        for key, sd in list(self._pending.items()):
            if key in self._pending:
                self._generate(key, sd)

    # -- lookups --------------------------------------------------------------------------------------

    def structure(self, url: str) -> dict | None:
        """The StructureDefinition (with snapshot) for a canonical, or None when unknown."""
        key = canonical_key(url)
        found = self._structures.get(key)
        if found is not None:
            return found
        pending = self._pending.get(key)
        if pending is not None:
            return self._generate(key, pending)
        if self._core:
            return definitions.structure_definitions().get(key)
        return None

    def require_structure(self, url: str) -> dict:
        """Like `structure` but raising ProfileLoadError (not-found) for an unknown canonical."""
        found = self.structure(url)
        if found is None:
            raise ProfileLoadError(f"unknown profile {url}", code=NOT_FOUND, source=url)
        return found

    def type_structure(self, type_name: str) -> dict | None:
        """The StructureDefinition that defines a type (a core type or an added specialization)."""
        key = CORE_PREFIX + type_name
        found = self._structures.get(key)
        if found is None and key in self._pending:
            found = self.structure(key)
        if found:
            return found
        if self._core:
            try:
                return definitions.structure_definition_for_type(type_name)
            except KeyError:
                return None
        return None

    def value_set(self, url: str) -> dict | None:
        key = canonical_key(url)
        found = self._value_sets.get(key)
        if found is None and self._core:
            found = definitions.value_sets().get(key)
        return found

    def code_system(self, url: str) -> dict | None:
        key = canonical_key(url)
        found = self._code_systems.get(key)
        if found is None and self._core:
            found = definitions.code_systems().get(key)
        return found

    def code_systems(self) -> list[dict]:
        """Every CodeSystem known, by canonical: the core ones, and the added ones (which replace a core
        one of the same canonical)."""
        core = definitions.code_systems().items() if self._core else ()
        merged = {canonical_key(url): cs for url, cs in core}
        merged.update(self._code_systems)
        return [merged[key] for key in sorted(merged)]

    def added_structures(self) -> list[str]:
        """Canonicals of the StructureDefinitions added to the core set (generated or pending)."""
        return sorted(set(self._structures) | set(self._pending))

    def is_known_resource_type(self, name: str) -> bool:
        sd = self.type_structure(name)
        return bool(sd) and sd.get("kind") == "resource" and not sd.get("abstract")

    def derives_from(self, url: str, ancestor: str) -> bool:
        """True when the StructureDefinition at `url` is `ancestor` or (transitively) based on it."""
        found = self._derives.get((url, ancestor))
        if found is None:
            if len(self._derives) > 65536:  # callers may pass any text; keep the cache bounded
                self._derives.clear()
            found = self._derives[(url, ancestor)] = self._walk_bases(url, ancestor)
        return found

    def _walk_bases(self, url: str, ancestor: str) -> bool:
        target = canonical_key(ancestor)
        seen: set[str] = set()
        current: str | None = canonical_key(url)
        while current and current not in seen:
            if current == target:
                return True
            seen.add(current)
            sd = self.structure(current)
            base = sd.get("baseDefinition") if sd else None
            current = canonical_key(base) if isinstance(base, str) else None
        return False


def structure_error(url: str, message: str) -> ProfileLoadError:
    """A ProfileLoadError about one StructureDefinition."""
    return ProfileLoadError(f"StructureDefinition {url}: {message}", code=INVALID, source=url)


__all__ = ["ProfileRegistry", "canonical_key", "structure_error"]
