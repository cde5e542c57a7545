"""Floor endpoints for bench/: the same server doing only parsing, or nothing. Off unless configured.

`/bench/constant` goes through Flask and everything every request pays (token check, audit record,
headers); `/bench/wsgi` is answered below Flask, so the two together tell what gunicorn itself costs
and what the Flask request cycle adds.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from flask import Blueprint, Response, request

from adapter.errors import InvalidRequestError
from adapter.fhirio.jsonio import parse_json

bp = Blueprint("bench", __name__, url_prefix="/bench")

_CONSTANT = b'{"resourceType":"OperationOutcome","issue":[{"severity":"information","code":"informational"}]}'


@bp.post("/parse")
def parse_only() -> Response:
    """Parse the posted Bundle with the fhir.resources models (entries included) and store nothing."""
    from fhir.resources.R4B.bundle import Bundle
    from pydantic import ValidationError

    try:
        Bundle.model_validate(parse_json(request.get_data(cache=False)))
    except ValidationError as exc:
        raise InvalidRequestError(
            f"not a Bundle fhir.resources accepts ({exc.error_count()} errors)"
        ) from None
    return Response(_CONSTANT, content_type="application/fhir+json")


@bp.route("/constant", methods=["GET", "POST"])
def constant() -> Response:
    return Response(_CONSTANT, content_type="application/fhir+json")


WSGI_PATH = "/bench/wsgi"


def bare_wsgi(app: Callable) -> Callable:
    """WSGI middleware answering WSGI_PATH itself, before Flask sees the request."""

    def middleware(environ: dict, start_response: Callable) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == WSGI_PATH:
            start_response(
                "200 OK",
                [("Content-Type", "application/fhir+json"), ("Content-Length", str(len(_CONSTANT)))],
            )
            return [_CONSTANT]
        return app(environ, start_response)

    return middleware
