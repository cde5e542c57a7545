"""What a resource contributes to the search index: one row per (parameter, value)."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from decimal import Decimal
from typing import Any, NamedTuple

from adapter.fhirio.elements import children
from adapter.search.bindings import BOOLEAN_SYSTEM
from adapter.search.dates import MAX_US, MIN_US, date_range
from adapter.search.params import PathSpec, SearchParam, own_base, params_for

# The widths of the index's system and value columns: longer ones are cut, here and in searched values,
# so that the two still meet (a search then also matches values that differ only beyond the cut).
SYSTEM_CHARS = 255
VALUE_CHARS = 512


# Index rows for two modifiers are kept under the parameter's code with the modifier after it.
IDENTIFIER = ":identifier"  # a reference parameter's logical references (Reference.identifier)
OF_TYPE = ":of-type"  # a token parameter's typed identifiers


def cut_system(system: str | None) -> str | None:
    return system[:SYSTEM_CHARS] if system is not None else None


class IndexRow(NamedTuple):
    param: str
    system: str | None
    value: str | None
    lo_us: int | None = None
    hi_us: int | None = None
    num: float | None = None
    grp: int | None = None


def normalise_text(text: str) -> str:
    """Case- and accent-insensitive form used by string search ("Hélène" matches "helene")."""
    decomposed = unicodedata.normalize("NFKD", text)
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(stripped.casefold().split())


def _choice(node: dict, key: str) -> Any:
    """A choice element ([x]) named without a cast: whichever typed form the node has."""
    size = len(key)
    for name, candidate in node.items():
        if len(name) > size and name.startswith(key) and name[size].isupper():
            return candidate
    return None


def _walk(resource: dict, spec: PathSpec) -> list[Any]:
    """The nodes `spec` reaches from `resource`, in document order (called for every parameter of
    every resource written: one call per step, no generators)."""
    nodes: list[Any] = [resource]
    for key, may_choose, filters in spec.walk:
        reached = children(nodes, key, _choice if may_choose else None)
        if filters:
            reached = [
                node
                for node in reached
                if isinstance(node, dict) and all(node.get(field) == want for field, want in filters)
            ]
        if not reached:
            return reached
        nodes = reached
    return nodes


def _tokens(value: Any) -> Iterator[tuple[str | None, str]]:
    if isinstance(value, bool):
        yield None, "true" if value else "false"
    elif isinstance(value, str):
        yield None, value
    elif isinstance(value, dict):
        if "coding" in value:
            for coding in value.get("coding") or []:
                if isinstance(coding, dict) and isinstance(coding.get("code"), str):
                    yield coding.get("system"), coding["code"]
        elif isinstance(value.get("code"), str):
            yield value.get("system"), value["code"]
        elif isinstance(value.get("value"), str):
            yield value.get("system"), value["value"]


def split_reference(reference: str) -> tuple[str, str] | None:
    """'Patient/123', 'http://x/fhir/Patient/123/_history/2' -> ('Patient', '123'); None if not literal."""
    if reference.startswith(("urn:", "#")) or "?" in reference:
        return None
    parts = reference.split("/")
    if len(parts) >= 4 and parts[-2] == "_history":
        parts = parts[:-2]
    if len(parts) < 2 or not parts[-2][:1].isupper():
        return None
    return parts[-2], parts[-1]


def reference_key(reference: str) -> tuple[str, str] | None:
    """The (type, key) a literal reference is indexed and searched by: the id it ends with when it is
    relative or on this server's base (params.own_base), else its URL without the version, so that a
    reference to another server never meets a local resource of the same id (R4 search.html)."""
    split = split_reference(reference)
    if split is None or "://" not in reference:
        return split
    parts = reference.split("/")
    if parts[-2] == "_history":
        parts = parts[:-2]
    if "/".join(parts[:-2]) == own_base():
        return split
    return split[0], "/".join(parts)


def local_reference(reference: str) -> tuple[str, str] | None:
    """(type, id) of a literal reference to a resource of this server (relative, or absolute on its
    configured base); None for another server's resource, which no local resource stands for."""
    key = reference_key(reference)
    return key if key is not None and "/" not in key[1] else None


