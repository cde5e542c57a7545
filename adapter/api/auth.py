"""SMART Backend Services endpoints (token, discovery, keys) and the bearer-token check of every call."""

from __future__ import annotations

from dataclasses import replace
from functools import lru_cache

from flask import Blueprint, Flask, Response, current_app, g, jsonify, request
from werkzeug.sansio.utils import get_current_url

from adapter.api.errors import utf8_problem
from adapter.api.request_ids import request_id
from adapter.errors import UnauthorizedError
from adapter.security.audit import AuditRecord
from adapter.services.auth import AuthService, OAuthError, TokenRequest, now_us

bp = Blueprint("auth", __name__)

SCOPES_SUPPORTED = ["system/*.cruds", "system/*.rs", "system/Task.rus", "system/*.read", "system/*.write"]


def _auth() -> AuthService:
    return current_app.extensions["cart_adapter"].auth


def root_url() -> str:
    configured = current_app.extensions["cart_adapter"].settings.public_base_url
    if configured:
        return configured.rsplit("/fhir", 1)[0]
    return _url_root(request.scheme, request.host, request.root_path)


@lru_cache(maxsize=256)
def _url_root(scheme: str, host: str, root_path: str) -> str:
    # Every request needs it (the token audience); werkzeug rebuilds it as an IRI each time.
    return get_current_url(scheme, host, root_path).rstrip("/")


def fhir_base() -> str:
    configured = current_app.extensions["cart_adapter"].settings.public_base_url
    return configured or root_url() + "/fhir"


def _source() -> str:
    return request.remote_addr or ""


@bp.post("/auth/token")
def token() -> Response:
    token_url = root_url() + "/auth/token"
    try:
        body = _auth().issue_token(
            TokenRequest(
                form=_single_valued_form(),
                authorization=request.headers.get("Authorization"),
                token_url=token_url,
                audience=fhir_base(),
                source=_source(),
            )
        )
    except OAuthError as exc:
        g.audit = AuditRecord(
            "login",
            exc.status,
            now_us(),
            client_id=exc.client_id,
            source_address=_source(),
            detail=exc.description,
        )
        response = jsonify(error=exc.error, error_description=exc.description)
        response.status_code = exc.status
        if exc.status == 401:
            response.headers["WWW-Authenticate"] = 'Basic realm="cart-adapter"'
    else:
        g.audit = AuditRecord(
            "login",
            200,
            now_us(),
            client_id=request.form.get("client_id") or _issuer(),
            source_address=_source(),
        )
        response = jsonify(body)
    response.headers["Pragma"] = "no-cache"
    return response


def _single_valued_form() -> dict[str, str]:
    """The form fields; RFC 6749 §3.2: a parameter MUST NOT be sent more than once."""
    if request.mimetype == "application/x-www-form-urlencoded":
        # werkzeug drops a form body it cannot decode, every field of it: the client would hear that
        # grant_type is missing. RFC 6749 Appendix B: the form is UTF-8.
        problem = utf8_problem(request.get_data(cache=True), "the form body")
        if problem:
            raise OAuthError("invalid_request", problem)
    form = request.form
    repeated = sorted(name for name, values in form.lists() if len(values) > 1)
    if repeated:
        raise OAuthError("invalid_request", f"parameter {repeated[0][:40]!r} is sent more than once")
    return form.to_dict()


def _issuer() -> str | None:
    import jwt

    assertion = request.form.get("client_assertion")
    if assertion:
        try:
            return jwt.decode(assertion, options={"verify_signature": False}).get("iss")
        except jwt.InvalidTokenError:
            return None
    auth = request.authorization
    return auth.username if auth else None


def smart_configuration() -> Response:
    root = root_url()
    return jsonify(
        issuer=_auth().tokens.issuer,
        jwks_uri=root + "/auth/jwks",
        token_endpoint=root + "/auth/token",
        token_endpoint_auth_methods_supported=["private_key_jwt", "client_secret_basic"],
        token_endpoint_auth_signing_alg_values_supported=["RS384", "ES384", "RS256", "ES256"],
        grant_types_supported=["client_credentials"],
        scopes_supported=SCOPES_SUPPORTED,
        capabilities=["client-confidential-asymmetric", "client-confidential-symmetric", "permission-v2"],
    )


bp.add_url_rule("/.well-known/smart-configuration", "smart_root", smart_configuration)
bp.add_url_rule("/fhir/.well-known/smart-configuration", "smart_fhir", smart_configuration)


@bp.get("/auth/jwks")
def jwks() -> Response:
    return jsonify(keys=[_auth().tokens.public_jwk])


# Paths anyone may read: discovery documents carry no data.
_ANONYMOUS = {
    "fhir.metadata",
    "auth.token",
    "auth.smart_root",
    "auth.smart_fhir",
    "auth.jwks",
    "health.healthz",
}


def require_authentication() -> None:
    """before_request: every endpoint but discovery needs a valid bearer token."""
    if request.endpoint in _ANONYMOUS or request.endpoint is None:
        return
    auth = _auth()
    try:
        principal = auth.authenticate(request.headers.get("Authorization"), fhir_base(), _source())
    except UnauthorizedError as exc:
        g.audit = AuditRecord(
            "login",
            401,
            now_us(),
            source_address=_source(),
            detail=exc.message,
            request_id=request_id(),
        )
        raise
    g.principal = principal
    g.guard = auth.guard(principal)


def write_audit(response: Response) -> Response:
    """after_request: the audit record of this request (written in its own transaction)."""
    record: AuditRecord | None = g.pop("audit", None)
    principal = g.get("principal")
    if record is None and principal is not None:
        query = g.get("audit_query") or (
            request.query_string.decode(errors="replace") if request.method in ("GET", "HEAD") else ""
        )
        # Built whole: every authenticated request comes here, and dataclasses.replace is slow.
        record = AuditRecord(
            g.get("interaction") or request.method.lower(),
            response.status_code,
            now_us(),
            client_id=principal.client.client_id,
            role=principal.role,
            source_address=_source(),
            entity=g.get("entity"),
            query=query or None,
            request_id=request_id(),
        )
    elif record is not None:
        changes: dict[str, str | None] = {}
        if principal is not None and record.client_id is None:
            changes.update(client_id=principal.client.client_id, role=principal.role)
        if record.source_address is None:
            changes["source_address"] = _source()
        if record.request_id is None:
            changes["request_id"] = request_id()
        if changes:
            record = replace(record, **changes)  # type: ignore[arg-type]
    if record is not None:
        _auth().record(record)
    if response.status_code == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="cart-adapter", error="invalid_token"'
    return response


def install(app: Flask) -> None:
    app.register_blueprint(bp)
    app.before_request(require_authentication)
    app.after_request(write_audit)
