"""FHIR R4 core definitions (shipped compact in r4/) and precomputed per-type element tables."""

from __future__ import annotations

import gzip
import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from types import MappingProxyType
from typing import Any

DATA_DIR = Path(__file__).resolve().parent / "r4"
CORE_PREFIX = "http://hl7.org/fhir/StructureDefinition/"
SYSTEM_PREFIX = "http://hl7.org/fhirpath/System."
FHIR_TYPE_EXT = "http://hl7.org/fhir/StructureDefinition/structuredefinition-fhir-type"
REGEX_EXT = "http://hl7.org/fhir/StructureDefinition/regex"

# How each FHIRPath system type is written in FHIR JSON; everything else is a JSON string.
_SYSTEM_JSON_TYPES = {"Boolean": "boolean", "Integer": "integer", "Decimal": "decimal"}


def _load(file_name: str) -> Any:
    with gzip.open(DATA_DIR / file_name, "rb") as handle:
        return json.load(handle)


@cache
def source_info() -> dict:
    """Provenance of the shipped definitions (package, version, licence, checksum, counts)."""
    return json.loads((DATA_DIR / "SOURCE.json").read_text("utf-8"))


@cache
def structure_definitions() -> dict[str, dict]:
    """Every core StructureDefinition, keyed by canonical url."""
    return {sd["url"]: sd for sd in _load("structuredefinitions.json.gz")}


@cache
def search_parameters() -> list[dict]:
    """Every core SearchParameter (compact form)."""
    return _load("searchparameters.json.gz")


@cache
def value_sets() -> dict[str, dict]:
    """Every core ValueSet (compact form), keyed by canonical url."""
    return {vs["url"]: vs for vs in _load("valuesets.json.gz")}


@cache
def code_systems() -> dict[str, dict]:
    """Every core CodeSystem (compact form), keyed by canonical url."""
    return {cs["url"]: cs for cs in _load("codesystems.json.gz")}


@dataclass(frozen=True)
class Compartment:
    """A core CompartmentDefinition: the resource types it holds, each with the search parameters that
    place a resource of that type in it ("{def}": the compartment's own resource)."""

    url: str
    members: Mapping[str, tuple[str, ...]]


@cache
def compartments() -> Mapping[str, Compartment]:
    """The core compartments by compartment type (Patient, Encounter, Practitioner, ...)."""
    return MappingProxyType(
        {
            cd["code"]: Compartment(
                cd["url"], MappingProxyType({r["code"]: tuple(r["param"]) for r in cd["resource"]})
            )
            for cd in _load("compartments.json.gz")
        }
    )


@cache
def _types_by_name() -> dict[str, dict]:
    # Profiles (derivation=constraint) share their base's `type`; only the defining SD names a type.
    out: dict[str, dict] = {}
    for sd in structure_definitions().values():
        if sd.get("derivation") != "constraint" and sd["url"] == CORE_PREFIX + sd["type"]:
            out[sd["type"]] = sd
    return out


def structure_definition_for_type(type_name: str) -> dict:
    """The StructureDefinition that defines a type ("Patient", "HumanName", "string"); KeyError if none."""
    try:
        return _types_by_name()[type_name]
    except KeyError:
        raise KeyError(f"unknown FHIR type {type_name!r}") from None


@cache
def resource_types() -> frozenset[str]:
    """Names of the concrete (instantiable) resource types."""
    return frozenset(
        name for name, sd in _types_by_name().items() if sd["kind"] == "resource" and not sd.get("abstract")
    )