def _references(value: Any, target_type: str | None) -> Iterator[tuple[str, str]]:
    version = ""
    if isinstance(value, str):
        # A canonical (QuestionnaireResponse.questionnaire, CarePlan.instantiatesCanonical...): by the
        # type and id its URL ends with, as an absolute reference, without its #fragment; a |version
        # adds the row "<id>|<version>", which a search for <url>|<version> matches (no stored id
        # holds a "|", so no _include or chain ever takes it for a resource). On another server, by
        # its URL too, which is what a search for that URL looks for.
        url, _, version = value.split("#", 1)[0].partition("|")
        split = split_reference(url)
        keys = [split] if split else []
        if split and (by_url := reference_key(url)) and by_url != split:
            keys.append(by_url)
    elif isinstance(value, dict) and isinstance(value.get("reference"), str):
        split = reference_key(value["reference"])
        keys = [split] if split else []
    else:
        return
    if split and split[1] and (target_type is None or split[0] == target_type):
        for key in keys:
            yield key
            if version:
                yield key[0], f"{key[1]}|{version}"


def _logical_reference(code: str, value: Any, target_type: str | None) -> Iterator[IndexRow]:
    """`<code>:identifier` rows: the identifier a reference carries, for `subject:identifier=system|value`.
    A reference typed as another resource than the parameter's target is not one of its values."""
    if not isinstance(value, dict) or not isinstance(value.get("identifier"), dict):
        return
    identifier = value["identifier"]
    kind = value.get("type")
    if target_type is not None and isinstance(kind, str) and kind != target_type:
        return
    if isinstance(identifier.get("value"), str):
        system = identifier.get("system") if isinstance(identifier.get("system"), str) else None
        yield IndexRow(code + IDENTIFIER, cut_system(system), identifier["value"][:VALUE_CHARS])


def _identifier_types(code: str, value: Any) -> Iterator[IndexRow]:
    """`<code>:of-type` rows of an Identifier with a type: the type's `system|code` with the value, for
    `identifier:of-type=<type system>|<type code>|<value>`."""
    if not isinstance(value, dict) or not isinstance(value.get("value"), str):
        return
    kind = value.get("type")
    codings = kind.get("coding") if isinstance(kind, dict) else None
    for coding in codings if isinstance(codings, list) else ():
        if isinstance(coding, dict):
            system, type_code = coding.get("system"), coding.get("code")
            if isinstance(system, str) and isinstance(type_code, str):
                yield IndexRow(
                    code + OF_TYPE, cut_system(f"{system}|{type_code}"), value["value"][:VALUE_CHARS]
                )


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key in (
            "text",
            "family",
            "given",
            "prefix",
            "suffix",
            "line",
            "city",
            "district",
            "state",
            "postalCode",
            "country",
        ):
            item = value.get(key)
            if isinstance(item, str):
                yield item
            elif isinstance(item, list):
                yield from (s for s in item if isinstance(s, str))


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, Decimal)) and not isinstance(value, bool)


def _as_float(value: int | float | Decimal) -> float:
    # float() raises OverflowError on an integer beyond a double's range (a 400-digit JSON number) but
    # gives infinity for the same number written with a decimal point: index both alike.
    return float(Decimal(value)) if isinstance(value, int) else float(value)


def _dates(value: Any) -> Iterator[tuple[int, int]]:
    if isinstance(value, str):
        found = date_range(value)
        if found:
            yield found
    elif isinstance(value, dict) and ("start" in value or "end" in value):
        start = date_range(value["start"]) if isinstance(value.get("start"), str) else None
        end = date_range(value["end"]) if isinstance(value.get("end"), str) else None
        yield (start[0] if start else MIN_US), (end[1] if end else MAX_US)


def _add_rows(param: SearchParam, resource: dict, seen: dict[IndexRow, None]) -> None:
    if param.type == "composite":
        for row in _composite_rows(param, resource):
            seen[row] = None
    elif param.present_not_false:
        found = any(value is not False for spec in param.paths for value in _walk(resource, spec))
        seen[IndexRow(param.code, BOOLEAN_SYSTEM, "true" if found else "false")] = None
    else:
        for spec in param.paths:
            for value in _walk(resource, spec):
                for row in _value_rows(param.code, param.type, value, spec):
                    seen[row] = None


