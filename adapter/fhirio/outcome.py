"""OperationOutcome construction."""

from __future__ import annotations

import re
from collections.abc import Iterable

from adapter.errors import Issue

# Characters XML 1.0 cannot carry (C0 controls but tab, LF and CR; surrogates; U+FFFE, U+FFFF). Messages
# and expressions quote what the client sent (an id, a parameter name, a JSON key), and an outcome that
# cannot be written as XML would turn a 4xx into a 500 when the client asked for XML.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _printable(text: str) -> str:
    return _NOT_XML.sub(lambda m: f"\\u{ord(m.group()):04x}", text) if _NOT_XML.search(text) else text


def _escaped(issue: dict) -> dict:
    if isinstance(issue.get("diagnostics"), str):
        issue["diagnostics"] = _printable(issue["diagnostics"])
    if "expression" in issue:
        issue["expression"] = [_printable(e) for e in issue["expression"]]
    return issue


def operation_outcome(issues: Iterable[Issue], *, resource_id: str | None = None) -> dict:
    """Build an OperationOutcome resource from issues (at least one issue is always present)."""
    rendered = [_escaped(issue.to_fhir()) for issue in issues]
    if not rendered:
        rendered = [{"severity": "information", "code": "informational", "diagnostics": "All OK"}]
    outcome: dict = {"resourceType": "OperationOutcome"}
    if resource_id:
        outcome["id"] = resource_id
    outcome["issue"] = rendered
    return outcome


def information(message: str) -> dict:
    return operation_outcome([Issue("information", "informational", message)])
