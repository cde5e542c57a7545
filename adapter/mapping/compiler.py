"""Turning a mapping spec (checked against mappings/spec.schema.json) into a CompiledMapping, once."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from adapter.definitions import resource_types, search_parameters
from adapter.mapping.errors import MappingSpecError
from adapter.mapping.expressions import CompileContext, Expr, compile_expression, compile_template_string
from adapter.mapping.functions import CONVERTERS
from adapter.mapping.merge import STRATEGIES
from adapter.mapping.readers import Limits, Reader, make_reader
from adapter.mapping.readers.base import Accessor, ItemsAccessor
from adapter.mapping.specfiles import load_document, schema_validator
from adapter.mapping.tables import TableSet
from adapter.mapping.templates import Builder, compile_template


@dataclass
class LetItem:
    name: str
    source: str  # how the value is described in errors: a path, or the expression
    access: Accessor | None
    expr: Expr | None
    convert: Any
    required: str | None
    default: Any
    many: bool | None  # None: the path's syntax decides; True: always a list; False: the first value
    target: str | None = None  # the first FHIR element built from it, named in errors
    depends: frozenset[str] = frozenset()


@dataclass
class Requirement:
    check: Expr
    message: str
    source: str | None
    target: str | None


@dataclass
class ResourceRule:
    name: str
    resource_type: str
    when: Expr | None
    system: Builder
    value: Builder
    method: str
    merge: str
    build: Builder
    where: str


@dataclass
class Group:
    where: str
    items: ItemsAccessor
    as_name: str
    lets: list[LetItem]
    when: Expr | None
    rules: list[ResourceRule | Group]
    requires: list[Requirement] = field(default_factory=list)  # checked for each item, after `when`


@dataclass
class CompiledMapping:
    name: str
    description: str
    format: str
    reader: Reader
    constants: dict[str, Any]
    lets: list[LetItem] = field(default_factory=list)
    requires: list[Requirement] = field(default_factory=list)
    rules: list[ResourceRule | Group] = field(default_factory=list)
    routes: list[CompiledMapping] = field(default_factory=list)

    def accepts(self, record: Any) -> bool:
        accepts = getattr(self.reader, "accepts", None)
        return accepts(record) if accepts is not None else True

    @property
    def accepted_types(self) -> tuple[str, ...]:
        return tuple(getattr(self.reader, "message_types", ()) or ())


@cache
def _identifier_searchable() -> frozenset[str]:
    """Resource types with an R4 'identifier' search parameter, which conditional writes rely on."""
    return frozenset(
        base for p in search_parameters() if p.get("code") == "identifier" for base in p.get("base", [])
    )


def _check(document: Any, mappings_dir: Path, shown: str, definition: str) -> None:
    validator = schema_validator(mappings_dir, "spec.schema.json")
    if definition != "spec":
        validator = validator.evolve(schema={**validator.schema, "$ref": f"#/$defs/{definition}"})
    errors = validator.iter_errors(document)
    first = next(iter(sorted(errors, key=lambda e: (len(list(e.absolute_path)), str(e.message)))), None)
    if first is not None:
        where = "/".join(str(p) for p in first.absolute_path) or "(top)"
        raise MappingSpecError(f"{shown} is invalid at {where}: {first.message}")


def _with_fragments(spec: dict, mappings_dir: Path, shown: str) -> dict:
    """Fragments' picks, checks and resources come first; a spec resource of the same name overrides keys."""
    lets: dict[str, Any] = {}
    requires: list = []
    resources: list = []
    for fragment_name in spec.get("include", []):
        path = mappings_dir / "fragments" / f"{fragment_name}.yaml"
        if not path.is_file():
            raise MappingSpecError(f"{shown}: no fragment '{fragment_name}' in {mappings_dir / 'fragments'}")
        fragment = load_document(path)
        _check(fragment, mappings_dir, f"fragments/{path.name}", "fragment")
        lets.update(fragment.get("let", {}))
        requires.extend(fragment.get("require", []))
        resources.extend(fragment.get("resources", []))
    own = {r.get("name"): r for r in spec.get("resources", []) if "name" in r}
    merged_resources = [{**r, **own.pop(r["name"])} if r.get("name") in own else r for r in resources]
    merged_resources.extend(r for r in spec.get("resources", []) if "name" not in r or r["name"] in own)
    return {
        **spec,
        "let": {**lets, **spec.get("let", {})},
        "require": requires + spec.get("require", []),
        "resources": merged_resources,
    }