def _composite_rows(param: SearchParam, resource: dict) -> Iterator[IndexRow]:
    """Each node the parameter reaches (the Observation, or each of its components) is one group: its
    k-th component's values are rows of "<code>$k" with the group's number, so that a search matches
    values of the same node only."""
    group = 0
    for spec in param.paths:
        for node in _walk(resource, spec):
            rows = [
                [
                    row
                    for path in paths
                    for value in _walk(node, path)
                    for row in _value_rows(f"{param.code}${k}", kind, value, path)
                ]
                for k, (kind, paths) in enumerate(param.components)
            ]
            if all(rows):  # a node without a value for some component matches nothing
                for component in rows:
                    yield from (row._replace(grp=group) for row in component)
                group += 1


def _value_rows(code: str, kind: str, value: Any, spec: PathSpec) -> Iterator[IndexRow]:
    if kind == "token":
        for system, token in _tokens(value):
            # A code or boolean has no system of its own but the one its binding implies.
            system = system if system is not None else spec.implied(token)
            yield IndexRow(code, cut_system(system), token[:VALUE_CHARS])
        yield from _identifier_types(code, value)
    elif kind == "reference":
        for target, ident in _references(value, spec.target_type):
            yield IndexRow(code, cut_system(target), ident[:VALUE_CHARS])
        yield from _logical_reference(code, value, spec.target_type)
    elif kind == "string":
        for text in _strings(value):
            # Folded in value (plain and :contains searches); as written in system (:exact).
            yield IndexRow(code, cut_system(text), normalise_text(text)[:VALUE_CHARS])
    elif kind == "uri":
        if isinstance(value, str):
            yield IndexRow(code, None, value[:VALUE_CHARS])
            if "|" in value:
                # No URI holds a bare "|": this is a canonical with its version (meta.profile
                # "<url>|2.0"), which a search for the URL alone finds, whatever the version.
                yield IndexRow(code, None, value.partition("|")[0][:VALUE_CHARS])
    elif kind == "date":
        for lo, hi in _dates(value):
            yield IndexRow(code, None, None, lo, hi)
    elif kind == "number":
        if _is_number(value):
            yield IndexRow(code, None, None, num=_as_float(value))
    elif kind == "quantity":
        # A Quantity (not a SampledData or Range the same expression may also reach): its unit by
        # code, or by the human unit when it has no code; no conversion between units.
        if isinstance(value, dict) and _is_number(value.get("value")):
            unit = value.get("code") if isinstance(value.get("code"), str) else value.get("unit")
            system = cut_system(value["system"]) if isinstance(value.get("system"), str) else None
            unit = unit[:VALUE_CHARS] if isinstance(unit, str) else None
            number = _as_float(value["value"])
            yield IndexRow(code, system, unit, num=number)
            human = value.get("unit")
            if isinstance(human, str) and human[:VALUE_CHARS] != unit:
                # R4: `5.4||mg` matches the coded unit or the unit as written; the written one is no
                # code of the system, so it is kept without it.
                yield IndexRow(code, None, human[:VALUE_CHARS], num=number)


def index_rows(resource: dict) -> list[IndexRow]:
    """All index rows of a resource, without duplicates."""
    seen: dict[IndexRow, None] = {}
    present = _top_level_names(resource)
    for param in params_for(resource["resourceType"]).values():
        # Most of a type's parameters read elements this resource does not have: skip their walks.
        if param.starts is not None and param.starts.isdisjoint(present):
            continue
        _add_rows(param, resource, seen)
    return list(seen)


def _top_level_names(resource: dict) -> set[str]:
    """The resource's element names, with choice elements also under their stem (valueQuantity: value)."""
    names = set(resource)
    for name in resource:
        if m := _CHOICE_STEM.match(name):
            names.add(m.group())
    return names


_CHOICE_STEM = re.compile(r"[a-z][A-Za-z0-9]*?(?=[A-Z])")
