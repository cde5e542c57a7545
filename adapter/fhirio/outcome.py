"""OperationOutcome construction."""

from __future__ import annotations

from collections.abc import Iterable

from adapter.errors import Issue


def operation_outcome(issues: Iterable[Issue], *, resource_id: str | None = None) -> dict:
    """Build an OperationOutcome resource from issues (at least one issue is always present)."""
    rendered = [issue.to_fhir() for issue in issues]
    if not rendered:
        rendered = [{"severity": "information", "code": "informational", "diagnostics": "All OK"}]
    outcome: dict = {"resourceType": "OperationOutcome"}
    if resource_id:
        outcome["id"] = resource_id
    outcome["issue"] = rendered
    return outcome


def information(message: str) -> dict:
    return operation_outcome([Issue("information", "informational", message)])
