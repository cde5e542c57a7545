"""Floor endpoints for bench/: the same server doing only parsing, or nothing. Off unless configured."""

from __future__ import annotations

from flask import Blueprint, Response, request

from adapter.fhirio.jsonio import parse_json

bp = Blueprint("bench", __name__, url_prefix="/bench")

_CONSTANT = b'{"resourceType":"OperationOutcome","issue":[{"severity":"information","code":"informational"}]}'


@bp.post("/parse")
def parse_only() -> Response:
    """Parse the posted Bundle with the fhir.resources models (entries included) and store nothing."""
    from fhir.resources.R4B.bundle import Bundle

    Bundle.model_validate(parse_json(request.get_data(cache=False)))
    return Response(_CONSTANT, content_type="application/fhir+json")


@bp.route("/constant", methods=["GET", "POST"])
def constant() -> Response:
    return Response(_CONSTANT, content_type="application/fhir+json")
