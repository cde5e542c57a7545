"""The AdapterError tree: every failure the service reports to a client is one of these.

One table in `adapter.api.errors` turns each class into an HTTP status and an
OperationOutcome, so the core never needs to know about HTTP.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Issue:
    """One OperationOutcome.issue: severity, code, a human message and where it is."""

    severity: str  # fatal | error | warning | information
    code: str  # an IssueType code: invalid, structure, required, value, not-found, ...
    diagnostics: str
    expression: tuple[str, ...] = field(default_factory=tuple)

    def to_fhir(self) -> dict:
        out: dict = {"severity": self.severity, "code": self.code, "diagnostics": self.diagnostics}
        if self.expression:
            out["expression"] = list(self.expression)
        return out


class AdapterError(Exception):
    """Base class; `status` is the HTTP status a REST view answers with."""

    status = 500
    issue_code = "exception"

    def __init__(self, message: str, *, expression: str | None = None, issues: list[Issue] | None = None):
        super().__init__(message)
        self.message = message
        if issues:
            self.issues = list(issues)
        else:
            expr = (expression,) if expression else ()
            self.issues = [Issue("error", self.issue_code, message, expr)]


class InvalidSyntaxError(AdapterError):
    """The request body or a parameter cannot be parsed (400)."""

    status = 400
    issue_code = "structure"


class InvalidRequestError(AdapterError):
    """A well-formed request that asks for something the server cannot do (400)."""

    status = 400
    issue_code = "invalid"


class UnsupportedMediaTypeError(AdapterError):
    status = 415
    issue_code = "not-supported"


class NotAcceptableError(AdapterError):
    status = 406
    issue_code = "not-supported"


class PayloadTooLargeError(AdapterError):
    status = 413
    issue_code = "too-costly"


class NotFoundError(AdapterError):
    status = 404
    issue_code = "not-found"


class UnknownOperationError(NotFoundError):
    """An operation ($name) this server does not offer where it was invoked."""

    issue_code = "not-supported"


class MethodNotAllowedError(AdapterError):
    """The method is not one the target supports (405); `allowed` are those it does, for the Allow header
    HTTP requires on a 405 (RFC 9110 §15.5.6)."""

    status = 405
    issue_code = "not-supported"

    def __init__(self, message: str, *, allowed: tuple[str, ...] = (), expression: str | None = None):
        super().__init__(message, expression=expression)
        self.allowed = allowed


class GoneError(AdapterError):
    """The resource existed and was deleted (410)."""

    status = 410
    issue_code = "deleted"


class ConflictError(AdapterError):
    status = 409
    issue_code = "conflict"


class PreconditionFailedError(AdapterError):
    """If-Match did not match, or a conditional interaction found several matches (412)."""

    status = 412
    issue_code = "conflict"


class UnprocessableResourceError(AdapterError):
    """The resource parsed but breaks the rules of FHIR or of a profile (422)."""

    status = 422
    issue_code = "invalid"


class UnauthorizedError(AdapterError):
    """No usable credentials (401); the response carries WWW-Authenticate."""

    status = 401
    issue_code = "login"


class ForbiddenError(AdapterError):
    """Authenticated, but the scopes or the role do not allow this (403)."""

    status = 403
    issue_code = "forbidden"
