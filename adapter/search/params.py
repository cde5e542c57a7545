"""Search parameters the server indexes, compiled once from the core SearchParameter definitions.

Every R4 parameter of type token, reference, date, string, uri, number, quantity or composite is
indexed on each type it is defined for, when its FHIRPath expression is a path: element names,
optionally `as Type` (at the end, or in parentheses followed by more names), `.where(resolve() is
Type)` at the end, equality filters such as `.where(system='email')`, and `.extension('url')`. Such
paths are walked directly over the JSON instead of running a FHIRPath engine per resource, which
keeps indexing cheap on the write path.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from functools import cache

from adapter.definitions import resource_types, search_parameters, structure_definition_for_type
from adapter.search.bindings import implied_systems

# The parameters every resource type has, from Resource.meta (tags, profiles, security labels, source).
RESOURCE_CODES = frozenset({"_tag", "_profile", "_security", "_source"})
SUPPORTED_TYPES = frozenset(
    {"token", "reference", "date", "string", "uri", "number", "quantity", "composite"}
)

_PRESENT_NOT_FALSE = re.compile(r"^(?P<path>[A-Za-z.]+)\.exists\(\) and (?P<again>[A-Za-z.]+) != false$")
_WHERE_RESOLVE = re.compile(r"^(?P<path>.+)\.where\(resolve\(\) is (?P<type>[A-Za-z]+)\)$")
_AS_OPERATOR = re.compile(r"^(?P<path>.+) as (?P<type>[A-Za-z]+)$")
_AS_FUNCTION = re.compile(r"^(?P<path>.+)\.(?:as|ofType)\((?P<type>[A-Za-z]+)\)$")
# `(Observation.value as CodeableConcept).text`: a cast inside the path.
_CAST_THEN = re.compile(r"^\((?P<inner>[^()]+ as [A-Za-z]+)\)(?P<rest>(?:\.[a-z][A-Za-z0-9]*)+)$")
# One step after the type: an element name, an equality filter on the previous step, or an extension.
_SEGMENT = re.compile(
    r"\.(?:where\((?P<field>[a-z][A-Za-z0-9]*)\s*=\s*'(?P<value>[^'\\]*)'\)"
    r"|extension\('(?P<url>[^'\\]+)'\)"
    r"|(?P<name>[a-z][A-Za-z0-9]*))"
)


@dataclass(frozen=True)
class PathSpec:
    """One path of a parameter: JSON steps below the resource, an optional type cast and reference type.

    `filters`: (step position, field, value) — after that step, only the nodes whose field has that
    value go on (`telecom.where(system='email')`; an extension by its url). `step_casts`: (step
    position, type) for a cast before the last step. `implied_system` and `implied_by_code`: for a
    token parameter on a code or boolean element, the system its values have without saying so, or
    that of each code when its value set draws from several systems (search.bindings).
    """

    steps: tuple[str, ...]
    cast: str | None = None
    target_type: str | None = None
    filters: tuple[tuple[int, str, str], ...] = ()
    step_casts: tuple[tuple[int, str], ...] = ()
    implied_system: str | None = None
    implied_by_code: tuple[tuple[str, str], ...] = ()

    def implied(self, code: str) -> str | None:
        """The system of a code (or boolean) this path reaches."""
        for known, system in self.implied_by_code:
            if known == code:
                return system
        return self.implied_system

    # The steps as index extraction walks them (extract._walk), worked out once: per step, the JSON
    # key to read (with the cast's type name appended), whether the name may be a choice element's
    # stem, and the (field, value) pairs the nodes it reaches must have.
    walk: tuple[tuple[str, bool, tuple[tuple[str, str], ...]], ...] = field(
        default=(), init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        last = len(self.steps) - 1
        casts = dict(self.step_casts)
        walk = []
        for position, key in enumerate(self.steps):
            cast = self.cast if position == last else casts.get(position)
            where = tuple((name, value) for at, name, value in self.filters if at == position)
            typed = key if cast is None else key + cast[0].upper() + cast[1:]
            walk.append((typed, cast is None, where))
        object.__setattr__(self, "walk", tuple(walk))


@dataclass(frozen=True)
class SearchParam:
    code: str
    type: str
    paths: tuple[PathSpec, ...]
    targets: tuple[str, ...] = ()
    # composite: (type, paths below each node the parameter's paths reach) of each component
    components: tuple[tuple[str, tuple[PathSpec, ...]], ...] = ()
    # The top-level elements the paths start from (None: one starts at the resource itself), so that
    # indexing skips the parameters a resource has nothing for.
    starts: frozenset[str] | None = None
    # `<path>.exists() and <path> != false` (Patient?deceased=): one row per resource, "true" when the
    # path reaches a value other than false, else "false" (an absent element included).
    present_not_false: bool = False


def _strip_parens(text: str) -> str:
    text = text.strip()
    while text.startswith("(") and text.endswith(")") and _balanced(text[1:-1]):
        text = text[1:-1].strip()
    return text


def _balanced(text: str) -> bool:
    depth = 0
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth < 0:
                return False
    return depth == 0


def _split_union(expression: str) -> list[str]:
    parts, depth, current = [], 0, []
    for char in expression:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "|" and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return [part.strip() for part in parts if part.strip()]


def compile_path(part: str, res_type: str) -> PathSpec | None:
    """Compile one union member of an expression for `res_type`, or None when it is not such a path."""
    part = _strip_parens(part)
    cast = target = None
    if m := _WHERE_RESOLVE.match(part):
        part, target = _strip_parens(m["path"]), m["type"]
    if m := _CAST_THEN.match(part):
        inner = compile_path(m["inner"], res_type)
        if inner is None or inner.cast is None or inner.target_type is not None:
            return None
        rest = tuple(m["rest"][1:].split("."))
        return PathSpec(
            inner.steps + rest,
            None,
            target,
            inner.filters,
            (*inner.step_casts, (len(inner.steps) - 1, inner.cast)),
        )
    if m := (_AS_OPERATOR.match(part) or _AS_FUNCTION.match(part)):
        part, cast = _strip_parens(m["path"]), m["type"]
    if not part.startswith(res_type + "."):
        return None
    steps: list[str] = []
    filters: list[tuple[int, str, str]] = []
    position = len(res_type)
    while position < len(part):
        m = _SEGMENT.match(part, position)
        if m is None:
            return None
        if m["name"]:
            steps.append(m["name"])
        elif m["url"]:
            steps.append("extension")
            filters.append((len(steps) - 1, "url", m["url"]))
        elif steps:
            filters.append((len(steps) - 1, m["field"], m["value"]))
        else:
            return None
        position = m.end()
    if steps[-1] == "extension" and filters and filters[-1][:2] == (len(steps) - 1, "url"):
        # A parameter on an extension searches its value[x] (`Patient.extension('u')`).
        steps.append("value")
    if cast is not None and filters and filters[-1][0] == len(steps) - 1:
        return None  # a cast after a filter: not a form the definitions use
    return PathSpec(tuple(steps), cast, target, tuple(filters))


# Indexed whatever the configuration says: the searches the service's own users rely on (orders by
# patient, owner, status and milestone; conditional writes by identifier).
ALWAYS_INDEXED = frozenset(
    {
        "identifier",
        "subject",
        "patient",
        "status",
        "code",
        "date",
        "owner",
        "focus",
        "based-on",
        "business-status",
    }
)
_selected: frozenset[str] | None = None


_own_base = ""


def configure(codes: Iterable[str] = (), *, base: str = "") -> None:
    """Set at start-up (every entry point that indexes: serve, db upgrade, db reindex, create_app)
    what the index holds; a change makes the next start-up rebuild it (store/reindex.py).

    `codes`: index only these parameter codes beside ALWAYS_INDEXED (none given: every one that can
    be), from CART_ADAPTER_SEARCH_PARAMETERS: fewer parameters, fewer index rows for every write to pay
    for. `base`: this server's public base URL (CART_ADAPTER_PUBLIC_BASE_URL; empty when taken from
    each request). An absolute reference is indexed by the id it ends with only when it is on this
    base, the one base known when a resource is indexed (a request's host is not: proxies and
    aliases vary it); any other absolute reference is another server's resource, indexed by its URL.
    """
    global _selected, _own_base
    _own_base = base.rstrip("/")
    codes = frozenset(codes)
    selected = codes | ALWAYS_INDEXED if codes else None
    if selected != _selected:
        _selected = selected
        _registry.cache_clear()


def own_base() -> str:
    return _own_base


def selection() -> frozenset[str] | None:
    """The configured parameter codes; None when every parameter is indexed."""
    return _selected


def registry() -> dict[str, dict[str, SearchParam]]:
    """Resource type -> parameter code -> compiled parameter, for the indexed parameters."""
    return _registry(_selected)


@cache
def _registry(selected: frozenset[str] | None) -> dict[str, dict[str, SearchParam]]:
    out: dict[str, dict[str, SearchParam]] = {}
    for definition in search_parameters():
        code, kind = definition.get("code"), definition.get("type")
        if kind not in SUPPORTED_TYPES:
            continue
        generic = code in RESOURCE_CODES and definition.get("base") == ["Resource"]
        if code.startswith("_") and not generic:
            # _id and _lastUpdated are columns of their own; _text and _content are not indexed.
            continue
        if selected is not None and code not in selected:
            continue
        expression = definition.get("expression") or ""
        flag = _PRESENT_NOT_FALSE.match(expression)
        if flag and flag["path"] == flag["again"] and kind == "token" and not generic:
            expression = flag["path"]
        components = _components(definition) if kind == "composite" else ()
        if components is None:
            continue
        for res_type in sorted(resource_types()) if generic else definition.get("base", []):
            paths = []
            for member in _split_union(expression):
                if generic:  # Resource.meta.tag is Task.meta.tag on a Task
                    member = res_type + member.strip().removeprefix("Resource")
                spec = PathSpec(()) if member.strip() == res_type else compile_path(member, res_type)
                if spec is not None and (spec.steps or kind == "composite"):
                    if kind == "token":
                        system, by_code = implied_systems(res_type, spec)
                        spec = replace(spec, implied_system=system, implied_by_code=by_code)
                    paths.append(spec)
            if not paths:
                continue
            starts = None if any(not p.steps for p in paths) else frozenset(p.steps[0] for p in paths)
            if flag:
                starts = None  # an absent element is a value too ("false")
            out.setdefault(res_type, {})[code] = SearchParam(
                code, kind, tuple(paths), tuple(definition.get("target", [])), components, starts, bool(flag)
            )
    return out


def _components(definition: dict) -> tuple[tuple[str, tuple[PathSpec, ...]], ...] | None:
    """The components of a composite parameter, or None when one cannot be indexed."""
    by_url = _definitions_by_url()
    out = []
    for component in definition.get("component", []):
        kind = by_url.get(component.get("definition", ""), {}).get("type")
        if kind not in SUPPORTED_TYPES or kind == "composite":
            return None
        # The component's expression is relative to each node the composite's expression reaches.
        paths = [compile_path(f"Node.{m}", "Node") for m in _split_union(component.get("expression", ""))]
        if not paths or None in paths:
            return None
        out.append((kind, tuple(p for p in paths if p is not None)))
    return tuple(out) if len(out) >= 2 else None


@cache
def _definitions_by_url() -> dict[str, dict]:
    return {d["url"]: d for d in search_parameters() if "url" in d}


@cache
def defined_codes(res_type: str) -> frozenset[str]:
    """The codes of every R4 search parameter of a type, indexed or not."""
    domain = structure_definition_for_type(res_type).get("baseDefinition", "").endswith("/DomainResource")
    bases = {res_type, "Resource", *(["DomainResource"] if domain else [])}
    return frozenset(d["code"] for d in search_parameters() if bases & set(d.get("base", ())))


def params_for(res_type: str) -> dict[str, SearchParam]:
    return registry().get(res_type, {})
