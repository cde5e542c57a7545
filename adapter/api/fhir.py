"""The FHIR REST blueprint at /fhir: translates HTTP to FhirService calls and back."""

from __future__ import annotations

import hashlib
from urllib.parse import urlencode

from flask import Blueprint, Response, current_app, g, request
from werkzeug.http import http_date, parse_date

from adapter.api.auth import fhir_base
from adapter.api.errors import require_utf8
from adapter.api.formats import parse_body, render, response_format
from adapter.errors import InvalidRequestError, Issue, MethodNotAllowedError, UnsupportedMediaTypeError
from adapter.fhirio.jsonio import dump_json, parse_json
from adapter.fhirio.outcome import operation_outcome
from adapter.fhirio.subsetting import read_subset
from adapter.search.dates import format_instant, from_us, to_us
from adapter.security.tenancy import AccessGuard
from adapter.services.audit_trail import AuditTrail
from adapter.services.capability import capabilities, unknown_operation
from adapter.services.fhir import FhirService
from adapter.services.fhirpath_patch import is_fhirpath_patch
from adapter.services.interactions import WriteOutcome
from adapter.services.patching import JSON_PATCH
from adapter.services.preconditions import Preconditions, not_modified, parse_entity_tags, refuse_if_match
from adapter.services.transactions import BundleProcessor, response_bundle
from adapter.services.validation import validate_operation
from adapter.store.resources import StoredResource

bp = Blueprint("fhir", __name__, url_prefix="/fhir")


@bp.before_request
def _refuse_unknown_operations() -> None:
    # /fhir/$foo and /fhir/Patient/$foo match the type and instance routes: they would otherwise be
    # answered as an unknown type or a read of a resource that cannot exist. A blueprint's
    # before_request runs after the app's, so the token is checked first.
    values = request.view_args
    if values and any(isinstance(v, str) and v.startswith("$") for v in values.values()):
        error = unknown_operation(request.path, request.method)
        if error is not None:
            raise error


@bp.before_request
def _negotiate_first() -> None:
    # The response format is chosen before anything runs: a write asked for with an Accept or _format
    # the server cannot answer in (406) must not be stored, or the client, told it failed, would send
    # it again. The choice is cached per Accept header, so reading it twice costs nothing.
    response_format(request)


def _service() -> FhirService:
    return current_app.extensions["cart_adapter"].fhir


def _audit_trail() -> AuditTrail:
    return current_app.extensions["cart_adapter"].audit_trail


def _bundles() -> BundleProcessor:
    return current_app.extensions["cart_adapter"].bundles


def _prefer() -> dict[str, str]:
    out = {}
    for part in request.headers.get("Prefer", "").split(";"):
        for item in part.split(","):
            key, _, value = item.strip().partition("=")
            if key:
                out[key.lower()] = value.strip().strip('"')
    return out


def _body() -> object:
    return parse_body(request, current_app.extensions["cart_adapter"].settings.max_json_depth)


def _guard() -> AccessGuard:
    return g.guard


def _preconditions() -> Preconditions:
    """The conditional-request headers every write honours."""
    return Preconditions(request.headers.get("If-Match"), request.headers.get("If-None-Match"))


def _audit(interaction: str, entity: str | None = None) -> None:
    g.interaction = interaction
    g.entity = entity


def _args() -> list[tuple[str, str]]:
    return list(request.args.items(multi=True))


def _version_headers(stored: StoredResource, base: str) -> dict[str, str]:
    return {
        "ETag": f'W/"{stored.version_id}"',
        "Last-Modified": http_date(from_us(stored.last_updated_us)),
        "Location": f"{base}/{stored.res_type}/{stored.res_id}/_history/{stored.version_id}",
    }


def _write_response(outcome: WriteOutcome) -> Response:
    headers = _version_headers(outcome.stored, fhir_base())
    fmt = response_format(request)
    wanted = _prefer().get("return", "representation")
    if wanted == "minimal":
        return render(None, fmt, outcome.status, headers)
    if wanted.lower() == "operationoutcome":
        # A POST that did not create found its If-None-Exist match and changed nothing.
        verb = "created" if outcome.created else "updated" if request.method != "POST" else "already exists"
        message = (
            f"{outcome.stored.res_type}/{outcome.stored.res_id} {verb} (version {outcome.stored.version_id})"
        )
        issues = [Issue("information", "informational", message), *outcome.warnings]
        return render(operation_outcome(issues), fmt, outcome.status, headers)
    return render(outcome.stored.content, fmt, outcome.status, headers)


def _read_response(stored: StoredResource) -> Response:
    """The resource as stored (or as the caller may see it), or the part `_summary`/`_elements` ask for."""
    subset = read_subset(stored.res_type, _args(), strict=_strict()) if request.args else None
    headers = _version_headers(stored, fhir_base())
    headers.pop("Location")
    refuse_if_match(stored, request.headers.get("If-Match"))
    since = parse_date(request.headers.get("If-Modified-Since"))
    # An HTTP date names a whole second: unmodified is last changed before that second ends.
    before_us = to_us(since) + 1_000_000 if since is not None else None
    if not_modified(stored, request.headers.get("If-None-Match"), before_us):
        return Response(status=304, headers=headers)
    content = stored.content if subset is None else subset.apply_text(stored.res_type, stored.content or "{}")
    return render(content, response_format(request), 200, headers)


