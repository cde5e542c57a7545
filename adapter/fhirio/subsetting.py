"""_summary and _elements: the part of a resource a client asked for, tagged SUBSETTED.

A manufacturer polling Tasks or an integrator listing a patient's pathway often needs a few elements of
each resource; these two parameters (FHIR R4 search, "Summary" and "Elements") let them say so. What is
returned follows the base definition of each type:

- `_summary=true`: the elements marked isSummary, also inside backbone elements;
- `_summary=text`: text, id, meta and the top-level mandatory elements;
- `_summary=data`: everything but text;
- `_elements=a,b`: those top-level elements, plus the mandatory and modifier ones (which the
  specification says a server should always return) and id and meta. Bare names apply to the matches
  of a search (and to a read); `Type.name` applies to every resource of that type, included ones too.

A subset carries the tag SUBSETTED (v3 ObservationValue) in meta.tag, so that nobody PUTs it back over
the complete resource by mistake.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from adapter.definitions import element_info, resource_types, structure_definition_for_type
from adapter.errors import InvalidRequestError, Issue
from adapter.fhirio.jsonio import dump_json, parse_stored_json

SUBSETTED_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-ObservationValue"
SUBSETTED = {"system": SUBSETTED_SYSTEM, "code": "SUBSETTED"}
SUMMARY_MODES = ("true", "text", "data", "false")
# Kept by every subset: what makes the result a resource that can be told apart and read again.
_ALWAYS = frozenset({"resourceType", "id", "meta"})


@dataclass(frozen=True, slots=True)
class _Member:
    path: str  # "Patient.link"
    summary: bool
    mandatory: bool  # min >= 1
    modifier: bool
    children: str | None  # where its inline children are defined (backbone elements), else None


@cache
def _members(res_type: str) -> dict[str, dict[str, _Member]]:
    """For each parent path of a resource type, its children by JSON name (choices expanded)."""
    info = element_info(res_type)
    table: dict[str, dict[str, _Member]] = {}
    for element in structure_definition_for_type(res_type)["snapshot"]["element"]:
        path = element["path"]
        if "." not in path or ":" in element.get("id", path):
            continue
        parent = path.rpartition(".")[0]
        known = info.element(path)
        inline = known.children_path  # a backbone element: its children are defined in this type
        member = _Member(
            path,
            bool(element.get("isSummary")),
            int(element.get("min") or 0) >= 1,
            bool(element.get("isModifier")),
            inline if inline and info.children(inline) else None,
        )
        for json_name in known.json_names:
            table.setdefault(parent, {})[json_name] = member
    return table


def _names_of(res_type: str, name: str) -> set[str] | None:
    """The JSON names a requested element stands for ("deceased" -> deceasedBoolean, deceasedDateTime)."""
    top = _members(res_type).get(res_type, {})
    if name in top:
        return {name}
    stem = name.removesuffix("[x]")
    found = {json_name for json_name, m in top.items() if m.path == f"{res_type}.{stem}[x]"}
    return found or None


@dataclass(frozen=True)
class Subset:
    """What to keep of the resources of one response."""

    summary: str | None = None  # "true" | "text" | "data"; None: no summary form
    elements: frozenset[str] | None = None  # JSON names for the matches (and a read); None: all
    typed: tuple[tuple[str, frozenset[str]], ...] = ()  # (type, JSON names) for every entry of that type

    def _elements_for(self, res_type: str, match: bool) -> frozenset[str] | None:
        chosen = [names for t, names in self.typed if t == res_type]
        if match and self.elements is not None:
            chosen.append(self.elements)
        if not chosen:
            return None
        return frozenset().union(*chosen)

    def applies(self, res_type: str, *, match: bool = True) -> bool:
        return self.summary is not None or self._elements_for(res_type, match) is not None

    def apply(self, resource: dict, *, match: bool = True) -> dict:
        """The subset of `resource` (a new dict; the argument is not changed), or it as is."""
        res_type = resource.get("resourceType", "")
        if res_type not in resource_types() or not self.applies(res_type, match=match):
            return resource
        members = _members(res_type)
        top = members.get(res_type, {})
        out = resource
        if self.summary == "true":
            out = _summary(out, res_type, members)
        elif self.summary == "text":
            out = {k: v for k, v in out.items() if k in _ALWAYS or k == "text" or _kept(top, k, False)}
        elif self.summary == "data":
            out = {k: v for k, v in out.items() if k != "text"}
        wanted = self._elements_for(res_type, match)
        if wanted is not None:
            out = {
                k: v
                for k, v in out.items()
                if k in _ALWAYS or k.removeprefix("_") in wanted or _kept(top, k, True)
            }
        if out == resource:
            return resource  # nothing was left out: the resource is complete, not a subset
        return _tagged(out)

    def apply_text(self, res_type: str, text: str, *, match: bool = True) -> str:
        """apply() on stored JSON text; the text itself when nothing applies to this type."""
        if not self.applies(res_type, match=match):
            return text
        resource = parse_stored_json(text)
        subset = self.apply(resource, match=match)
        return text if subset is resource else dump_json(subset)


def _kept(top: dict[str, _Member], key: str, modifiers: bool) -> bool:
    """Whether a top-level element stays in every subset: mandatory ones, and modifiers if asked."""
    member = top.get(key.removeprefix("_"))
    return member is not None and (member.mandatory or (modifiers and member.modifier))


def _summary(value: dict, parent: str, members: dict[str, dict[str, _Member]]) -> dict:
    table = members.get(parent, {})
    out = {}
    for key, item in value.items():
        if key in _ALWAYS and parent == value.get("resourceType"):
            out[key] = item
            continue
        member = table.get(key.removeprefix("_"))
        if member is None or not member.summary:
            continue
        if member.children and isinstance(item, dict):
            out[key] = _summary(item, member.children, members)
        elif member.children and isinstance(item, list):
            out[key] = [_summary(v, member.children, members) if isinstance(v, dict) else v for v in item]
        else:
            out[key] = item
    return out


def is_subsetted(resource: dict) -> bool:
    """Whether the resource carries the SUBSETTED tag."""
    meta = resource.get("meta")
    tags = meta.get("tag") if isinstance(meta, dict) else None
    return isinstance(tags, list) and any(
        isinstance(t, dict) and t.get("system") == SUBSETTED_SYSTEM and t.get("code") == "SUBSETTED"
        for t in tags
    )


def _tagged(resource: dict) -> dict:
    meta = dict(resource.get("meta") or {})
    if not is_subsetted(resource):
        meta["tag"] = [*(meta.get("tag") or []), dict(SUBSETTED)]
    out = {"resourceType": resource["resourceType"]}
    if "id" in resource:
        out["id"] = resource["id"]
    out["meta"] = meta
    out.update((k, v) for k, v in resource.items() if k not in out)
    return out


def parse_subset(
    res_type: str,
    summary: str | None,
    elements: list[str],
    *,
    strict: bool = False,
    warnings: list[Issue] | None = None,
) -> Subset | None:
    """The Subset that `_summary` and `_elements` values ask for; None when they ask for everything.

    An element the type does not have is a warning (lenient handling) or a 400 (strict); an unknown
    `_summary` value is always a 400, since its answer would not be what the client expects.
    """
    if summary is not None and summary not in SUMMARY_MODES:
        raise InvalidRequestError(
            f"_summary={summary!r} is not one of true, text, data, count, false", expression="_summary"
        )

    def refuse(message: str) -> None:
        if strict:
            raise InvalidRequestError(message, expression="_elements")
        if warnings is not None:
            warnings.append(Issue("warning", "not-supported", message + "; it was ignored"))

    plain: set[str] = set()
    typed: dict[str, set[str]] = {}
    listed = False
    for raw in elements:
        for item in (part.strip() for part in raw.split(",")):
            if not item:
                continue
            owner, dot, name = item.rpartition(".")
            target = owner if dot else res_type
            if dot and (owner not in resource_types() or "." in owner):
                refuse(f"_elements: {item!r} is not an element of a resource type")
                continue
            names = _names_of(target, name)
            if names is None:
                refuse(f"_elements: {target} has no element {name!r}")
                continue
            (typed.setdefault(owner, set()) if dot else plain).update(names)
            listed = True
    mode = None if summary in (None, "false") else summary
    if mode is None and not listed:
        return None
    return Subset(
        mode,
        frozenset(plain) if plain else None,
        tuple((t, frozenset(n)) for t, n in sorted(typed.items())),
    )


def read_subset(res_type: str, args: list[tuple[str, str]], *, strict: bool = False) -> Subset | None:
    """The Subset a read or vread asks for with `_summary` and `_elements` (other arguments ignored)."""
    summaries = [value for name, value in args if name == "_summary"]
    if len(summaries) > 1:
        raise InvalidRequestError("_summary may be given once", expression="_summary")
    if summaries == ["count"]:
        raise InvalidRequestError("_summary=count applies to searches, not to a read", expression="_summary")
    elements = [value for name, value in args if name == "_elements"]
    if not summaries and not elements:
        return None
    return parse_subset(res_type, summaries[0] if summaries else None, elements, strict=strict)
