"""ValueSet expansion from compose (loaded CodeSystems only) and code membership, cached per ValueSet."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from adapter.validation.registry import canonical_key

if TYPE_CHECKING:
    from adapter.validation.registry import ProfileRegistry

IN = "in"
NOT_IN = "not-in"
UNKNOWN = "unknown"

# Grammar-defined systems with no enumerable content: a code is judged by its syntax alone.
_MIME = re.compile(r"[A-Za-z0-9][\w!#$&^.+-]*/[A-Za-z0-9*][\w!#$&^.+*-]*(\s*;\s*[\w!#$&^.+-]+=\S+)*")
_LANGUAGE = re.compile(
    r"[A-Za-z]{2,3}(-[A-Za-z]{4})?(-([A-Za-z]{2}|[0-9]{3}))?(-[A-Za-z0-9]{5,8})*(-x(-[A-Za-z0-9]{1,8})+)?"
)
SYNTAX_SYSTEMS: dict[str, Callable[[str], bool]] = {
    "urn:ietf:bcp:13": lambda code: _MIME.fullmatch(code) is not None,
    "urn:ietf:bcp:47": lambda code: _LANGUAGE.fullmatch(code) is not None,
    "urn:iso:std:iso:4217": lambda code: len(code) == 3 and code.isascii() and code.isupper(),
}


@dataclass
class Expansion:
    """What a ValueSet contains: enumerated codes per system, plus systems that cannot be enumerated."""

    codes: dict[str, set[str]] = field(default_factory=dict)
    open_systems: set[str] = field(default_factory=set)  # included but not loaded / filter not supported
    syntax_systems: set[str] = field(default_factory=set)
    insensitive: set[str] = field(default_factory=set)  # case-insensitive systems: codes stored lowered
    all_codes: set[str] = field(default_factory=set)

    def add(self, system: str, codes: set[str]) -> None:
        self.codes.setdefault(system, set()).update(codes)

    def finish(self) -> Expansion:
        self.all_codes = {code for codes in self.codes.values() for code in codes}
        return self

    def contains(self, system: str | None, code: str) -> str:
        """IN, NOT_IN or UNKNOWN (the system is included but its codes are not available here)."""
        if system is None:
            if code in self.all_codes or (self.insensitive and code.lower() in self.all_codes):
                return IN
            if any(SYNTAX_SYSTEMS[s](code) for s in self.syntax_systems):
                return IN
            return UNKNOWN if self.open_systems else NOT_IN
        key = code.lower() if system in self.insensitive else code
        if key in self.codes.get(system, ()):
            return IN
        if system in self.syntax_systems:
            return IN if SYNTAX_SYSTEMS[system](code) else NOT_IN
        return UNKNOWN if system in self.open_systems else NOT_IN


def _walk(concepts: list[dict], parent: str | None = None) -> Iterator[tuple[dict, str | None]]:
    for concept in concepts or ():
        if isinstance(concept, dict) and isinstance(concept.get("code"), str):
            yield concept, parent
            yield from _walk(concept.get("concept") or [], concept["code"])


class _SystemIndex:
    """One loaded CodeSystem: its codes, hierarchy and properties."""

    def __init__(self, cs: dict) -> None:
        self.case_sensitive = cs.get("caseSensitive", True) is not False
        self.children: dict[str, list[str]] = {}
        self.codes: list[str] = []
        self.properties: dict[str, dict[str, set[str]]] = {}
        for concept, parent in _walk(cs.get("concept") or []):
            code = concept["code"]
            self.codes.append(code)
            if parent is not None:
                self.children.setdefault(parent, []).append(code)
            for prop in concept.get("property") or ():
                if not isinstance(prop, dict):
                    continue
                value = next((v for k, v in prop.items() if k.startswith("value")), None)
                if prop.get("code") == "parent" and isinstance(value, str):
                    self.children.setdefault(value, []).append(code)
                self.properties.setdefault(str(prop.get("code")), {}).setdefault(code, set()).add(str(value))

    def descendants(self, code: str) -> set[str]:
        out: set[str] = set()
        stack = list(self.children.get(code, ()))
        while stack:
            current = stack.pop()
            if current not in out:
                out.add(current)
                stack.extend(self.children.get(current, ()))
        return out

    def apply(self, flt: dict) -> set[str] | None:
        """Codes passing one compose filter, or None when the filter cannot be evaluated here."""
        op, prop, value = flt.get("op"), flt.get("property"), flt.get("value")
        if not isinstance(value, str):
            return None
        if prop == "concept" and op == "is-a":
            return ({value} | self.descendants(value)) if value in self.codes else set()
        if prop == "concept" and op in ("descendent-of", "descendant-of"):
            return self.descendants(value)
        if prop == "concept" and op == "is-not-a":
            return set(self.codes) - {value} - self.descendants(value)
        if prop == "concept" and op == "in":
            return {c.strip() for c in value.split(",")} & set(self.codes)
        if prop == "concept" and op == "not-in":
            return set(self.codes) - {c.strip() for c in value.split(",")}
        if prop == "code" and op == "regex":
            pattern = re.compile(value)
            return {c for c in self.codes if pattern.fullmatch(c)}
        if op == "=" and prop == "parent":
            return set(self.children.get(value, ()))
        if op == "=" and prop in self.properties:
            return {c for c, values in self.properties[prop].items() if value in values}
        return None


class Terminology:
    """ValueSet expansions over the registry's CodeSystems; every expansion is computed once."""

    def __init__(self, registry: ProfileRegistry) -> None:
        self._registry = registry
        self._expansions: dict[str, Expansion | None] = {}
        self._systems: dict[str, _SystemIndex | None] = {}
        self._stack: set[str] = set()

    def _system(self, url: str) -> _SystemIndex | None:
        if url not in self._systems:
            cs = self._registry.code_system(url)
            usable = cs is not None and cs.get("content", "complete") == "complete"
            self._systems[url] = _SystemIndex(cs) if usable else None
        return self._systems[url]

    def expansion(self, value_set: str) -> Expansion | None:
        """The expansion of a ValueSet (None when the ValueSet is not known)."""
        key = canonical_key(value_set)
        if key not in self._expansions:
            if key in self._stack:
                return Expansion(open_systems={"*"})
            self._stack.add(key)
            try:
                self._expansions[key] = self._expand(key)
            finally:
                self._stack.discard(key)
        return self._expansions[key]

    def _expand(self, key: str) -> Expansion | None:
        vs = self._registry.value_set(key)
        if vs is None:
            return None
        compose = vs.get("compose")
        if not isinstance(compose, dict):
            out = Expansion()
            for entry in _contains(vs.get("expansion", {}).get("contains") or []):
                out.add(entry.get("system", ""), {entry["code"]})
            return out.finish()
        out = Expansion()
        for include in compose.get("include") or ():
            if isinstance(include, dict):
                self._merge(out, self._part(include))
        for exclude in compose.get("exclude") or ():
            if isinstance(exclude, dict):
                removed = self._part(exclude)
                for system, codes in removed.codes.items():
                    if system in out.codes:
                        out.codes[system] -= codes
        return out.finish()

    @staticmethod
    def _merge(out: Expansion, part: Expansion) -> None:
        for system, codes in part.codes.items():
            out.add(system, codes)
        out.open_systems |= part.open_systems
        out.syntax_systems |= part.syntax_systems
        out.insensitive |= part.insensitive

    def _part(self, include: dict) -> Expansion:
        # Within one include, the system part and every listed ValueSet are intersected.
        part: Expansion | None = None
        system = include.get("system")
        if isinstance(system, str):
            part = Expansion()
            self._system_part(part, system, include)
        for other in include.get("valueSet") or ():
            nested = self.expansion(other) if isinstance(other, str) else None
            if nested is None:
                nested = Expansion(open_systems={"*"})
            part = nested if part is None else _intersect(part, nested)
        return part or Expansion()

    def _system_part(self, part: Expansion, system: str, include: dict) -> None:
        concepts = include.get("concept")
        filters = include.get("filter")
        index = self._system(system)
        if index is not None and not index.case_sensitive:
            part.insensitive.add(system)
        lower = system in part.insensitive
        if concepts:
            codes = {c["code"] for c in concepts if isinstance(c, dict) and isinstance(c.get("code"), str)}
            part.add(system, {c.lower() for c in codes} if lower else codes)
            return
        if index is None:
            if not filters and system in SYNTAX_SYSTEMS:
                part.syntax_systems.add(system)
            else:
                part.open_systems.add(system)
            return
        selected: set[str] | None = set(index.codes)
        for flt in filters or ():
            chosen = index.apply(flt) if isinstance(flt, dict) else None
            if chosen is None:
                selected = None
                break
            selected &= chosen
        if selected is None:
            part.open_systems.add(system)
        else:
            part.add(system, {c.lower() for c in selected} if lower else selected)

    def check(self, value_set: str, system: str | None, code: str) -> str:
        """IN, NOT_IN or UNKNOWN for one code (system None: a bare `code` element)."""
        exp = self.expansion(value_set)
        if exp is None:
            return UNKNOWN
        return exp.contains(system, code)


