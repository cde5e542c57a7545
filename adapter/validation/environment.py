"""The state of one validation run: issues found so far and the resources that scope FHIRPath variables."""

from __future__ import annotations

from typing import Any, Protocol

from adapter.errors import Issue
from adapter.validation.fhirpath_support import Hooks


class Services(Protocol):
    """What FHIRPath functions need from the validator (resolve(), conformsTo(), memberOf())."""

    def resolve_reference(self, reference: str, env: Environment) -> dict | None: ...

    def conforms_to(self, value: Any, url: str, env: Environment) -> bool | None: ...

    def member_of(self, value: Any, value_set: str) -> bool | None: ...


class Environment:
    """Where a value is being checked: its resource (%resource), the outermost one (%rootResource)."""

    __slots__ = ("resource", "root", "services", "issues", "entries", "prefix")

    def __init__(
        self,
        resource: dict,
        root: dict,
        services: Services | None,
        issues: list[Issue],
        entries: dict[str, dict] | None = None,
        prefix: str = "",
    ) -> None:
        self.resource = resource
        self.root = root
        self.services = services
        self.issues = issues
        # Bundle entries by fullUrl, so references inside a Bundle can be resolved and typed.
        self.entries = entries if entries is not None else {}
        # Where the current resource starts in issue expressions ("Bundle.entry[2].resource").
        self.prefix = prefix or str(resource.get("resourceType", ""))

    def nested(self, resource: dict, *, contained: bool, prefix: str) -> Environment:
        """The environment for a resource inside this one (contained, or a Bundle entry)."""
        root = self.root if contained else resource
        return Environment(resource, root, self.services, self.issues, self.entries, prefix)

    def with_issues(self, issues: list[Issue]) -> Environment:
        """The same place, reporting into another list (for trial validations such as slice matching)."""
        return Environment(self.resource, self.root, self.services, issues, self.entries, self.prefix)

    def hooks(self) -> Hooks | None:
        services = self.services
        if services is None:
            return None
        return Hooks(
            resolve=lambda reference: services.resolve_reference(reference, self),
            conforms_to=lambda value, url: services.conforms_to(value, url, self),
            member_of=services.member_of,
        )

    def add(self, severity: str, code: str, message: str, expression: str) -> None:
        self.issues.append(Issue(severity, code, f"{expression}: {message}", (expression,)))

    def error(self, code: str, message: str, expression: str) -> None:
        self.issues.append(Issue("error", code, f"{expression}: {message}", (expression,)))

    def warning(self, code: str, message: str, expression: str) -> None:
        self.issues.append(Issue("warning", code, f"{expression}: {message}", (expression,)))


__all__ = ["Environment", "Services"]
