"""POST /ingest/{mapping}: hospital data in its own format, mapped and stored (or a dry run)."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, g, request

from adapter.api.auth import fhir_base
from adapter.api.formats import render, response_format

bp = Blueprint("ingest", __name__)


@bp.post("/ingest/<mapping>")
def ingest(mapping: str) -> Response:
    dry_run = request.args.get("dry-run", "false").lower() in ("true", "1", "yes")
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
    return render(result, response_format(request))