def _strict() -> bool:
    return _prefer().get("handling", "lenient").lower() == "strict"


@bp.get("/metadata")
def metadata() -> Response:
    since = format_instant(_service().started_us)
    statement = capabilities(fhir_base(), since, request.args.getlist("mode"))
    # http.html capabilities: an ETag SHOULD come with it, and SHALL change when the statement does. Its
    # date is left out: each worker process started at its own moment, and all of them state the same.
    stated = {name: value for name, value in statement.items() if name != "date"}
    digest = hashlib.sha256(dump_json(stated).encode()).hexdigest()[:24]
    headers = {"ETag": f'W/"{digest}"'}
    if_none_match = request.headers.get("If-None-Match")
    if if_none_match is not None and parse_entity_tags(if_none_match).matches(digest):
        return Response(status=304, headers=headers)
    return render(statement, response_format(request), headers=headers)


@bp.post("")
@bp.post("/")
def bundle() -> Response:
    fmt = response_format(request)
    _audit("transaction")
    body = _body()
    if isinstance(body, dict) and body.get("type") == "batch":
        _audit("batch")
    kind, results = _bundles().process(body, fhir_base(), guard=_guard())
    wanted = _prefer().get("return", "representation").lower()
    text = response_bundle(
        kind,
        results,
        now=format_instant(_service().clock()),
        include_resources=wanted not in ("minimal", "operationoutcome"),
        include_outcomes=wanted == "operationoutcome",
    )
    return render(text, fmt)


@bp.post("/$validate")
def validate_any() -> Response:
    return _validate(None)


@bp.post("/<res_type>/$validate")
def validate_type(res_type: str) -> Response:
    return _validate(res_type)


def _validate(res_type: str | None) -> Response:
    """$validate: always 200 with an OperationOutcome, valid or not, as the specification says."""
    _audit("operation", f"{res_type or ''}$validate")
    issues = validate_operation(_body(), res_type, request.args.getlist("profile"), guard=_guard())
    return render(operation_outcome(issues), response_format(request))


@bp.get("/_history")
def system_history() -> Response:
    _audit("history-system")
    bundle_text = _service().history_bundle(fhir_base(), None, None, _args(), guard=_guard())
    return render(bundle_text, response_format(request))


@bp.route("/<res_type>", methods=["GET", "POST", "PUT", "DELETE", "PATCH"])
def type_level(res_type: str) -> Response:
    service = _service()
    if request.method in ("GET", "HEAD"):  # werkzeug drops the body of a HEAD response
        return _search(res_type, _args())
    if request.method == "POST":
        _audit("create", res_type)
        outcome = service.create(
            res_type,
            _body(),  # type: ignore[arg-type]
            if_none_exist=request.headers.get("If-None-Exist"),
            guard=_guard(),
        )
        _audit("create", f"{res_type}/{outcome.stored.res_id}")
        return _write_response(outcome)
    if request.method == "PUT":
        query = _conditional_query("update")
        _audit("update", res_type)
        outcome = service.conditional_update(
            res_type,
            query,
            _body(),  # type: ignore[arg-type]
            guard=_guard(),
            preconditions=_preconditions(),
        )
    elif request.method == "DELETE":
        query = _conditional_query("delete")
        _audit("delete", res_type)
        service.conditional_delete(
            res_type,
            query,
            guard=_guard(),
            preconditions=_preconditions(),
        )
        return Response(status=204)
    else:
        query = _conditional_query("patch")
        _audit("patch", res_type)
        outcome = service.conditional_patch(
            res_type,
            query,
            _patch_body(),
            guard=_guard(),
            preconditions=_preconditions(),
        )
    _audit(g.interaction, f"{res_type}/{outcome.stored.res_id}")
    return _write_response(outcome)


# What a type's URL and an instance's URL take (PUT, PATCH and DELETE on a type only with a query string).
_TYPE_METHODS = ("GET", "HEAD", "POST", "OPTIONS")
_INSTANCE_METHODS = ("GET", "HEAD", "PUT", "PATCH", "DELETE", "OPTIONS")


def _conditional_query(interaction: str) -> str:
    if not request.query_string:
        raise MethodNotAllowedError(
            f"{request.method} on a type needs search parameters (conditional {interaction})",
            allowed=_TYPE_METHODS,
        )
    return request.query_string.decode()


@bp.post("/<res_type>/_search")
def search_post(res_type: str) -> Response:
    return _search(res_type, _form_args())


@bp.get("/Patient/<patient_id>/$everything")
def patient_everything(patient_id: str) -> Response:
    _audit("operation", f"Patient/{patient_id}")
    g.audit_query = f"$everything?{request.query_string.decode(errors='replace')}"
    text = _service().everything(patient_id, _args(), strict=_strict(), guard=_guard(), base=fhir_base())
    return render(text, response_format(request))


