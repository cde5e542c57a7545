"""Ingest: hospital data (HL7 v2, CSV, JSON, XML) mapped to FHIR, validated, and stored in one transaction."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from adapter.errors import Issue, UnprocessableResourceError
from adapter.fhirio.jsonio import parse_json
from adapter.mapping import MappingRegistry, MappingResult, ResourceLookup, StoredResource, map_source
from adapter.security.clients import storable_text
from adapter.security.tenancy import AccessGuard
from adapter.services import searching
from adapter.services.transactions import BundleProcessor, response_bundle
from adapter.store.unit_of_work import UnitOfWork
from adapter.validation.gate import validator


@dataclass
class StoreLookup(ResourceLookup):
    """Current resources by identifier, as the caller may see them, for mappings that merge (CarePlan)."""

    uow: UnitOfWork
    guard: AccessGuard

    def find(self, resource_type: str, system: str, value: str) -> StoredResource | None:
        if not (storable_text(system) and storable_text(value)):
            # No stored identifier holds a NUL: the search would refuse it (400 naming a parameter the
            # client never sent); without a match, validation names the element that carries it.
            return None
        query = searching.prepare(
            resource_type,
            [("identifier", f"{system}|{value}")],
            strict=True,
            default_count=2,
            max_count=2,
            guard=self.guard,
        )
        with self.uow.reading() as store:
            page = searching.run(store, query, self.guard)
        if len(page.resources) != 1 or page.resources[0].content is None:
            return None
        found = page.resources[0]
        return StoredResource(parse_json(found.content, max_depth=1000), str(found.version_id))


def _counts(result: MappingResult) -> list[dict]:
    return [
        {"name": "records", "valueInteger": result.records},
        {"name": "mapped", "valueInteger": result.mapped},
        {"name": "rejected", "valueInteger": len(result.rejected)},
    ]


def _outcome(issues: list[Issue]) -> dict:
    from adapter.fhirio.outcome import operation_outcome

    return operation_outcome(issues or [Issue("information", "informational", "every record was mapped")])


class IngestService:
    def __init__(
        self,
        uow: UnitOfWork,
        bundles: BundleProcessor,
        clock: Callable[[], int],
        registry: MappingRegistry | None = None,
    ):
        self.uow = uow
        self.bundles = bundles
        self.clock = clock
        self.registry = registry

    def ingest(
        self,
        mapping: str,
        data: bytes,
        content_type: str | None,
        base: str,
        *,
        guard: AccessGuard,
        dry_run: bool,
    ) -> dict[str, Any]:
        """Map, validate and (unless a dry run) store; a Parameters resource reports what happened.

        Parameters: `bundle` (dry run: the transaction that would be posted) or `response` (the
        transaction-response), `outcome` (rejected records and validation findings), and the counts.
        """
        engineer = guard.principal is not None and guard.principal.role == "engineer"
        # An interface engineer's dry run maps without reading stored data; its writes are refused below
        # entry by entry, like any other client's without the scopes.
        lookup = None if engineer else StoreLookup(self.uow, guard)
        result = map_source(mapping, data, content_type, lookup=lookup, registry=self.registry)
        issues = result.outcome_issues()
        findings = validator().validate(result.bundle) if result.bundle.get("entry") else []
        if dry_run:
            return {
                "resourceType": "Parameters",
                "parameter": [
                    {"name": "bundle", "resource": result.bundle},
                    {"name": "outcome", "resource": _outcome(issues + findings)},
                    *_counts(result),
                ],
            }
        errors = [f for f in findings if f.severity in ("error", "fatal")]
        if errors:
            raise UnprocessableResourceError(
                f"the mapped Bundle is not valid ({len(errors)} error(s)); nothing was stored",
                issues=errors + issues,
            )
        if not result.bundle.get("entry"):
            raise UnprocessableResourceError(
                "no record could be mapped; nothing was stored", issues=issues or None
            )
        kind, results = self.bundles.process(result.bundle, base, guard=guard)
        from adapter.search.dates import format_instant

        response = parse_json(
            response_bundle(kind, results, now=format_instant(self.clock()), include_resources=False),
            max_depth=1000,
        )
        return {
            "resourceType": "Parameters",
            "parameter": [
                {"name": "response", "resource": response},
                {"name": "outcome", "resource": _outcome(issues + [f for f in findings if f not in errors])},
                *_counts(result),
            ],
        }
