"""Every error leaves as an OperationOutcome with the right HTTP status; nothing leaks a traceback."""

from __future__ import annotations

import logging
import traceback
import uuid
from urllib.parse import unquote_to_bytes

from flask import Flask, Response, jsonify, request
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import HTTPException

from adapter.api.formats import JSON, render, response_format
from adapter.api.request_ids import request_id_for_logs
from adapter.errors import AdapterError, InvalidSyntaxError, Issue, MethodNotAllowedError
from adapter.fhirio.outcome import operation_outcome
from adapter.services.capability import unknown_operation

logger = logging.getLogger(__name__)

_HTTP_CODES = {
    400: "invalid",
    401: "login",
    403: "forbidden",
    404: "not-found",
    405: "not-supported",
    406: "not-supported",
    409: "conflict",
    410: "deleted",
    412: "conflict",
    413: "too-costly",
    415: "not-supported",
    422: "invalid",
    429: "throttled",
}


def _format_or_json() -> str:
    try:
        return response_format(request)
    except (AdapterError, UnicodeDecodeError):
        return JSON


def utf8_problem(data: bytes, what: str) -> str | None:
    """What is wrong with a query string or form body that is not UTF-8, raw or once percent-decoded; None
    when it is. werkzeug decodes these parts itself: raw bytes that are not UTF-8 make it fail or drop the
    part, escaped ones (%E9) it replaces with U+FFFD, and a search or a token request would go on with
    values the client did not send. http.html: servers SHOULD decode URLs assuming they are UTF-8."""
    for octets, how in ((data, ""), (unquote_to_bytes(data), " once percent-decoded")):
        try:
            octets.decode("utf-8")
        except UnicodeDecodeError as exc:
            return f"{what} is not valid UTF-8{how} (byte {exc.start}); send UTF-8, percent-encoded"
    return None


def require_utf8(data: bytes, what: str) -> None:
    """400 (InvalidSyntaxError) when `data` is not UTF-8; see utf8_problem."""
    problem = utf8_problem(data, what)
    if problem:
        raise InvalidSyntaxError(problem)


def _query_string_is_utf8() -> None:
    """before_request: werkzeug decodes the query string as UTF-8 without a fallback, so raw bytes that are
    not UTF-8 (sent unencoded; gunicorn passes them on) would raise from request.args anywhere, the error
    handler included, and leave the client a bare HTML 500."""
    require_utf8(request.query_string, "the query string")


def outcome_response(status: int, issues: list[Issue]) -> Response:
    if request.path == "/auth/token":
        # An OAuth client reads RFC 6749 §5.2 errors there, whatever refused the request (size, method).
        error = {500: "server_error", 503: "temporarily_unavailable"}.get(status, "invalid_request")
        response = jsonify(error=error, error_description="; ".join(i.diagnostics for i in issues))
        response.status_code = status
        return response
    return render(operation_outcome(issues), _format_or_json(), status)


def register_error_handlers(app: Flask) -> None:
    app.before_request(_query_string_is_utf8)

    @app.errorhandler(AdapterError)
    def _adapter_error(error: AdapterError) -> Response:
        response = outcome_response(error.status, error.issues)
        if isinstance(error, MethodNotAllowedError) and error.allowed:
            response.headers["Allow"] = ", ".join(error.allowed)
        return response

    @app.errorhandler(HTTPException)
    def _http_error(error: HTTPException) -> Response:
        status = error.code or 500
        message = error.description or error.name
        if status == 413:
            message = "the request body is larger than this server accepts"
        if status in (404, 405):
            # A POST to [type]/[id]/$op matches the GET-only compartment route: not a wrong method but
            # an operation that is not there (a wrong method where an operation is offered stays 405).
            operation = unknown_operation(request.path, request.method)
            if operation is not None:
                return _adapter_error(operation)
        if status == 404:
            message = f"no FHIR interaction is served at {request.path[:200]}"
        response = outcome_response(status, [Issue("error", _HTTP_CODES.get(status, "exception"), message)])
        if status == 405 and hasattr(error, "valid_methods") and error.valid_methods:
            response.headers["Allow"] = ", ".join(error.valid_methods)
        return response

    @app.errorhandler(OperationalError)
    def _database_unavailable(error: OperationalError) -> Response:
        # The database went away (a restart drops the pooled connections; SQLAlchemy renews them) or
        # stayed locked past the busy timeout: nothing was written, and the client may try again.
        # PostgreSQL also ends a transaction that deadlocked with another one (SQLSTATE 40P01) or could
        # not be serialised with it (40001): nothing was written either, and a retry is all it takes,
        # but "unavailable" would send the operator looking for a database that is up.
        if str(getattr(error.orig, "sqlstate", None) or "").startswith("40"):
            logger.warning("database conflict, rolled back: %s", type(error.orig).__name__)
            message = "the request conflicted with a concurrent one and was rolled back; retry the request"
        else:
            logger.warning("database unavailable: %s", type(error.orig).__name__)
            message = "the database is unavailable; retry the request"
        response = outcome_response(503, [Issue("error", "transient", message)])
        response.headers["Retry-After"] = "1"
        return response

    @app.errorhandler(Exception)
    def _unexpected(error: Exception) -> Response:
        incident = str(uuid.uuid4())
        # The exception type and stack only: messages may quote request content, which is patient data.
        logger.error(
            "unexpected error, incident %s (X-Request-Id %s): %s\n%s",
            incident,
            request_id_for_logs(),
            type(error).__name__,
            "".join(traceback.format_tb(error.__traceback__)),
        )
        return outcome_response(
            500, [Issue("error", "exception", f"internal error; quote incident {incident} to the operator")]
        )
