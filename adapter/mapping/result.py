"""What mapping a source gives back: the transaction Bundle, the rejected records and why, other findings."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from adapter.errors import Issue
from adapter.mapping.errors import MappingIssue


@dataclass
class Rejection:
    """A record left out of the Bundle: its number, where it is in the source, and the reasons."""

    index: int
    location: str
    issues: list[MappingIssue]

    @property
    def reason(self) -> str:
        return "; ".join(issue.describe() for issue in self.issues)

    def to_json(self) -> dict:
        return {"record": self.index, "location": self.location, "issues": [i.to_json() for i in self.issues]}


@dataclass
class MappingResult:
    mapping: str
    bundle: dict
    records: int = 0
    mapped: int = 0
    rejected: list[Rejection] = field(default_factory=list)
    issues: list[MappingIssue] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.rejected

    def outcome_issues(self) -> list[Issue]:
        """Every finding as an OperationOutcome issue, rejected records first."""
        out = [issue.to_issue() for rejection in self.rejected for issue in rejection.issues]
        out.extend(issue.to_issue() for issue in self.issues)
        return out

    def summary(self) -> str:
        """A few lines for people: counts, then each rejection with its reason."""
        resources = Counter(e["resource"]["resourceType"] for e in self.bundle.get("entry", []))
        made = ", ".join(f"{count} {kind}" for kind, count in sorted(resources.items())) or "no resources"
        lines = [
            f"mapping {self.mapping}: {self.records} record(s), {self.mapped} mapped, "
            f"{len(self.rejected)} rejected -> {made}"
        ]
        lines.extend(f"  rejected {r.location}: {r.reason}" for r in self.rejected)
        lines.extend(f"  {i.severity}: {i.describe()}" for i in self.issues)
        return "\n".join(lines)

    def to_json(self) -> dict:
        return {
            "mapping": self.mapping,
            "records": self.records,
            "mapped": self.mapped,
            "rejected": [r.to_json() for r in self.rejected],
            "issues": [i.to_json() for i in self.issues],
            "bundle": self.bundle,
        }
