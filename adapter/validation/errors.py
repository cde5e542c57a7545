"""Errors raised while loading definitions, and the IssueType codes the validator reports."""

from __future__ import annotations

from adapter.errors import Issue

# OperationOutcome.issue.code values (IssueType) used by the validator. Kept in one place so the
# mapping from kind of problem to code is the same everywhere.
STRUCTURE = "structure"  # unknown element, wrong JSON shape, too many repetitions, slicing rules
REQUIRED = "required"  # a required element is missing
VALUE = "value"  # a primitive does not match its format, fixed/pattern/min/max mismatch
INVARIANT = "invariant"  # a FHIRPath constraint failed
CODE_INVALID = "code-invalid"  # a code is not in the bound value set
TOO_LONG = "too-long"  # maxLength exceeded
EXTENSION = "extension"  # an extension could not be resolved
INVALID = "invalid"  # references of the wrong type, anything without a closer code
NOT_FOUND = "not-found"  # a profile, base definition or code system is not known
PROCESSING = "processing"  # a constraint could not be evaluated
INFORMATIONAL = "informational"


class ProfileLoadError(Exception):
    """A definition could not be loaded or used (malformed, base missing, unknown profile)."""

    def __init__(self, message: str, *, code: str = INVALID, source: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.source = source

    def to_issue(self) -> Issue:
        """The problem as a fatal OperationOutcome issue."""
        where = (self.source,) if self.source else ()
        return Issue("fatal", self.code, self.message, where)


__all__ = [
    "CODE_INVALID",
    "EXTENSION",
    "INFORMATIONAL",
    "INVALID",
    "INVARIANT",
    "NOT_FOUND",
    "PROCESSING",
    "REQUIRED",
    "STRUCTURE",
    "TOO_LONG",
    "VALUE",
    "ProfileLoadError",
]
