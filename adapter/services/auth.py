"""Authentication use cases: the SMART token endpoint, bearer-token checks, client registration, audit."""

from __future__ import annotations

import base64
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import Engine

from adapter.errors import UnauthorizedError
from adapter.security import assertions
from adapter.security.assertions import AuthenticationError
from adapter.security.audit import AuditRecord
from adapter.security.audit_writer import AuditWriter
from adapter.security.clients import Client, ClientRegistry, validate_client
from adapter.security.scopes import ScopeSet
from adapter.security.secrets import hash_secret, new_secret
from adapter.security.tenancy import AccessGuard, Principal
from adapter.security.tokens import ExternalTokenVerifier, TokenError, TokenService
from adapter.store import audit_store, client_store
from adapter.store.engine import write_transaction

logger = logging.getLogger(__name__)


class OAuthError(Exception):
    """An RFC 6749 error answer of the token endpoint."""

    def __init__(self, error: str, description: str, status: int = 400, client_id: str | None = None):
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status
        self.client_id = client_id


@dataclass(frozen=True)
class TokenRequest:
    form: Mapping[str, str]
    authorization: str | None
    token_url: str
    audience: str
    source: str | None = None


class AuthService:
    """Issues access tokens to registered clients and turns bearer tokens into principals."""

    def __init__(
        self,
        engine: Engine,
        registry: ClientRegistry,
        tokens: TokenService,
        *,
        external: ExternalTokenVerifier | None = None,
        coi_systems: tuple[str, ...] = (),
        audit_sync: bool = False,
    ):
        self.engine = engine
        self.audit = AuditWriter(self._write_audit, sync=audit_sync)
        self.registry = registry
        self.tokens = tokens
        self.external = external
        self.coi_systems = coi_systems

    # -- token endpoint ------------------------------------------------------------------------------
    def issue_token(self, request: TokenRequest) -> dict:
        """Client credentials grant with private_key_jwt or client_secret_basic (RFC 6749, SMART)."""
        form = request.form
        if not form.get("grant_type"):
            raise OAuthError("invalid_request", "grant_type is required (client_credentials)")
        if form.get("grant_type") != "client_credentials":
            raise OAuthError("unsupported_grant_type", "grant_type must be client_credentials")
        client = self._authenticate_client(request)
        requested = form.get("scope") or client.scopes.text
        granted = client.scopes.grant(requested)
        if not granted.scopes:
            raise OAuthError(
                "invalid_scope",
                "none of the requested scopes is allowed for this client",
                client_id=client.client_id,
            )
        token, lifetime = self.tokens.issue(client.client_id, granted.text, request.audience)
        return {"access_token": token, "token_type": "bearer", "expires_in": lifetime, "scope": granted.text}

    def _authenticate_client(self, request: TokenRequest) -> Client:
        form = request.form
        try:
            if form.get("client_assertion_type") or form.get("client_assertion"):
                if form.get("client_assertion_type") != assertions.ASSERTION_TYPE:
                    raise AuthenticationError("client_assertion_type must be " + assertions.ASSERTION_TYPE)
                assertion = form.get("client_assertion") or ""
                client_id = assertions.assertion_client_id(assertion)
                client = self._known(client_id)
                with self.engine.begin() as connection:
                    assertions.verify_assertion(
                        assertion,
                        client,
                        request.token_url,
                        lambda cid, jti, exp: client_store.remember_assertion(connection, cid, jti, exp),
                    )
                return client
            client_id, secret = _basic_credentials(request.authorization, form)
            client = self._known(client_id)
            assertions.verify_client_secret(client, secret)
            return client
        except AuthenticationError as exc:
            raise OAuthError("invalid_client", str(exc), 401, exc.client_id) from None

    def _known(self, client_id: str) -> Client:
        client = self.registry.get(client_id)
        if client is None:
            raise AuthenticationError("unknown or disabled client", client_id)
        return client

    # -- bearer tokens -------------------------------------------------------------------------------
    def authenticate(self, authorization: str | None, audience: str, source: str | None = None) -> Principal:
        """The principal of a request's bearer token, or 401."""
        if not authorization:
            raise UnauthorizedError("authentication required: send Authorization: Bearer <access token>")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise UnauthorizedError("the Authorization header must be 'Bearer <access token>'")
        token = token.strip()
        try:
            claims = self.tokens.verify(token, audience)
        except TokenError as own_error:
            if self.external is None:
                raise UnauthorizedError(str(own_error)) from None
            try:
                claims = self.external.verify(token)
            except TokenError as exc:
                raise UnauthorizedError(str(exc)) from None
        client = self.registry.get(claims.client_id)
        if client is None:
            raise UnauthorizedError("the token's client is not registered or is disabled")
        # Scopes can only shrink: a token never grants more than the client's registration now allows.
        scope = client.scopes.grant(claims.scope).text
        return Principal(client, scope, source or "")

    def guard(self, principal: Principal | None) -> AccessGuard:
        return AccessGuard(principal, self.coi_systems)

    # -- clients -------------------------------------------------------------------------------------
    def register(
        self,
        client_id: str,
        role: str,
        scopes: str,
        *,
        organization: str | None = None,
        jwks: dict | None = None,
        patient_fields: tuple[str, ...] = (),
        label: str = "",
    ) -> tuple[Client, str | None]:
        """Register a client in the database; returns it and its secret (shown once) when it has no JWKS."""
        secret = None if jwks else new_secret()
        client = validate_client(
            Client(
                client_id=client_id,
                role=role,
                scopes=ScopeSet.parse(scopes),
                organization=organization,
                secret_hash=hash_secret(secret) if secret else None,
                jwks=jwks,
                patient_fields=patient_fields,
                label=label,
            )
        )
        if not client.scopes.scopes:
            raise ValueError("no valid system scope given (e.g. 'system/Task.rs system/*.cruds')")
        if self.registry.get(client_id) is not None:
            raise ValueError(f"client {client_id} is already registered")
        with self.engine.begin() as connection:
            client_store.add(connection, client)
        self.registry.forget(client_id)
        return client, secret

    # -- audit ---------------------------------------------------------------------------------------
    def record(self, record: AuditRecord) -> None:
        """Queue an audit record; it is written in its own transaction, whatever happened to the request's."""
        self.audit.record(record)

    def _write_audit(self, records: list[AuditRecord]) -> None:
        with write_transaction(self.engine) as connection:
            audit_store.append(connection, records)


def _basic_credentials(authorization: str | None, form: Mapping[str, str]) -> tuple[str, str]:
    if authorization and authorization.lower().startswith("basic "):
        try:
            decoded = base64.b64decode(authorization[6:].strip(), validate=True).decode("utf-8")
        except (ValueError, UnicodeDecodeError):
            raise AuthenticationError("malformed Basic credentials") from None
        client_id, sep, secret = decoded.partition(":")
        if not sep:
            raise AuthenticationError("malformed Basic credentials")
        from urllib.parse import unquote

        return unquote(client_id), unquote(secret)
    raise AuthenticationError("client authentication required (private_key_jwt or client_secret_basic)")


def now_us() -> int:
    return time.time_ns() // 1000