@bp.get("/<compartment>/<compartment_id>/<res_type>")
def compartment_search(compartment: str, compartment_id: str, res_type: str) -> Response:
    return _search(res_type, _args(), (compartment, compartment_id))


@bp.post("/<compartment>/<compartment_id>/<res_type>/_search")
def compartment_search_post(compartment: str, compartment_id: str, res_type: str) -> Response:
    return _search(res_type, _form_args(), (compartment, compartment_id))


def _form_args() -> list[tuple[str, str]]:
    """The query's parameters, then the form body's (POST [type]/_search)."""
    if request.mimetype == "application/x-www-form-urlencoded":
        # werkzeug drops a form body it cannot decode, every field of it: the search would run without
        # its filters. Refused like a query string of such bytes.
        require_utf8(request.get_data(cache=True), "the form body")
    return _args() + list(request.form.items(multi=True))


def _search(
    res_type: str, args: list[tuple[str, str]], compartment: tuple[str, str] | None = None
) -> Response:
    # The audit record keeps the criteria, those of a POST's form body too: a search sent as a form must
    # not leave fewer traces than the same search in a URL.
    criteria = urlencode(args) if request.method == "POST" else request.query_string.decode(errors="replace")
    if compartment is None:
        _audit("search-type", res_type)
        if request.method == "POST":  # a GET's query is what the audit record takes by default
            g.audit_query = criteria
    else:
        # Recorded against the compartment: who searched a patient's record is what an audit asks. R4's
        # restful-interaction codes have no compartment search; its parent code, search, stands for it,
        # and the recorded query names the type searched.
        _audit("search", "/".join(compartment))
        g.audit_query = f"{res_type}?{criteria}"
    service = _service()
    if res_type == "AuditEvent":
        if compartment is not None:
            raise InvalidRequestError(
                "the audit trail is searched at [base]/AuditEvent (by entity, agent-name or date)",
                expression="AuditEvent",
            )
        return render(_audit_trail().search(args, fhir_base(), guard=_guard()), response_format(request))
    base = fhir_base()
    page = service.search(
        res_type, args, strict=_strict(), guard=_guard(), base=base, compartment=compartment
    )
    return render(service.search_bundle(page, base, guard=_guard()), response_format(request))


@bp.get("/<res_type>/_history")
def type_history(res_type: str) -> Response:
    _audit("history-type", res_type)
    bundle_text = _service().history_bundle(fhir_base(), res_type, None, _args(), guard=_guard())
    return render(bundle_text, response_format(request))


@bp.route("/<res_type>/<res_id>", methods=["GET", "PUT", "DELETE", "PATCH", "POST"])
def instance(res_type: str, res_id: str) -> Response:
    service = _service()
    entity = f"{res_type}/{res_id}"
    if request.method in ("GET", "HEAD"):
        _audit("read", entity)
        if res_type == "AuditEvent":
            return render(_audit_trail().read(res_id, guard=_guard()), response_format(request))
        return _read_response(service.read(res_type, res_id, guard=_guard()))
    if request.method == "PUT":
        _audit("update", entity)
        outcome = service.update(
            res_type,
            res_id,
            _body(),  # type: ignore[arg-type]
            guard=_guard(),
            preconditions=_preconditions(),
        )
        return _write_response(outcome)
    if request.method == "DELETE":
        _audit("delete", entity)
        service.delete(
            res_type,
            res_id,
            guard=_guard(),
            preconditions=_preconditions(),
        )
        return Response(status=204)
    if request.method == "POST":
        raise MethodNotAllowedError(
            "POST on an instance is not allowed; use PUT to update", allowed=_INSTANCE_METHODS
        )
    _audit("patch", entity)
    outcome = service.patch(
        res_type,
        res_id,
        _patch_body(),
        guard=_guard(),
        preconditions=_preconditions(),
    )
    return _write_response(outcome)


def _patch_body() -> object:
    """A JSON Patch document, or a FHIRPath Patch (a Parameters resource, JSON or XML)."""
    if (request.mimetype or "").lower() != JSON_PATCH:
        unsupported = UnsupportedMediaTypeError(
            f"Content-Type {request.content_type!r} is not supported for PATCH; send {JSON_PATCH} "
            "(JSON Patch) or a Parameters resource as application/fhir+json or +xml (FHIRPath Patch)"
        )
        try:
            document = _body()
        except UnsupportedMediaTypeError:
            raise unsupported from None
        if not is_fhirpath_patch(document):
            raise unsupported
        return document
    settings = current_app.extensions["cart_adapter"].settings
    return parse_json(request.get_data(cache=False), max_depth=settings.max_json_depth)


@bp.get("/<res_type>/<res_id>/_history")
def instance_history(res_type: str, res_id: str) -> Response:
    _audit("history-instance", f"{res_type}/{res_id}")
    bundle_text = _service().history_bundle(fhir_base(), res_type, res_id, _args(), guard=_guard())
    return render(bundle_text, response_format(request))


@bp.get("/<res_type>/<res_id>/_history/<version>")
def version_read(res_type: str, res_id: str, version: str) -> Response:
    _audit("vread", f"{res_type}/{res_id}")
    return _read_response(_service().vread(res_type, res_id, version, guard=_guard()))