class _SpecCompiler:
    def __init__(self, reader: Reader, tables: TableSet, constants: dict[str, Any], mappings_dir: Path):
        self.mappings_dir = mappings_dir
        self.reader = reader
        self.tables = tables
        self.ctx = CompileContext(tables, set(constants), constants=dict(constants))
        self.resource_names: list[str] = []
        self.sources: dict[str, str] = {}
        self.all_lets: list[LetItem] = []

    def lets(self, lets: dict[str, Any], where: str) -> list[LetItem]:
        out = []
        for name, item in lets.items():
            spot = f"{where}.{name}"
            if isinstance(item, str):
                item = {"path": item}
            convert = None
            if "type" in item:
                convert = CONVERTERS[item["type"]]
            many = item.get("many")
            required = item.get("required")
            required = (f"no value for '{name}'" if required is True else required) or None
            if "path" in item:
                access = self.reader.path(item["path"], spot, bool(many))
                source, expr = self.reader.describe(item["path"]), None
            else:
                access, expr = None, compile_expression(item["expr"], self.ctx, spot)
                # A computed value is reported with the source fields it was computed from.
                picked = sorted({self.sources[n] for n in expr.names if n in self.sources})
                source = ", ".join(picked) if picked else f"computed {name}"
            self.sources[name] = source
            let = LetItem(
                name,
                source,
                access,
                expr,
                convert,
                required,
                item.get("default"),
                many,
                depends=expr.names if expr else frozenset(),
            )
            self.all_lets.append(let)
            out.append(let)
            self.ctx.names.add(name)
            self.ctx.shadowed.add(name)
        return out

    def resolve_targets(self) -> None:
        """Name, for each picked value, the first FHIR element built from it (directly or through others)."""
        uses = self.ctx.uses
        users: dict[str, list[str]] = {}
        for let in self.all_lets:
            for name in let.depends:
                users.setdefault(name, []).append(let.name)

        def target_of(name: str, seen: frozenset[str]) -> str | None:
            if uses.get(name):
                # An element that carries the value beats an identifier built from it.
                return next((t for t in uses[name] if ".identifier" not in t), uses[name][0])
            for user in users.get(name, []):
                if user not in seen:
                    found = target_of(user, seen | {user})
                    if found:
                        return found
            return None

        for let in self.all_lets:
            let.target = target_of(let.name, frozenset({let.name}))

    def requires(self, items: list[dict], where: str = "require") -> list[Requirement]:
        return [
            Requirement(
                compile_expression(item["check"], self.ctx, f"{where}[{i}]"),
                item["message"],
                item.get("source"),
                item.get("target"),
            )
            for i, item in enumerate(items)
        ]

    def rules(self, items: list[dict], where: str) -> list[ResourceRule | Group]:
        out: list[ResourceRule | Group] = []
        for i, item in enumerate(items):
            spot = f"{where}[{i}]"
            if "include" in item:
                out.extend(
                    self.rules(self._fragment_resources(item["include"], spot), f"{spot} ({item['include']})")
                )
            elif "for_each" in item:
                out.append(self.group(item, spot))
            else:
                out.append(self.rule(item, spot))
        return out

    def _fragment_resources(self, name: str, where: str) -> list[dict]:
        path = self.mappings_dir / "fragments" / f"{name}.yaml"
        if not path.is_file():
            raise MappingSpecError(f"{where}: no fragment '{name}' in {self.mappings_dir / 'fragments'}")
        fragment = load_document(path)
        _check(fragment, self.mappings_dir, f"fragments/{path.name}", "fragment")
        if fragment.get("let") or fragment.get("require"):
            raise MappingSpecError(
                f"{where}: fragment '{name}' has let/require; include it at the top of the spec"
            )
        return fragment.get("resources", [])

    def group(self, item: dict, where: str) -> Group:
        each = item["for_each"]
        as_name = each.get("as", "item")
        items = self.reader.items(each["path"], f"{where}.for_each")
        saved, saved_shadowed = set(self.ctx.names), set(self.ctx.shadowed)
        self.ctx.names.add(as_name)
        self.ctx.shadowed.add(as_name)
        lets = self.lets(each.get("let", {}), f"{where}.for_each.let")
        when = (
            compile_expression(each["when"], self.ctx, f"{where}.for_each.when") if "when" in each else None
        )
        requires = self.requires(each.get("require", []), f"{where}.for_each.require")
        rules = self.rules(item["resources"], f"{where}.resources")
        self.ctx.names, self.ctx.shadowed = saved, saved_shadowed
        return Group(where, items, as_name, lets, when, rules, requires)

    def rule(self, item: dict, where: str) -> ResourceRule:
        name = item["name"]
        if "resourceType" not in item or "identity" not in item:
            raise MappingSpecError(
                f"{where}: resource '{name}' has no resourceType/identity (nothing to override)"
            )
        if name in self.resource_names:
            raise MappingSpecError(f"{where}: a resource is already named '{name}'")
        self.resource_names.append(name)
        spot = f"{where} ({name})"
        when = compile_expression(item["when"], self.ctx, f"{spot}.when") if "when" in item else None
        system, _ = compile_template_string(item["identity"]["system"], self.ctx, f"{spot}.identity.system")
        value, _ = compile_template_string(item["identity"]["value"], self.ctx, f"{spot}.identity.value")
        constant_system = item["identity"]["system"]
        constant_value = item["identity"]["value"]
        merge = item.get("merge", "replace")
        if merge not in STRATEGIES:
            raise MappingSpecError(f"{spot}: unknown merge '{merge}'")
        method = item.get("method", "upsert")
        if item["resourceType"] not in resource_types():
            raise MappingSpecError(f"{spot}: '{item['resourceType']}' is not an R4 resource type")
        if method != "put" and item["resourceType"] not in _identifier_searchable():
            raise MappingSpecError(
                f"{spot}: R4 has no 'identifier' search on {item['resourceType']}, so a conditional "
                "write cannot find it again; use method: put (written at its deterministic id)"
            )
        build = compile_template(item.get("template", {}), self.ctx, item["resourceType"])
        return ResourceRule(
            name,
            item["resourceType"],
            when,
            system or (lambda scope: constant_system),
            value or (lambda scope: constant_value),
            method,
            merge,
            build,
            spot,
        )


