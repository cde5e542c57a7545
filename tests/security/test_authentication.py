"""SMART Backend Services: the token endpoint and bearer tokens, refused in every wrong way."""

from __future__ import annotations

import json
import time
import uuid

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import RSAAlgorithm

from adapter.security.tokens import TokenService
from tests.conftest import bearer_for
from tests.security.conftest import World

TOKEN_URL = "http://localhost/auth/token"
AUDIENCE = "http://localhost/fhir"


def _outcome(response) -> dict:  # type: ignore[no-untyped-def]
    body = response.get_json()
    assert body["resourceType"] == "OperationOutcome"
    return body


def _rsa_client(app, client_id: str, scopes: str = "system/*.rs"):  # type: ignore[no-untyped-def]
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(RSAAlgorithm.to_jwk(key.public_key()))
    jwk.update(kid=f"{client_id}-1", alg="RS384", use="sig")
    app.extensions["cart_adapter"].auth.register(client_id, "admin", scopes, jwks={"keys": [jwk]})
    return key


def _assertion(
    key,
    client_id: str,
    *,
    aud: str = TOKEN_URL,
    exp_in: int = 240,
    jti: str | None = None,  # type: ignore[no-untyped-def]
    kid: str | None = None,
) -> str:
    now = int(time.time())
    claims = {
        "iss": client_id,
        "sub": client_id,
        "aud": aud,
        "exp": now + exp_in,
        "iat": now,
        "jti": jti or str(uuid.uuid4()),
    }
    return jwt.encode(claims, key, algorithm="RS384", headers={"kid": kid or f"{client_id}-1"})


def _token_request(client, assertion: str, scope: str = "system/*.rs"):  # type: ignore[no-untyped-def]
    return client.post(
        TOKEN_URL,
        data={
            "grant_type": "client_credentials",
            "scope": scope,
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": assertion,
        },
    )


def test_no_token_is_401_with_operation_outcome(app) -> None:  # type: ignore[no-untyped-def]
    response = app.test_client().get("/fhir/Patient")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert _outcome(response)["issue"][0]["code"] == "login"


def test_discovery_and_capability_statement_need_no_token(app) -> None:  # type: ignore[no-untyped-def]
    client = app.test_client()
    config = client.get("/fhir/.well-known/smart-configuration").get_json()
    assert config["token_endpoint"] == TOKEN_URL
    assert "private_key_jwt" in config["token_endpoint_auth_methods_supported"]
    assert {"RS384", "ES384"} <= set(config["token_endpoint_auth_signing_alg_values_supported"])
    assert client.get("/fhir/metadata").status_code == 200
    assert client.get("/auth/jwks").get_json()["keys"][0]["kty"] == "EC"


@pytest.mark.parametrize("problem", ["expired", "other-key", "wrong-audience", "garbage", "basic-scheme"])
def test_bad_tokens_are_401(app, problem: str) -> None:  # type: ignore[no-untyped-def]
    auth = app.extensions["cart_adapter"].auth
    auth.register("reader", "admin", "system/*.rs")
    if problem == "expired":
        token, _ = TokenService(auth.tokens.key, auth.tokens.issuer, lifetime_seconds=-60).issue(
            "reader", "system/*.rs", AUDIENCE
        )
        header = f"Bearer {token}"
    elif problem == "other-key":
        stranger = TokenService(ec.generate_private_key(ec.SECP384R1()), auth.tokens.issuer)
        header = f"Bearer {stranger.issue('reader', 'system/*.rs', AUDIENCE)[0]}"
    elif problem == "wrong-audience":
        header = (
            f"Bearer {auth.tokens.issue('reader', 'system/*.rs', 'https://elsewhere.example.org/fhir')[0]}"
        )
    elif problem == "garbage":
        header = "Bearer not.a.token"
    else:
        header = "Basic cmVhZGVyOnNlY3JldA=="
    response = app.test_client().get("/fhir/Patient", headers={"Authorization": header})
    assert response.status_code == 401
    assert _outcome(response)["issue"][0]["code"] == "login"


def test_scope_without_the_permission_is_403(app) -> None:  # type: ignore[no-untyped-def]
    client = app.test_client()
    header = bearer_for(app, "patient-reader", scopes="system/Patient.rs")
    assert client.get("/fhir/Patient", headers={"Authorization": header}).status_code == 200
    for method, url in (("GET", "/fhir/Task"), ("POST", "/fhir/Patient"), ("GET", "/fhir/Observation/x")):
        response = client.open(
            url,
            method=method,
            data=b'{"resourceType":"Patient"}',
            headers={"Authorization": header, "Content-Type": "application/fhir+json"},
        )
        assert response.status_code == 403, (method, url)
        assert _outcome(response)["issue"][0]["code"] == "forbidden"


def test_token_scopes_never_exceed_the_registration(app) -> None:  # type: ignore[no-untyped-def]
    auth = app.extensions["cart_adapter"].auth
    auth.register("narrow", "admin", "system/Task.rs")
    # A token claiming more than the registration (e.g. minted before a change) is cut down.
    token, _ = auth.tokens.issue("narrow", "system/*.cruds", AUDIENCE)
    response = app.test_client().post(
        "/fhir/Task",
        data=b'{"resourceType":"Task"}',
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/fhir+json"},
    )
    assert response.status_code == 403


def test_engineer_role_reaches_no_stored_data(app) -> None:  # type: ignore[no-untyped-def]
    header = bearer_for(app, "mapper", "engineer", "system/*.rs")
    assert app.test_client().get("/fhir/Patient", headers={"Authorization": header}).status_code == 403