@cache
def primitive_json_types() -> Mapping[str, str]:
    """For each primitive type, its JSON form: "string", "boolean", "integer" or "decimal"."""
    types = _types_by_name()
    out: dict[str, str] = {}
    for name, sd in types.items():
        if sd["kind"] != "primitive-type":
            continue
        # positiveInt/unsignedInt type their value as System.String in 4.0.1, so follow the base
        # chain (positiveInt -> integer) up to the root primitive, whose system type is reliable.
        root = sd
        while True:
            base = types.get(root.get("baseDefinition", "").removeprefix(CORE_PREFIX))
            if base is None or base["kind"] != "primitive-type":
                break
            root = base
        code = _value_type(root).get("code", "")
        out[name] = _SYSTEM_JSON_TYPES.get(code.removeprefix(SYSTEM_PREFIX), "string")
    return MappingProxyType(out)


def _value_type(sd: dict) -> dict:
    for element in sd.get("snapshot", {}).get("element", ()):
        if element["path"] == sd["type"] + ".value" and element.get("type"):
            return element["type"][0]
    return {}


def _type_extension(type_entry: dict, url: str) -> Any:
    for ext in type_entry.get("extension", ()):
        if ext.get("url") == url:
            return ext.get("valueUrl", ext.get("valueString"))
    return None


@dataclass(frozen=True, slots=True)
class ElementInfo:
    """One element of a type, as needed to read and write instances."""

    path: str  # "Task.input.value[x]"
    name: str  # "value[x]"
    min: int
    max: str
    is_list: bool
    types: tuple[str, ...]  # effective type codes; System types mapped to their FHIR type
    is_choice: bool
    json_names: Mapping[str, str]  # JSON/XML name -> type code, in definition order
    content_reference: str | None  # resolved path, "Questionnaire.item" for "#Questionnaire.item"
    children_path: str | None  # where inline children live (self or the contentReference target)
    xml_attr: bool  # Element.id / Extension.url: an XML attribute, a plain JSON string
    xhtml: bool  # Narrative.div
    is_primitive: bool  # every type is a FHIR primitive (or a system string)

    def json_type(self, type_code: str) -> str | None:
        """JSON form of one of this element's types when it is primitive, else None."""
        return primitive_json_types().get(type_code)


@dataclass(frozen=True, slots=True)
class JsonChild:
    """A child as named in JSON/XML: for choices one entry per type (valueString, valueQuantity)."""

    element: ElementInfo
    json_name: str
    type_code: str
    json_type: str | None  # "string" | "boolean" | "integer" | "decimal" for primitives, else None


class TypeInfo:
    """Precomputed lookup tables for one type's snapshot; all lookups are dictionary hits."""

    __slots__ = (
        "name",
        "kind",
        "url",
        "abstract",
        "json_type",
        "regex",
        "_elements",
        "_children",
        "_by_name",
    )

    def __init__(self, sd: dict) -> None:
        self.name: str = sd["type"]
        self.kind: str = sd["kind"]
        self.url: str = sd["url"]
        self.abstract: bool = bool(sd.get("abstract"))
        self.json_type: str | None = primitive_json_types().get(self.name)
        self.regex: str | None = _type_extension(_value_type(sd), REGEX_EXT) if self.json_type else None
        raw = [e for e in sd.get("snapshot", {}).get("element", ()) if ":" not in e.get("id", e["path"])]
        by_path = {e["path"]: e for e in raw}
        parents = {path.rpartition(".")[0] for path in by_path if "." in path}
        self._elements: dict[str, ElementInfo] = {}
        children: dict[str, list[ElementInfo]] = {}
        for element in raw:
            path = element["path"]
            if "." not in path:
                continue
            info = _element_info(element, by_path, parents)
            self._elements[path] = info
            children.setdefault(path.rpartition(".")[0], []).append(info)
        self._children: dict[str, tuple[ElementInfo, ...]] = {p: tuple(c) for p, c in children.items()}
        self._children.setdefault(self.name, ())
        self._by_name: dict[str, dict[str, JsonChild]] = {}
        for parent, kids in self._children.items():
            table: dict[str, JsonChild] = {}
            for info in kids:
                for json_name, code in info.json_names.items():
                    table[json_name] = JsonChild(info, json_name, code, primitive_json_types().get(code))
            self._by_name[parent] = table
        # A contentReference element shares its target's children, so lookups by either path work.
        for path, info in self._elements.items():
            if info.content_reference and info.content_reference in self._children:
                self._children[path] = self._children[info.content_reference]
                self._by_name[path] = self._by_name[info.content_reference]

    def __repr__(self) -> str:
        return f"TypeInfo({self.name!r}, kind={self.kind!r})"

    @property
    def is_primitive(self) -> bool:
        return self.json_type is not None

    def element(self, path: str) -> ElementInfo:
        """The element at a snapshot path ("Questionnaire.item.item.linkId" also works); KeyError if none."""
        info = self._elements.get(path)
        if info is not None:
            return info
        head, _, rest = path.partition(".")
        if head != self.name or not rest:
            raise KeyError(path)
        context = self.name
        for segment in rest.split("."):
            child = self._by_name.get(context, {}).get(segment)
            if child is None:
                raise KeyError(path)
            info = child.element
            context = info.children_path or ""
        assert info is not None
        return info

    def children(self, path: str | None = None) -> tuple[ElementInfo, ...]:
        """Inline children of a path (default: the type itself), in definition order."""
        return self._children.get(path or self.name, ())

    def child(self, path: str, json_name: str) -> JsonChild | None:
        """The child of `path` called `json_name` in JSON/XML (choices by their typed name)."""
        table = self._by_name.get(path)
        return table.get(json_name) if table else None

    def json_children(self, path: str | None = None) -> tuple[JsonChild, ...]:
        """Every JSON/XML name allowed under a path, in definition order, choices expanded."""
        table = self._by_name.get(path or self.name)
        return tuple(table.values()) if table else ()


