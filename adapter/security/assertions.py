"""SMART Backend Services client authentication: signed JWT assertions (private_key_jwt) and secrets."""

from __future__ import annotations

import time
from collections.abc import Callable

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from adapter.security.clients import Client, storable_text
from adapter.security.secrets import verify_secret

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
# SMART requires servers to support RS384 and ES384; the others are common and still safe.
ALGORITHMS = ["RS384", "ES384", "RS256", "ES256", "RS512", "ES512", "PS384"]
MAX_ASSERTION_LIFETIME = 300
_CURVES = {"ES256": "secp256r1", "ES384": "secp384r1", "ES512": "secp521r1"}


class AuthenticationError(Exception):
    """A client that cannot be authenticated; `client_id` is kept for the audit trail when known."""

    def __init__(self, message: str, client_id: str | None = None):
        super().__init__(message)
        self.client_id = client_id


def assertion_client_id(assertion: str) -> str:
    try:
        claims = jwt.decode(assertion, options={"verify_signature": False})
    except jwt.InvalidTokenError:
        raise AuthenticationError("client_assertion is not a JWT") from None
    issuer = claims.get("iss")
    if not isinstance(issuer, str) or claims.get("sub") != issuer:
        raise AuthenticationError("client_assertion must have iss and sub both equal to the client_id")
    return issuer


def verify_assertion(
    assertion: str, client: Client, token_url: str, remember_jti: Callable[[str, str, int], bool]
) -> None:
    """Check signature against the client's JWKS, audience, lifetime and that the jti was never seen.

    `remember_jti(client_id, jti, expires)` stores the jti and returns False when it was already used.
    """
    if not client.jwks:
        raise AuthenticationError("this client is not registered for private_key_jwt", client.client_id)
    try:
        header = jwt.get_unverified_header(assertion)
        keys = jwt.PyJWKSet.from_dict(client.jwks).keys
    except (jwt.InvalidTokenError, jwt.PyJWKSetError) as exc:
        raise AuthenticationError(
            f"client_assertion or registered keys unusable: {exc}", client.client_id
        ) from None
    kid = header.get("kid")
    candidates = [k for k in keys if kid is None or k.key_id == kid]
    if not candidates:
        raise AuthenticationError("no registered key matches the assertion's kid", client.client_id)
    alg = header.get("alg")
    if alg not in ALGORITHMS:
        raise AuthenticationError(
            f"client_assertion alg must be one of {', '.join(ALGORITHMS)}", client.client_id
        )
    candidates = [k for k in candidates if _fits(k.key, alg)]
    if not candidates:
        raise AuthenticationError(f"no registered key is usable with alg {alg}", client.client_id)
    claims = None
    for key in candidates:
        try:
            claims = jwt.decode(
                assertion,
                key.key,
                algorithms=ALGORITHMS,
                audience=token_url,
                issuer=client.client_id,
                options={"require": ["exp", "iss", "sub", "aud", "jti"]},
                leeway=5,
            )
            break
        except jwt.InvalidSignatureError:
            continue
        except jwt.ExpiredSignatureError:
            raise AuthenticationError("client_assertion has expired", client.client_id) from None
        except jwt.InvalidAudienceError:
            raise AuthenticationError(
                "client_assertion aud must be the token endpoint URL", client.client_id
            ) from None
        except jwt.InvalidTokenError as exc:
            raise AuthenticationError(f"client_assertion rejected: {exc}", client.client_id) from None
    if claims is None:
        raise AuthenticationError(
            "client_assertion signature does not match a registered key", client.client_id
        )
    if int(claims["exp"]) > int(time.time()) + MAX_ASSERTION_LIFETIME + 5:
        raise AuthenticationError("client_assertion must expire within five minutes", client.client_id)
    jti = str(claims["jti"])
    if not storable_text(jti):
        raise AuthenticationError("client_assertion jti must be UTF-8 text without NUL", client.client_id)
    if not remember_jti(client.client_id, jti, int(claims["exp"])):
        raise AuthenticationError("client_assertion jti was already used (replay)", client.client_id)


def _fits(key: object, alg: str) -> bool:
    """Whether a public key can check an `alg` signature; PyJWT raises TypeError or InvalidKeyError
    (not InvalidTokenError) when the header names an algorithm of another key type or curve."""
    if alg.startswith(("RS", "PS")):
        return isinstance(key, rsa.RSAPublicKey | rsa.RSAPrivateKey)
    return isinstance(
        key, ec.EllipticCurvePublicKey | ec.EllipticCurvePrivateKey
    ) and key.curve.name == _CURVES.get(alg)


def verify_client_secret(client: Client, secret: str) -> None:
    if not client.secret_hash or not verify_secret(secret, client.secret_hash):
        raise AuthenticationError("invalid client credentials", client.client_id)
