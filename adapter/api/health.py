"""Liveness and readiness for load balancers and the container healthcheck."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify
from sqlalchemy import text

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> Response:
    with current_app.extensions["cart_adapter"].engine.connect() as connection:
        connection.execute(text("SELECT 1"))
    return jsonify(status="ok")