def _effective_code(type_entry: dict) -> str:
    code = type_entry.get("code", "")
    if code.startswith(SYSTEM_PREFIX):
        # Element.id, Extension.url and Resource.id carry the FHIR type they stand for in an extension.
        return _type_extension(type_entry, FHIR_TYPE_EXT) or code.removeprefix(SYSTEM_PREFIX).lower()
    return code


def _element_info(element: dict, by_path: dict[str, dict], parents: set[str]) -> ElementInfo:
    path = element["path"]
    name = path.rpartition(".")[2]
    ref = element.get("contentReference")
    target_path = ref.partition("#")[2] if ref else None
    type_entries = element.get("type") or (by_path.get(target_path, {}).get("type") if target_path else None)
    types = tuple(_effective_code(t) for t in type_entries or ())
    is_choice = name.endswith("[x]")
    if is_choice:
        stem = name[:-3]
        json_names = {stem + code[:1].upper() + code[1:]: code for code in types}
    else:
        json_names = {name: types[0] if types else ""}
    children_path = target_path if target_path else (path if path in parents else None)
    representation = element.get("representation", ())
    prims = primitive_json_types()
    return ElementInfo(
        path=path,
        name=name,
        min=int(element.get("min", 0)),
        max=str(element.get("max", "*")),
        is_list=str(element.get("max", "*")) != "1",
        types=types,
        is_choice=is_choice,
        json_names=MappingProxyType(json_names),
        content_reference=target_path,
        children_path=children_path,
        xml_attr="xmlAttr" in representation,
        # 4.0.1 marks Narrative.div only by its type; the representation code is not set there.
        xhtml="xhtml" in representation or types == ("xhtml",),
        is_primitive=bool(types) and all(code in prims for code in types),
    )


@cache
def element_info(type_name: str) -> TypeInfo:
    """Precomputed element tables for a type ("Patient", "HumanName", "string"); KeyError if unknown."""
    return TypeInfo(structure_definition_for_type(type_name))


__all__ = [
    "ElementInfo",
    "JsonChild",
    "TypeInfo",
    "code_systems",
    "element_info",
    "primitive_json_types",
    "resource_types",
    "search_parameters",
    "source_info",
    "structure_definition_for_type",
    "structure_definitions",
    "value_sets",
]
