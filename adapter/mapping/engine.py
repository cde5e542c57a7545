"""Running a compiled mapping over a source: each record becomes entries, or a rejection with its reasons."""

from __future__ import annotations

import gc
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from adapter.mapping.bundle import BundleAssembler, Entry, ResourceLookup
from adapter.mapping.compiler import CompiledMapping, Group, LetItem, Requirement, ResourceRule
from adapter.mapping.errors import MappingIssue, RecordRejected, ValueProblem
from adapter.mapping.identity import full_url, stable_id
from adapter.mapping.readers.base import Record, SourceDocument
from adapter.mapping.references import Resolver
from adapter.mapping.result import MappingResult, Rejection
from adapter.mapping.scope import Scope
from adapter.mapping.templates import locate

logger = logging.getLogger(__name__)

Progress = Callable[[int, int], None]


def _reject(message: str, source: str | None = None, target: str | None = None) -> RecordRejected:
    return RecordRejected([MappingIssue("error", message, source, target)])


def _from_problem(problem: ValueProblem, scope: Scope, target: str | None = None) -> RecordRejected:
    return _reject(problem.message, problem.source or scope.location, problem.target or target)


def _pick(lets: list[LetItem], scope: Scope, node: Any) -> None:
    values, sources, location = scope.vars, scope.sources, scope.location
    for let in lets:
        try:
            value = let.access(node) if let.access is not None else let.expr.evaluate(scope)  # type: ignore[union-attr]
            if let.many is not None:
                if let.many and not isinstance(value, list):
                    value = [] if value is None else [value]
                elif not let.many and isinstance(value, list):
                    value = value[0] if value else None
            if let.convert is not None and value is not None:
                value = [let.convert(v) for v in value] if isinstance(value, list) else let.convert(value)
        except ValueProblem as problem:
            raise _reject(
                f"{problem.message} (value '{let.name}')",
                problem.source or f"{location}, {let.source}",
                problem.target or let.target,
            ) from None
        if value is None or value == [] or value == "":
            if let.required:
                raise _reject(let.required, f"{location}, {let.source}", let.target)
            value = let.default
        values[let.name] = value
        sources[let.name] = let.source


def _check(requires: list[Requirement], scope: Scope) -> None:
    for requirement in requires:
        try:
            holds = requirement.check.evaluate(scope)
        except ValueProblem as problem:
            raise _from_problem(problem, scope, requirement.target) from None
        if not holds:
            source = scope.sources.get(requirement.source or "")
            raise _reject(
                requirement.message,
                f"{scope.location}, {source}" if source else scope.location,
                requirement.target,
            )


def _resolve(rule: ResourceRule, scope: Scope) -> tuple[str, str] | None:
    try:
        if rule.when is not None and not rule.when.evaluate(scope):
            return None
        system, value = rule.system(scope), rule.value(scope)
    except ValueProblem as problem:
        raise _from_problem(
            locate(problem, f"{rule.resource_type}.identifier", frozenset(), scope), scope
        ) from None
    if not system or not value:
        raise _reject(
            f"no identifier to identify the {rule.resource_type} '{rule.name}' (identity)",
            scope.location,
            f"{rule.resource_type}.identifier",
        )
    return str(system), str(value)


def _entry(rule: ResourceRule, scope: Scope, system: str, value: str, url: str, rid: str) -> Entry:
    try:
        built = rule.build(scope) or {}
    except ValueProblem as problem:
        raise _from_problem(problem, scope) from None
    resource: dict[str, Any] = {"resourceType": rule.resource_type, "id": rid}
    resource.update(built)
    identifiers = resource.get("identifier")
    if not any(i.get("system") == system and i.get("value") == value for i in identifiers or ()):
        # The conditional URL searches this identifier: without it the next message would miss the resource.
        resource["identifier"] = [*(identifiers or []), {"system": system, "value": value}]
    return Entry((rule.resource_type, system, value), url, rule.method, rule.merge, resource)


