"""POST /ingest/{mapping}: hospital data in its own format, mapped and stored (or a dry run)."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, g, request

from adapter.api.auth import fhir_base
from adapter.api.formats import render, response_format
from adapter.errors import InvalidRequestError

bp = Blueprint("ingest", __name__)

_FLAGS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}


def _dry_run() -> bool:
    # Refused rather than read as false: a typo such as dry-run=on must not store the file it meant to try.
    values = request.args.getlist("dry-run")
    if not values:
        return False
    flags = {_FLAGS.get(value.strip().lower()) for value in values}
    if flags == {True}:
        return True
    if flags == {False}:
        return False
    given = ", ".join(repr(value[:20]) for value in values[:3])
    raise InvalidRequestError(f"dry-run must be true or false (got {given})", expression="dry-run")


@bp.post("/ingest/<mapping>")
def ingest(mapping: str) -> Response:
    # Before the file is mapped and stored: a 406 must not follow a write the client will send again.
    fmt = response_format(request)
    dry_run = _dry_run()
    g.interaction = "operation"
    g.entity = f"ingest/{mapping}"
    result = current_app.extensions["cart_adapter"].ingest.ingest(
        mapping,
        request.get_data(cache=False),
        request.content_type,
        fhir_base(),
        guard=g.guard,
        dry_run=dry_run,
    )
    return render(result, fmt)