def test_private_key_jwt_flow_and_replay(app) -> None:  # type: ignore[no-untyped-def]
    client = app.test_client()
    key = _rsa_client(app, "lab-system")
    assertion = _assertion(key, "lab-system")
    response = _token_request(client, assertion)
    assert response.status_code == 200, response.data
    body = response.get_json()
    assert body["token_type"] == "bearer" and body["scope"] == "system/*.rs" and body["expires_in"] <= 300
    assert response.headers["Cache-Control"] == "no-store"
    api = client.get("/fhir/Patient", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert api.status_code == 200
    replay = _token_request(client, assertion)
    assert replay.status_code == 401
    assert replay.get_json()["error"] == "invalid_client"


@pytest.mark.parametrize("problem", ["other-key", "wrong-aud", "too-long", "expired", "unknown-client"])
def test_bad_client_assertions_are_refused(app, problem: str) -> None:  # type: ignore[no-untyped-def]
    client = app.test_client()
    key = _rsa_client(app, "lab-system")
    if problem == "other-key":
        assertion = _assertion(rsa.generate_private_key(public_exponent=65537, key_size=2048), "lab-system")
    elif problem == "wrong-aud":
        assertion = _assertion(key, "lab-system", aud="https://elsewhere.example.org/token")
    elif problem == "too-long":
        assertion = _assertion(key, "lab-system", exp_in=3600)
    elif problem == "expired":
        assertion = _assertion(key, "lab-system", exp_in=-60)
    else:
        assertion = _assertion(key, "nobody")
    response = _token_request(client, assertion)
    assert response.status_code == 401
    assert response.get_json()["error"] == "invalid_client"


def test_client_secret_basic(app) -> None:  # type: ignore[no-untyped-def]
    client = app.test_client()
    _, secret = app.extensions["cart_adapter"].auth.register("simple", "admin", "system/*.rs")
    good = client.post(TOKEN_URL, data={"grant_type": "client_credentials"}, auth=("simple", secret))
    assert good.status_code == 200
    assert good.get_json()["scope"] == "system/*.rs"
    bad = client.post(TOKEN_URL, data={"grant_type": "client_credentials"}, auth=("simple", secret + "x"))
    assert bad.status_code == 401 and bad.get_json()["error"] == "invalid_client"
    no_auth = client.post(TOKEN_URL, data={"grant_type": "client_credentials"})
    assert no_auth.status_code == 401
    wrong_grant = client.post(TOKEN_URL, data={"grant_type": "password"}, auth=("simple", secret))
    assert wrong_grant.get_json()["error"] == "unsupported_grant_type"
    too_much = client.post(
        TOKEN_URL,
        data={"grant_type": "client_credentials", "scope": "system/Task.c"},
        auth=("simple", secret),
    )
    assert too_much.get_json()["error"] == "invalid_scope"


def test_a_token_request_whose_form_is_not_utf8_is_invalid_request_naming_the_encoding(app) -> None:  # type: ignore[no-untyped-def]
    """werkzeug drops a form body it cannot decode, so the client heard that grant_type was missing;
    RFC 6749 Appendix B: the form is UTF-8, and §5.2 invalid_request is for a malformed request."""
    client = app.test_client()
    _, secret = app.extensions["cart_adapter"].auth.register("latin", "admin", "system/*.rs")
    response = client.post(
        TOKEN_URL,
        data=b"grant_type=client_credentials&scope=syst\xe8me",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        auth=("latin", secret),
    )
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_request"
    assert "UTF-8" in response.get_json()["error_description"]
    assert "grant_type" not in response.get_json()["error_description"]
    # Percent-escaped, werkzeug would decode it to U+FFFD and go on with a scope nobody asked for.
    escaped = client.post(
        TOKEN_URL,
        data=b"grant_type=client_credentials&scope=syst%E8me",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        auth=("latin", secret),
    )
    assert escaped.status_code == 400 and escaped.get_json()["error"] == "invalid_request"


def test_disabled_client_loses_access(app) -> None:  # type: ignore[no-untyped-def]
    from adapter.store import client_store

    services = app.extensions["cart_adapter"]
    header = bearer_for(app, "leaving", "admin", "system/*.rs")
    client = app.test_client()
    assert client.get("/fhir/Patient", headers={"Authorization": header}).status_code == 200
    with services.engine.begin() as connection:
        client_store.set_disabled(connection, "leaving", True)
    services.auth.registry.forget("leaving")
    assert client.get("/fhir/Patient", headers={"Authorization": header}).status_code == 401


def test_audit_trail_is_for_admins_only(app) -> None:  # type: ignore[no-untyped-def]
    client = app.test_client()
    hospital = bearer_for(app, "hcl", "hospital", organization="690781810")
    assert client.get("/fhir/AuditEvent", headers={"Authorization": hospital}).status_code == 403
    admin = bearer_for(app, "auditor", "admin", "system/*.rs")
    assert client.get("/fhir/AuditEvent", headers={"Authorization": admin}).status_code == 200
    response = client.post(
        "/fhir/AuditEvent",
        data=b'{"resourceType":"AuditEvent"}',
        headers={
            "Authorization": bearer_for(app, "root", "admin", "system/*.cruds"),
            "Content-Type": "application/fhir+json",
        },
    )
    assert response.status_code == 403


def test_an_unknown_operation_asks_for_a_token_first(world: World) -> None:
    response = world.admin.client.get("/fhir/Patient/$foo")
    assert response.status_code == 401
    assert world.admin("GET", "/fhir/Patient/$foo").status_code == 404