def _run_rules(rules: list[ResourceRule | Group], scope: Scope, node: Any, out: list[Entry]) -> None:
    # Identities first, so any template can ref() any resource of its level, whatever the order.
    resolved = []
    groups = []
    for rule in rules:
        if isinstance(rule, Group):
            groups.append(rule)
            continue
        identity = _resolve(rule, scope)
        if identity is None:
            continue
        rid = stable_id(rule.resource_type, *identity)
        url = full_url(rid)
        scope.refs[rule.name] = url
        resolved.append((rule, identity, url, rid))
    for rule, (system, value), url, rid in resolved:
        out.append(_entry(rule, scope, system, value, url, rid))
    for group in groups:
        for location, item in group.items(node, scope.location):
            child = scope.child(location)
            child.vars[group.as_name] = item
            _pick(group.lets, child, item)
            try:
                if group.when is not None and not group.when.evaluate(child):
                    continue
            except ValueProblem as problem:
                raise _from_problem(problem, child) from None
            _check(group.requires, child)
            _run_rules(group.rules, child, item, out)


def map_record(mapping: CompiledMapping, record: Record, resolver: Resolver | None = None) -> list[Entry]:
    """The entries of one record; `resolver` answers ref_by_identifier() (conditional references if None).

    Raises:
        RecordRejected: the record cannot be mapped; its issues say where and why.
    """
    if record.error is not None:
        raise RecordRejected(record.errors)
    scope = Scope(dict(mapping.constants), {}, {}, record.location, resolver)
    _pick(mapping.lets, scope, record.data)
    _check(mapping.requires, scope)
    out: list[Entry] = []
    _run_rules(mapping.rules, scope, record.data, out)
    return out


def _route(mapping: CompiledMapping, record: Record) -> CompiledMapping:
    if mapping.routes:
        for route in mapping.routes:
            if route.accepts(record):
                return route
        kind = getattr(record.data, "message_type", None) or "this record"
        names = ", ".join(r.name for r in mapping.routes)
        raise _reject(
            f"{kind} is not handled by any route of mapping {mapping.name} ({names})", record.location
        )
    if not mapping.accepts(record):
        kind = getattr(record.data, "message_type", "?")
        accepted = ", ".join(mapping.accepted_types)
        raise _reject(
            f"message type {kind} is not handled by mapping {mapping.name} (accepts {accepted})",
            f"{record.location}, MSH-9",
        )
    return mapping


@contextmanager
def _cyclic_gc_paused() -> Iterator[None]:
    """Mapping builds many long-lived dicts (the Bundle) that hold no reference cycles; the cyclic
    collector would rescan the growing Bundle again and again (nearly half the time at 10,000 rows).
    Reference counting still frees everything else meanwhile; collection resumes once mapped."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def run_mapping(
    mapping: CompiledMapping,
    document: SourceDocument,
    *,
    lookup: ResourceLookup | None = None,
    progress: Progress | None = None,
) -> MappingResult:
    """Map every record of a read source; one record's failure never stops the others."""
    with _cyclic_gc_paused():
        return _run(mapping, document, lookup, progress)


def _run(
    mapping: CompiledMapping,
    document: SourceDocument,
    lookup: ResourceLookup | None,
    progress: Progress | None,
) -> MappingResult:
    assembler = BundleAssembler()
    resolver = Resolver(assembler.full_url, lookup)
    result = MappingResult(mapping.name, {}, records=len(document.records))
    total = len(document.records)
    for done, record in enumerate(document.records, start=1):
        record.load()
        try:
            entries = map_record(
                _route(mapping, record) if record.error is None else mapping, record, resolver
            )
        except RecordRejected as rejected:
            result.rejected.append(Rejection(record.index, record.location, rejected.issues))
        else:
            assembler.add(entries)
            result.mapped += 1
        record.unload()
        if progress is not None:
            progress(done, total)
    result.issues = list(document.issues)
    result.bundle = assembler.bundle(lookup)
    if result.rejected:
        logger.info("mapping %s: %d of %d records rejected", mapping.name, len(result.rejected), total)
    return result
