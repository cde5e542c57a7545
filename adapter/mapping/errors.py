"""Errors of the mapping engine: broken specs, unreadable sources, and problems with one record."""

from __future__ import annotations

from dataclasses import dataclass

from adapter.errors import (
    AdapterError,
    InvalidSyntaxError,
    Issue,
    NotFoundError,
    PayloadTooLargeError,
    UnsupportedMediaTypeError,
)


@dataclass(frozen=True)
class MappingIssue:
    """One finding about the source: where in the source, which FHIR element it was for, and why."""

    severity: str  # error | warning | information
    message: str
    source: str | None = None  # e.g. "message 3 (MSH-10 ADT0003), PID-7" or "line 5, column 'Sexe' (F)"
    target: str | None = None  # e.g. "Patient.birthDate"

    def describe(self) -> str:
        parts = [self.message]
        if self.source:
            parts.append(f"source: {self.source}")
        if self.target:
            parts.append(f"target: {self.target}")
        return "; ".join(parts)

    def to_issue(self) -> Issue:
        code = "processing" if self.severity == "error" else "informational"
        expression = (self.target,) if self.target else ()
        return Issue(self.severity, code, self.describe(), expression)

    def to_json(self) -> dict:
        out = {"severity": self.severity, "message": self.message}
        if self.source:
            out["source"] = self.source
        if self.target:
            out["target"] = self.target
        return out


class MappingSpecError(AdapterError):
    """A mapping spec or code table is invalid; raised when it is loaded, never per message."""

    status = 500
    issue_code = "exception"


class UnknownMappingError(NotFoundError):
    """No mapping spec of that name in the mappings folder."""


class SourceFormatError(InvalidSyntaxError):
    """The source as a whole cannot be read (wrong format, bad header, undecodable bytes)."""


class SourceTooLargeError(PayloadTooLargeError):
    """The source is beyond a configured limit (bytes, records)."""


class SourceMediaTypeError(UnsupportedMediaTypeError):
    """The content type does not match the mapping's input format."""


class ValueProblem(Exception):
    """A value cannot be converted or looked up; the engine adds where it came from and where it went."""

    def __init__(self, message: str, *, source: str | None = None, target: str | None = None):
        super().__init__(message)
        self.message = message
        self.source = source
        self.target = target


class RecordRejected(Exception):
    """One record (message, row, element) cannot be mapped; the other records of the source go on."""

    def __init__(self, issues: list[MappingIssue]):
        super().__init__("; ".join(issue.describe() for issue in issues))
        self.issues = issues
