"""The compiled form of a StructureDefinition: element nodes, types, JSON members and object bodies."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from adapter.definitions import (
    FHIR_TYPE_EXT,
    SYSTEM_PREFIX,
    element_info,
    primitive_json_types,
    resource_types,
)
from adapter.validation.checks import Check
from adapter.validation.invariants import Invariant
from adapter.validation.primitives import Checker, check_resource_id, primitive_checker

# Types whose children are always written inline in the snapshot (never a separate StructureDefinition).
INLINE_TYPES = frozenset({"BackboneElement", "Element"})
# How the walker treats a member: short paths for the common shapes, the general route otherwise.
GENERAL, PRIMITIVE, COMPLEX, COMPLEX_LIST, PRIMITIVE_LIST = range(5)
_DYNAMIC = frozenset({"Extension", "Resource", "DomainResource"})


class TypeRef:
    """One ElementDefinition.type entry: code, profiles on the type, target profiles of references."""

    __slots__ = ("code", "profiles", "target_profiles", "json_type")

    def __init__(
        self, code: str, profiles: tuple[str, ...] = (), target_profiles: tuple[str, ...] = ()
    ) -> None:
        self.code = code
        self.profiles = profiles
        self.target_profiles = target_profiles
        self.json_type = primitive_json_types().get(code)

    def __repr__(self) -> str:
        return f"TypeRef({self.code!r})"


def _type_code(entry: dict) -> str:
    code = str(entry.get("code", ""))
    if code.startswith(SYSTEM_PREFIX):
        # Element.id, Extension.url, Resource.id: the FHIR type they stand for is in an extension.
        for ext in entry.get("extension") or ():
            if isinstance(ext, dict) and ext.get("url") == FHIR_TYPE_EXT:
                return str(ext.get("valueUrl") or ext.get("valueUri") or "string")
        return code.removeprefix(SYSTEM_PREFIX).lower()
    return code


def type_refs(element: dict) -> tuple[TypeRef, ...]:
    out = []
    for entry in element.get("type") or ():
        if isinstance(entry, dict) and entry.get("code"):
            out.append(
                TypeRef(
                    _type_code(entry),
                    tuple(p for p in entry.get("profile") or () if isinstance(p, str)),
                    tuple(p for p in entry.get("targetProfile") or () if isinstance(p, str)),
                )
            )
    return tuple(out)


def _parse_max(value: Any) -> int | None:
    if value in (None, "*"):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


class ElementNode:
    """One ElementDefinition of a snapshot with its inline children and slices."""

    __slots__ = (
        "id",
        "path",
        "name",
        "slice_name",
        "min",
        "max",
        "is_list",
        "types",
        "children",
        "slicing",
        "slices",
        "slice_base",
        "checks",
        "invariants",
        "content_reference",
        "structure",
        "element",
        "bodies",
        "is_root",
        "slice_matchers",
    )

    def __init__(self, element: dict, element_id: str, structure: CompiledStructure) -> None:
        self.id = element_id
        self.path: str = element["path"]
        self.name = self.path.rpartition(".")[2]
        self.slice_name: str | None = element.get("sliceName")
        self.min = int(element.get("min") or 0)
        self.max = _parse_max(element.get("max"))
        self.types = type_refs(element)
        self.children: dict[str, ElementNode] = {}
        self.slicing: dict | None = (
            element.get("slicing") if isinstance(element.get("slicing"), dict) else None
        )
        self.slices: list[ElementNode] = []
        self.slice_base: ElementNode | None = None
        self.checks: tuple[Check, ...] = ()
        self.invariants: tuple[Invariant, ...] = ()
        ref = element.get("contentReference")
        self.content_reference: str | None = ref.partition("#")[2] if isinstance(ref, str) else None
        self.structure = structure
        self.element = element
        self.bodies: dict[str, Body] = {}
        self.is_root = "." not in self.path
        self.is_list = self._json_list(element)
        self.slice_matchers: Any = None  # built by the slicing module on first use

    def _json_list(self, element: dict) -> bool:
        # JSON arrays follow the base definition: a profile narrowing max to 1 keeps the array.
        base = element.get("base")
        if isinstance(base, dict) and "max" in base:
            return str(base["max"]) != "1"
        head = self.path.partition(".")[0]
        try:
            return element_info(head).element(self.path).is_list
        except KeyError:
            return str(element.get("max", "1")) != "1"

    def type_for(self, code: str) -> TypeRef | None:
        for type_ref in self.types:
            if type_ref.code == code:
                return type_ref
        return None

    def __repr__(self) -> str:
        return f"ElementNode({self.id!r})"


class Member:
    """A JSON property allowed in an object: the element it belongs to and the type its name implies."""

    __slots__ = (
        "node",
        "type_ref",
        "json_name",
        "primary",
        "shadow",
        "shadow_key",
        "checker",
        "checks",
        "is_choice",
        "kind",
        "body",
    )

    def __init__(self, node: ElementNode, type_ref: TypeRef, json_name: str, shadow: bool) -> None:
        self.node = node
        self.type_ref = type_ref
        self.json_name = json_name
        self.shadow = shadow  # `_name`: the id/extensions of a primitive
        self.primary = json_name[1:] if shadow else json_name
        self.shadow_key = "_" + self.primary
        self.checker: Checker | None = None
        if type_ref.json_type is not None:
            is_resource_id = (
                node.name == "id" and node.path.count(".") == 1 and node.structure.kind == "resource"
            )
            self.checker = check_resource_id if is_resource_id else primitive_checker(type_ref.code)
        self.checks = node.checks
        self.body: Body | None = None  # filled by the walker on first use
        self.is_choice = node.name.endswith("[x]") and not shadow
        plain = not shadow and node.max != 0 and not node.slices
        code = type_ref.code
        if plain and self.checker is not None and not node.invariants:
            self.kind = PRIMITIVE_LIST if node.is_list else PRIMITIVE
        elif plain and self.checker is None and code not in _DYNAMIC and code not in resource_types():
            self.kind = COMPLEX_LIST if node.is_list else COMPLEX
        else:
            self.kind = GENERAL


class Body:
    """How to check a JSON object against an element of one type: allowed properties, required ones."""

    __slots__ = ("table", "by_name", "required", "invariants", "is_resource", "required_slices")

    def __init__(
        self,
        children: dict[str, ElementNode],
        invariants: tuple[Invariant, ...],
        is_resource: bool,
        types_of: Callable[[ElementNode], tuple[TypeRef, ...]],
    ) -> None:
        self.table: dict[str, Member] = {}
        self.by_name = children
        self.invariants = invariants
        self.is_resource = is_resource
        required: list[tuple[ElementNode, tuple[str, ...]]] = []
        required_slices: list[tuple[ElementNode, tuple[str, ...]]] = []
        for name, node in children.items():
            names: list[str] = []
            for type_ref in types_of(node):
                json_name = (
                    name[:-3] + type_ref.code[:1].upper() + type_ref.code[1:]
                    if name.endswith("[x]")
                    else name
                )
                self.table[json_name] = Member(node, type_ref, json_name, False)
                names.append(json_name)
                if type_ref.json_type is not None:
                    self.table["_" + json_name] = Member(node, type_ref, "_" + json_name, True)
                    names.append("_" + json_name)
            if node.min > 0:
                required.append((node, tuple(names)))
            elif any(s.min > 0 for s in node.slices):
                required_slices.append((node, tuple(names)))
        self.required = tuple(required)
        # Elements that may be absent as a whole, but have a slice that must be there.
        self.required_slices = tuple(required_slices)


class CompiledStructure:
    """A StructureDefinition's snapshot as a tree of ElementNodes."""

    def __init__(self, sd: dict) -> None:
        self.url: str = sd["url"]
        self.type_name: str = sd["type"]
        self.kind: str = sd.get("kind", "")
        self.sd = sd
        self.by_id: dict[str, ElementNode] = {}
        self.root: ElementNode | None = None


__all__ = [
    "COMPLEX",
    "COMPLEX_LIST",
    "GENERAL",
    "INLINE_TYPES",
    "PRIMITIVE",
    "PRIMITIVE_LIST",
    "Body",
    "CompiledStructure",
    "ElementNode",
    "Member",
    "TypeRef",
    "type_refs",
]