def compile_mapping(
    path: Path, mappings_dir: Path, tables: TableSet, resolve: Any, limits: Limits | None = None
) -> CompiledMapping:
    """Load, check and compile one spec file; `resolve(name)` compiles the specs a router names.

    Raises:
        MappingSpecError: the spec, a fragment, a table or a schema it names is invalid.
    """
    shown = path.relative_to(mappings_dir).as_posix() if path.is_relative_to(mappings_dir) else str(path)
    spec = load_document(path)
    _check(spec, mappings_dir, shown, "spec")
    if spec["name"] != path.stem:
        raise MappingSpecError(f"{shown}: the spec is named '{spec['name']}', the file '{path.stem}'")
    spec = _with_fragments(spec, mappings_dir, shown)
    options = spec["input"]
    reader = make_reader(
        options["format"], options, (limits or Limits()).with_overrides(options.get("limits")), mappings_dir
    )
    common = mappings_dir / "constants.yaml"
    shared = (load_document(common) or {}).get("constants", {}) if common.is_file() else {}
    constants = {**shared, **spec.get("constants", {})}
    compiled = CompiledMapping(
        spec["name"], spec.get("description", ""), options["format"], reader, constants
    )
    if spec.get("routes"):
        for name in spec["routes"]:
            route = resolve(name)
            if route.format != compiled.format:
                raise MappingSpecError(f"{shown}: route '{name}' reads {route.format}, not {compiled.format}")
            compiled.routes.append(route)
        return compiled
    compiler = _SpecCompiler(reader, tables, constants, mappings_dir)
    compiled.lets = compiler.lets(spec.get("let", {}), "let")
    compiled.requires = compiler.requires(spec.get("require", []))
    compiled.rules = compiler.rules(spec.get("resources", []), "resources")
    compiler.resolve_targets()
    unknown = compiler.ctx.refs_used - set(compiler.resource_names)
    if unknown:
        raise MappingSpecError(f"{shown}: ref() to unknown resource(s) {', '.join(sorted(unknown))}")
    for function, resource_type, where in compiler.ctx.typed_refs:
        if resource_type not in resource_types():
            raise MappingSpecError(f"{shown}: {where}: {function}() names '{resource_type}', not an R4 type")
        if function == "ref_by_identifier" and resource_type not in _identifier_searchable():
            raise MappingSpecError(
                f"{shown}: {where}: R4 has no 'identifier' search on {resource_type}, so "
                "ref_by_identifier() cannot find it; use ref_by_id() (resources written with method: put)"
            )
    return compiled
