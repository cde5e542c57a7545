"""The element walker: checks JSON objects against compiled element trees (shape, values, slices, rules)."""

from __future__ import annotations

from typing import Any

from adapter.definitions import element_info, resource_types
from adapter.validation import slicing
from adapter.validation.compiler import Compiler
from adapter.validation.environment import Environment
from adapter.validation.errors import INVARIANT, PROCESSING, REQUIRED, STRUCTURE, VALUE
from adapter.validation.extensions import check_context, extension_definition
from adapter.validation.model import (
    COMPLEX,
    COMPLEX_LIST,
    INLINE_TYPES,
    PRIMITIVE,
    PRIMITIVE_LIST,
    Body,
    ElementNode,
    Member,
    TypeRef,
)
from adapter.validation.registry import ProfileRegistry

_RESOURCE_TYPES = frozenset({"Resource", "DomainResource"})
_ELE_1 = "constraint ele-1 failed: all FHIR elements must have a @value or children"


class Walker:
    """Walks objects; subclasses provide `_resource` (nested resources) and `conforms_to` (slicing).

    The common cases (a single primitive, a complex value or a list of complex values, no slicing)
    take short paths with per-member data precomputed by the compiler; everything else goes through
    the general `_property` / `_item` route.
    """

    registry: ProfileRegistry
    compiler: Compiler

    def _resource(
        self, resource: dict, expr: str, env: Environment, profiles: tuple[str, ...], top: bool
    ) -> None:
        raise NotImplementedError

    def conforms_to(self, value: Any, url: str, env: Environment) -> bool:
        raise NotImplementedError

    # -- objects --------------------------------------------------------------------------------------

    def _object(
        self,
        obj: dict,
        node: ElementNode,
        type_ref: TypeRef | None,
        expr: str,
        env: Environment,
        body: Body | None = None,
    ) -> None:
        if body is None:
            body = self.compiler.body(node, type_ref)
        table = body.table
        choices: set[int] | None = None
        for key, value in obj.items():
            member = table.get(key)
            if member is None:
                if key != "resourceType" or not body.is_resource:
                    self._unknown(key, node, type_ref, expr, env)
                continue
            if member.is_choice:
                choices = choices if choices is not None else set()
                if id(member.node) in choices:
                    env.error(STRUCTURE, f"only one type of {member.node.name} is allowed", f"{expr}.{key}")
                choices.add(id(member.node))
            kind = member.kind
            if kind == PRIMITIVE and value is not None and member.shadow_key not in obj:
                problem = member.checker(value)  # type: ignore[misc]
                if problem is not None:
                    self._bad_primitive(member, value, problem, f"{expr}.{key}", env)
                elif member.checks:
                    where = f"{expr}.{key}"
                    for check in member.checks:
                        check(value, where, env)
                continue
            if kind == COMPLEX and type(value) is dict:
                where = f"{expr}.{key}"
                if len(value) < 2 and (not value or "id" in value):
                    env.error(INVARIANT, _ELE_1, where)
                inner = member.body or self._member_body(member)
                self._object(value, member.node, member.type_ref, where, env, inner)
                for check in member.checks:
                    check(value, where, env)
                continue
            if kind == COMPLEX_LIST and type(value) is list and value:
                self._complex_list(member, value, f"{expr}.{key}", env)
                continue
            if kind == PRIMITIVE_LIST and type(value) is list and member.shadow_key not in obj:
                if value and None not in value:  # nulls need the `_name` sibling: general route
                    self._primitive_list(member, value, f"{expr}.{key}", env)
                    continue
            if member.shadow:
                if member.primary not in obj:
                    self._property(member, None, value, expr, env)
                continue
            self._property(member, value, obj.get(member.shadow_key) if member.checker else None, expr, env)
        if body.required:
            for child, names in body.required:
                for name in names:
                    if name in obj:
                        break
                else:
                    where = f"{expr}.{child.name}"
                    env.error(REQUIRED, f"minimum required = {child.min}, but only found 0", where)
        if body.required_slices:
            self._missing_slices(body.required_slices, obj, expr, env)
        if body.invariants:
            self._invariants(
                body.invariants, obj, type_ref.code if type_ref else node.structure.type_name, expr, env
            )

    def _invariants(self, invariants: tuple, obj: Any, focus_type: str, expr: str, env: Environment) -> None:
        for invariant in invariants:
            guard = invariant.guard
            if guard is not None and type(obj) is dict:
                # The constraint can only fail when one of these properties is present.
                for key in guard:
                    if key in obj:
                        break
                else:
                    continue
            native = invariant.native
            if native is not None:  # the core invariants written in Python: no evaluation context
                if not native(obj, env):
                    message = f"constraint {invariant.key} failed: {invariant.human}"
                    env.add(invariant.severity, INVARIANT, message, expr)
                continue
            passed, problem = invariant.evaluate(obj, env, focus_type)
            if problem is not None:
                message = f"constraint {invariant.key} could not be evaluated ({problem})"
                env.add("information", PROCESSING, message, expr)
            elif not passed:
                message = f"constraint {invariant.key} failed: {invariant.human}"
                env.add(invariant.severity, INVARIANT, message, expr)

    @staticmethod
    def _missing_slices(required: tuple, obj: dict, expr: str, env: Environment) -> None:
        for child, names in required:
            if not any(n in obj for n in names):
                for piece in child.slices:
                    if piece.min > 0:
                        message = f"slice '{piece.slice_name}' requires at least {piece.min} item(s), found 0"
                        env.error(REQUIRED, message, f"{expr}.{child.name}")

    def _unknown(
        self, key: str, node: ElementNode, type_ref: TypeRef | None, expr: str, env: Environment
    ) -> None:
        where = f"{expr}.{key}"
        if _in_base_definition(node, type_ref, key.lstrip("_")):
            env.error(STRUCTURE, f"element {key!r} is not allowed by the profile", where)
        elif key.startswith("_"):
            env.error(
                STRUCTURE, f"unknown element {key!r} (only primitive elements have a '_' sibling)", where
            )
        else:
            env.error(STRUCTURE, f"unknown element {key!r}", where)

    def _complex(
        self, node: ElementNode, type_ref: TypeRef, value: dict, where: str, env: Environment
    ) -> None:
        if len(value) < 2 and (not value or "id" in value):
            env.error(INVARIANT, _ELE_1, where)
        self._object(value, node, type_ref, where, env)
        for check in node.checks:
            check(value, where, env)

    def _member_body(self, member: Member) -> Body:
        member.body = self.compiler.body(member.node, member.type_ref)
        return member.body

    def _complex_list(self, member: Member, values: list, where: str, env: Environment) -> None:
        node = member.node
        count = len(values)
        if count < node.min:
            env.error(REQUIRED, f"minimum required = {node.min}, but only found {count}", where)
        if node.max is not None and count > node.max:
            env.error(STRUCTURE, f"maximum allowed = {node.max}, but found {count}", where)
        type_ref = member.type_ref
        body = member.body or self._member_body(member)
        checks = member.checks
        for index, item in enumerate(values):
            item_where = f"{where}[{index}]"
            if type(item) is not dict:
                self._item(node, member, item, None, item_where, env)
                continue
            if len(item) < 2 and (not item or "id" in item):
                env.error(INVARIANT, _ELE_1, item_where)
            self._object(item, node, type_ref, item_where, env, body)
            for check in checks:
                check(item, item_where, env)

    def _primitive_list(self, member: Member, values: list, where: str, env: Environment) -> None:
        # What `_property` does for a repeating primitive without `_name` sibling, slices or invariants.
        node = member.node
        count = len(values)
        if count < node.min:
            env.error(REQUIRED, f"minimum required = {node.min}, but only found {count}", where)
        if node.max is not None and count > node.max:
            env.error(STRUCTURE, f"maximum allowed = {node.max}, but found {count}", where)
        checker = member.checker
        assert checker is not None
        checks = member.checks
        for index, item in enumerate(values):
            problem = checker(item)
            if problem is not None:
                self._bad_primitive(member, item, problem, f"{where}[{index}]", env)
            elif checks:
                item_where = f"{where}[{index}]"
                for check in checks:
                    check(item, item_where, env)

    # -- properties in general --------------------------------------------------------------------

    def _property(self, member: Member, value: Any, ext: Any, expr: str, env: Environment) -> None:
        node = member.node
        name = member.primary
        where = f"{expr}.{name}"
        if node.max == 0:
            env.error(STRUCTURE, f"element {name} is not allowed here (max 0)", where)
        if not node.is_list:
            if isinstance(value, list) or isinstance(ext, list):
                env.error(
                    STRUCTURE, "this element repeats at most once, so it must not be a JSON array", where
                )
                return
            target = node
            if node.slices:
                items = [(value, member.type_ref.code)]
                target = (
                    slicing.assign(self.compiler, self.conforms_to, node, items, [where], where, env)[0]
                    or node
                )
            self._item(target, member, value, ext, where, env)
            return
        values = _as_list(value, where, env)
        exts = _as_list(ext, where, env)
        if values is None or exts is None:
            return
        if values and exts and len(values) != len(exts):
            env.error(STRUCTURE, f"the arrays {name} and _{name} must have the same length", where)
            return
        count = max(len(values), len(exts))
        if 0 < count < node.min:
            env.error(REQUIRED, f"minimum required = {node.min}, but only found {count}", where)
        if node.max is not None and count > node.max:
            env.error(STRUCTURE, f"maximum allowed = {node.max}, but found {count}", where)
        expressions = [f"{where}[{i}]" for i in range(count)]
        targets: list[ElementNode | None] = [None] * count
        if node.slices:
            items = [(values[i] if values else None, member.type_ref.code) for i in range(count)]
            targets = slicing.assign(self.compiler, self.conforms_to, node, items, expressions, where, env)
        for index in range(count):
            value_i = values[index] if values else None
            ext_i = exts[index] if exts else None
            self._item(targets[index] or node, member, value_i, ext_i, expressions[index], env)

    def _item(
        self, node: ElementNode, member: Member, value: Any, ext: Any, where: str, env: Environment
    ) -> None:
        type_ref = member.type_ref
        if node is not member.node:
            type_ref = node.type_for(type_ref.code) or type_ref
        if member.checker is not None:
            self._primitive(node, member, value, ext, where, env)
            return
        if value is None:
            env.error(STRUCTURE, "null is not allowed here", where)
            return
        if not isinstance(value, dict):
            env.error(STRUCTURE, f"must be a JSON object ({type_ref.code})", where)
            return
        code = type_ref.code
        if code in _RESOURCE_TYPES or code in resource_types():
            if code not in _RESOURCE_TYPES and value.get("resourceType") != code:
                env.error(
                    STRUCTURE, f"expected a {code} resource, found {value.get('resourceType')!r}", where
                )
                return
            inner = env.nested(value, contained=node.name == "contained", prefix=where)
            self._resource(value, where, inner, type_ref.profiles, False)
            return
        if code == "Extension" and type_ref.profiles:
            check_context(self.compiler, type_ref.profiles[0], node, where, env)
        if code == "Extension" and not type_ref.profiles and not node.children:
            target_node, target_type = extension_definition(self.compiler, node, type_ref, value, where, env)
            if target_node is not node:
                if len(value) < 2 and (not value or "id" in value):
                    env.error(INVARIANT, _ELE_1, where)
                self._object(value, target_node, target_type, where, env)
                for check in node.checks:
                    check(value, where, env)
                return
        self._complex(node, type_ref, value, where, env)

    def _primitive(
        self, node: ElementNode, member: Member, value: Any, ext: Any, where: str, env: Environment
    ) -> None:
        if value is None:
            if ext is None:
                env.error(STRUCTURE, "null is not allowed here", where)
        else:
            problem = member.checker(value)  # type: ignore[misc]
            if problem is not None:
                self._bad_primitive(member, value, problem, where, env)
            else:
                for check in node.checks:
                    check(value, where, env)
        if ext is not None:
            if not isinstance(ext, dict):
                env.error(STRUCTURE, "the '_' sibling of a primitive must be a JSON object", where)
                return
            if value is None and not ext.get("extension"):
                env.error(
                    INVARIANT, "constraint ele-1 failed: a primitive needs a value or extensions", where
                )
            root = self.compiler.type_structure("Element").root
            assert root is not None
            self._object(ext, root, None, where, env)
        if node.invariants and value is not None:
            self._invariants(node.invariants, value, member.type_ref.code, where, env)

    @staticmethod
    def _bad_primitive(member: Member, value: Any, problem: str, where: str, env: Environment) -> None:
        if isinstance(value, list):
            env.error(STRUCTURE, "this element repeats at most once, so it must not be a JSON array", where)
            return
        code = STRUCTURE if problem.startswith("must be a JSON") else VALUE
        env.error(code, f"{problem} (found {value!r}, type {member.type_ref.code})", where)


def _as_list(value: Any, where: str, env: Environment) -> list | None:
    if value is None:
        return []
    if not isinstance(value, list):
        env.error(STRUCTURE, "this element repeats, so it must be a JSON array", where)
        return None
    if not value:
        env.error(STRUCTURE, "arrays must not be empty", where)
    return value


def _in_base_definition(node: ElementNode, type_ref: TypeRef | None, key: str) -> bool:
    """True when the core definition allows `key` where a profile does not (for a clearer message)."""
    try:
        if node.is_root or not node.children or type_ref is None or type_ref.code in INLINE_TYPES:
            info = element_info(node.structure.type_name)
            if info.child(node.path, key) is not None:
                return True
        if type_ref is not None and type_ref.code not in INLINE_TYPES:
            info = element_info(type_ref.code)
            return info.child(type_ref.code, key) is not None
    except KeyError:
        return False
    return False


__all__ = ["Walker"]
