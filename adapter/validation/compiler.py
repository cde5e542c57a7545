"""Compile StructureDefinition snapshots, once each, into element trees the validator walks over JSON."""

from __future__ import annotations

from typing import TYPE_CHECKING

from adapter.validation.checks import element_checks
from adapter.validation.errors import NOT_FOUND, ProfileLoadError
from adapter.validation.invariants import Scope, make_invariants
from adapter.validation.model import (
    INLINE_TYPES,
    Body,
    CompiledStructure,
    ElementNode,
    TypeRef,
)
from adapter.validation.registry import canonical_key, structure_error
from adapter.validation.snapshot import element_ids, split_id
from adapter.validation.terminology import Terminology

if TYPE_CHECKING:
    from adapter.validation.registry import ProfileRegistry


class Compiler:
    """Compiles and caches structures; builds the checks and bodies nodes need, on first use."""

    def __init__(self, registry: ProfileRegistry) -> None:
        self.registry = registry
        self.terminology = Terminology(registry)
        self._structures: dict[str, CompiledStructure] = {}
        self._extensions: dict[str, ElementNode | None] = {}
        self._generation = registry.generation

    def _fresh(self) -> None:
        if self._generation != self.registry.generation:
            self._structures.clear()
            self._extensions.clear()
            self.terminology = Terminology(self.registry)
            self._generation = self.registry.generation

    def extension_root(self, url: str) -> ElementNode | None:
        """The root element of the definition at `url`, or None when it is unknown or unusable."""
        self._fresh()
        if url not in self._extensions:
            try:
                found = self.structure(url).root if self.registry.structure(url) is not None else None
            except ProfileLoadError:
                found = None
            self._extensions[url] = found
        return self._extensions[url]

    def structure(self, url: str) -> CompiledStructure:
        """The compiled StructureDefinition for a canonical; ProfileLoadError when unknown or unusable."""
        self._fresh()
        key = canonical_key(url)
        found = self._structures.get(key)
        if found is None:
            sd = self.registry.require_structure(key)
            try:
                found = self._compile(sd)
            except ProfileLoadError:
                raise
            except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
                raise structure_error(key, f"cannot be compiled ({type(exc).__name__}: {exc})") from None
            self._structures[key] = found
        return found

    def type_structure(self, type_name: str) -> CompiledStructure:
        sd = self.registry.type_structure(type_name)
        if sd is None:
            raise ProfileLoadError(f"unknown type {type_name}", code=NOT_FOUND, source=type_name)
        return self.structure(sd["url"])

    def _compile(self, sd: dict) -> CompiledStructure:
        elements = (sd.get("snapshot") or {}).get("element") or []
        if not elements:
            raise structure_error(sd["url"], "has no snapshot")
        compiled = CompiledStructure(sd)
        for element, element_id in zip(elements, element_ids(elements), strict=True):
            node = ElementNode(element, element_id, compiled)
            compiled.by_id[element_id] = node
            if compiled.root is None:
                compiled.root = node
                continue
            parent_id, name, slice_name = split_id(element_id)
            parent = compiled.by_id.get(parent_id)
            if parent is None:
                raise structure_error(sd["url"], f"element {element_id} has no parent {parent_id}")
            if slice_name is None:
                parent.children[name] = node
                continue
            base = parent.children.get(name)
            head, _, _ = slice_name.rpartition("/")
            if head and base is not None:
                base = next((s for s in base.slices if s.slice_name == head), base)
            if base is None:
                raise structure_error(sd["url"], f"slice {element_id} has no sliced element")
            node.slice_base = base
            base.slices.append(node)
        for node in compiled.by_id.values():
            node.checks = element_checks(node.element, self.registry, self.terminology)
            node.invariants = make_invariants(node.element.get("constraint") or [], self._scope(node))
        return compiled

    def _scope(self, node: ElementNode) -> Scope:
        structure = node.structure
        logical = structure.kind == "logical"
        resource = structure.type_name if structure.kind == "resource" else None
        if node.is_root:
            return Scope(frozenset({structure.type_name}), resource, None if logical else structure.type_name)
        codes = [t.code for t in node.types]
        if node.content_reference:
            focus = frozenset({node.content_reference})
        elif not codes or set(codes) <= INLINE_TYPES:
            focus = frozenset({node.path})
        else:
            focus = frozenset(codes)
        return Scope(focus, resource, None if logical else node.path)

    # -- bodies ---------------------------------------------------------------------------------------

    def inline_children(self, node: ElementNode) -> dict[str, ElementNode]:
        """Children written in the snapshot under this element (a slice falls back to its base)."""
        if node.children:
            if node.slice_base is not None:
                merged = dict(self.inline_children(node.slice_base))
                merged.update(node.children)
                return merged
            return node.children
        if node.content_reference:
            target = node.structure.by_id.get(node.content_reference)
            if target is not None:
                return target.children
        if node.slice_base is not None:
            return self.inline_children(node.slice_base)
        return {}

    def types_of(self, node: ElementNode) -> tuple[TypeRef, ...]:
        if node.types:
            return node.types
        if node.content_reference:
            target = node.structure.by_id.get(node.content_reference)
            if target is not None:
                return target.types or (TypeRef("BackboneElement"),)
        return ()

    def body(self, node: ElementNode, type_ref: TypeRef | None) -> Body:
        """The Body for checking an object held by `node` with type `type_ref` (cached on the node)."""
        key = type_ref.code if type_ref is not None else ""
        if type_ref is not None and type_ref.profiles:
            key += "|" + type_ref.profiles[0]
        found = node.bodies.get(key)
        if found is None:
            found = self._make_body(node, type_ref)
            node.bodies[key] = found
        return found

    def _make_body(self, node: ElementNode, type_ref: TypeRef | None) -> Body:
        inline = self.inline_children(node)
        invariants = node.invariants
        code = type_ref.code if type_ref is not None else ""
        if node.is_root or not code or code in INLINE_TYPES:
            children = inline
        else:
            type_root = self.type_root(type_ref)
            children = dict(type_root.children)
            children.update(inline)
            seen = {(i.key, i.expression) for i in invariants}
            invariants = invariants + tuple(
                i for i in type_root.invariants if (i.key, i.expression) not in seen
            )
        is_resource = node.is_root and node.structure.kind == "resource"
        return Body(children, invariants, is_resource, self.types_of)

    def type_root(self, type_ref: TypeRef) -> ElementNode:
        """The root element of a type, or of the first known profile on the type."""
        for profile in type_ref.profiles:
            try:
                root = self.structure(profile).root
            except ProfileLoadError:
                continue
            if root is not None:
                return root
        root = self.type_structure(type_ref.code).root
        assert root is not None
        return root


__all__ = ["Compiler"]
