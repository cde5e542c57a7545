"""cart-adapter: a FHIR R4 interoperability adapter for CAR-T cell therapy pathways."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from flask import Flask, Response
from sqlalchemy import Engine

from adapter.config import Settings
from adapter.services.audit_trail import AuditTrail
from adapter.services.auth import AuthService
from adapter.services.fhir import FhirService
from adapter.services.ingest import IngestService
from adapter.services.transactions import BundleProcessor
from adapter.store.engine import make_engine
from adapter.store.migrate import upgrade
from adapter.store.unit_of_work import UnitOfWork

logger = logging.getLogger(__name__)

# Sent with every response unless a view chose its own value.
_SECURITY_HEADERS = (
    ("X-Content-Type-Options", "nosniff"),
    ("Cache-Control", "no-store"),
    ("X-Frame-Options", "DENY"),
    ("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'"),
    ("Referrer-Policy", "no-referrer"),
)


@dataclass
class Services:
    """What the views reach through `current_app.extensions["cart_adapter"]`."""

    settings: Settings
    engine: Engine
    fhir: FhirService
    bundles: BundleProcessor
    auth: AuthService
    audit_trail: AuditTrail
    ingest: IngestService

    def close(self) -> None:
        """Write the pending audit records and let go of the database (kept connections included)."""
        self.auth.audit.close()
        self.fhir.uow.close()
        self.engine.dispose()


def build_auth(settings: Settings, engine: Engine) -> AuthService:
    from adapter.security.clients import ClientRegistry, load_clients_file
    from adapter.security.tokens import ExternalTokenVerifier, TokenService, load_or_create_key
    from adapter.store import client_store

    from_file = load_clients_file(settings.clients_file) if settings.clients_file else {}

    def lookup(client_id: str):  # type: ignore[no-untyped-def]
        with engine.connect() as connection:
            return client_store.get(connection, client_id)

    key = load_or_create_key(settings.effective_signing_key_file)
    issuer = (settings.public_base_url.rsplit("/fhir", 1)[0] or "urn:cart-adapter") + "/auth"
    tokens = TokenService(key, issuer, settings.token_lifetime_seconds)
    external = None
    if settings.external_jwks_url:
        external = ExternalTokenVerifier(
            settings.external_jwks_url, settings.external_issuer, settings.external_audience
        )
    return AuthService(
        engine,
        ClientRegistry(from_file, lookup),
        tokens,
        external=external,
        coi_systems=settings.coi_systems,
        audit_sync=settings.audit_sync,
    )


def build_services(settings: Settings, engine: Engine | None = None) -> Services:
    from adapter.search.params import configure

    configure(settings.search_parameters, base=settings.public_base_url)
    engine = engine or make_engine(settings.effective_database_url)
    uow = UnitOfWork(engine)
    fhir = FhirService(uow, default_count=settings.default_page_size, max_count=settings.max_page_size)

    bundles = BundleProcessor(
        uow, clock=fhir.clock, default_count=settings.default_page_size, max_count=settings.max_page_size
    )
    auth = build_auth(settings, engine)
    trail = AuditTrail(
        engine,
        default_count=settings.default_page_size,
        max_count=settings.max_page_size,
        flush=auth.audit.flush,
    )
    ingest = IngestService(uow, bundles, fhir.clock)
    return Services(settings, engine, fhir, bundles, auth, trail, ingest)


def configure_validation(settings: Settings) -> None:
    """Load the profile packages (the CAR-T package unless configured otherwise) into the validator."""
    from adapter.profiles import package_dir
    from adapter.validation import gate

    sources = settings.profile_sources
    if not sources:
        for candidate in (package_dir(), Path("profiles/package")):
            if candidate.is_dir():
                sources = (candidate,)
                break
    gate.configure(sources, settings.required_profile_types)


def _warm_up() -> None:
    """Compile what every request needs now, so that the first request of each worker is not the slow one."""
    from adapter.search.params import registry
    from adapter.validation.gate import validator

    registry()
    validator().validate({"resourceType": "Patient"})


def create_app(settings: Settings | None = None, *, migrate: bool = True) -> Flask:
    """Build the Flask app. Settings come from the environment unless given (tests pass their own)."""
    settings = settings or Settings.from_env()
    app = Flask(__name__, instance_path=str(settings.instance_path.resolve()))
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    services = build_services(settings)
    configure_validation(settings)
    _warm_up()
    if migrate:
        upgrade(services.engine)
    app.extensions["cart_adapter"] = services

    from adapter.api import auth, fhir, health, ingest
    from adapter.api.errors import register_error_handlers

    auth.install(app)
    app.register_blueprint(fhir.bp)
    app.register_blueprint(health.bp)
    app.register_blueprint(ingest.bp)
    if settings.bench_endpoints:
        from adapter.api import bench

        app.register_blueprint(bench.bp)
        app.wsgi_app = bench.bare_wsgi(app.wsgi_app)  # type: ignore[method-assign]
    register_error_handlers(app)

    from adapter.api.request_ids import request_id

    @app.after_request
    def _common_headers(response: Response) -> Response:
        response.headers["X-Request-Id"] = request_id()
        present = {key.lower() for key in response.headers.keys()}
        response.headers.extend([(k, v) for k, v in _SECURITY_HEADERS if k.lower() not in present])
        if response.status_code in (204, 304) or (not response.is_streamed and not response.get_data()):
            # No body, no type: Flask would announce text/html for a 204 or a Prefer: return=minimal.
            response.headers.pop("Content-Type", None)
        return response

    return app