def _contains(entries: list[dict]) -> Iterator[dict]:
    for entry in entries:
        if isinstance(entry, dict):
            if isinstance(entry.get("code"), str) and not entry.get("abstract"):
                yield entry
            yield from _contains(entry.get("contains") or [])


def _intersect(a: Expansion, b: Expansion) -> Expansion:
    # "*" stands for a ValueSet that could not be found: it constrains nothing we can check.
    if "*" in b.open_systems:
        return a
    if "*" in a.open_systems:
        return b
    out = Expansion()
    for system in set(a.codes) | set(b.codes):
        a_codes, b_codes = a.codes.get(system, set()), b.codes.get(system, set())
        if system in b.open_systems:
            out.add(system, set(a_codes))
        elif system in a.open_systems:
            out.add(system, set(b_codes))
        else:
            out.add(system, a_codes & b_codes)
    out.open_systems = a.open_systems & b.open_systems
    out.syntax_systems = a.syntax_systems & b.syntax_systems
    out.insensitive = a.insensitive | b.insensitive
    return out


def coding_parts(value: Any) -> tuple[str | None, str | None]:
    """(system, code) of a Coding or Quantity dict."""
    if not isinstance(value, dict):
        return None, None
    system, code = value.get("system"), value.get("code")
    return (system if isinstance(system, str) else None), (code if isinstance(code, str) else None)


__all__ = ["IN", "NOT_IN", "UNKNOWN", "Expansion", "Terminology", "coding_parts"]
