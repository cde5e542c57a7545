"""The server's signing key and its short-lived access tokens (JWT, ES384), issued and checked with pyjwt."""

from __future__ import annotations

import hashlib
import json
import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

ALGORITHM = "ES384"
_CACHE_SIZE = 10_000


class TokenError(Exception):
    """An access token that cannot be accepted; the message says why, without echoing the token."""


@dataclass(frozen=True)
class AccessClaims:
    client_id: str
    scope: str
    expires: int
    token_id: str


def load_or_create_key(path: Path) -> ec.EllipticCurvePrivateKey:
    """The PEM key at `path`; created (mode 0600, atomically) on first use."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        key = ec.generate_private_key(ec.SECP384R1())
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        try:
            # O_EXCL: when several workers start at once, one writes the key and the others read it.
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "wb") as handle:
                handle.write(pem)
            return key
    for _ in range(50):
        data = path.read_bytes()
        if data:
            break
        time.sleep(0.05)
    key = serialization.load_pem_private_key(data, password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError(f"{path} must hold an EC private key (P-384)")
    return key


def thumbprint(jwk: dict) -> str:
    """RFC 7638 JWK thumbprint, used as the key id."""
    members = {"EC": ("crv", "kty", "x", "y"), "RSA": ("e", "kty", "n")}[jwk["kty"]]
    canonical = json.dumps({k: jwk[k] for k in members}, separators=(",", ":"), sort_keys=True)
    return jwt.utils.base64url_encode(hashlib.sha256(canonical.encode()).digest()).decode()


class TokenService:
    """Issues and verifies this server's access tokens."""

    def __init__(self, key: ec.EllipticCurvePrivateKey, issuer: str, lifetime_seconds: int = 300):
        self.key = key
        self.public_key = key.public_key()
        self.issuer = issuer
        self.lifetime = lifetime_seconds
        jwk = json.loads(ECAlgorithm.to_jwk(self.public_key))
        self.kid = thumbprint(jwk)
        self.public_jwk = dict(jwk, kid=self.kid, use="sig", alg=ALGORITHM)
        self._verified: dict[tuple[str, str], AccessClaims] = {}

    def issue(self, client_id: str, scope: str, audience: str) -> tuple[str, int]:
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "sub": client_id,
            "client_id": client_id,
            "aud": audience,
            "iat": now,
            "exp": now + self.lifetime,
            "jti": str(uuid.uuid4()),
            "scope": scope,
        }
        token = jwt.encode(claims, self.key, algorithm=ALGORITHM, headers={"kid": self.kid})
        return token, self.lifetime

    def verify(self, token: str, audience: str) -> AccessClaims:
        # Signature checks cost about a millisecond; a poller sends the same token hundreds of times, so
        # tokens already verified are remembered until they expire (the client is still looked up on
        # every request, so disabling it takes effect at once).
        cached = self._verified.get((token, audience))
        if cached is not None and cached.expires > time.time():
            return cached
        claims = self._verify(token, audience)
        if len(self._verified) >= _CACHE_SIZE:
            self._verified.clear()
        self._verified[(token, audience)] = claims
        return claims

    def _verify(self, token: str, audience: str) -> AccessClaims:
        try:
            claims = jwt.decode(
                token,
                self.public_key,
                algorithms=[ALGORITHM],
                audience=audience,
                issuer=self.issuer,
                options={"require": ["exp", "iat", "sub", "aud", "iss"]},
                leeway=5,
            )
        except jwt.ExpiredSignatureError:
            raise TokenError("the access token has expired") from None
        except jwt.InvalidAudienceError:
            raise TokenError("the access token is not for this server (audience)") from None
        except jwt.InvalidIssuerError:
            raise TokenError("the access token was not issued by this server") from None
        except jwt.InvalidTokenError:
            raise TokenError("the access token is not valid (signature or format)") from None
        return AccessClaims(
            str(claims["sub"]), str(claims.get("scope", "")), int(claims["exp"]), str(claims.get("jti", ""))
        )


class ExternalTokenVerifier:
    """Accepts access tokens from an outside identity provider, checked against its published JWKS."""

    def __init__(self, jwks_url: str, issuer: str, audience: str, timeout_seconds: float = 5.0):
        self.client = jwt.PyJWKClient(jwks_url, cache_keys=True, lifespan=300, timeout=timeout_seconds)
        self.issuer = issuer
        self.audience = audience

    def verify(self, token: str) -> AccessClaims:
        try:
            key = self.client.get_signing_key_from_jwt(token)
            claims = jwt.decode(
                token,
                key.key,
                algorithms=["RS256", "RS384", "ES256", "ES384", "PS256"],
                audience=self.audience,
                issuer=self.issuer,
                options={"require": ["exp", "iss", "aud"]},
                leeway=5,
            )
        except jwt.PyJWKClientError:
            raise TokenError("the identity provider's keys could not be fetched or do not match") from None
        except jwt.ExpiredSignatureError:
            raise TokenError("the access token has expired") from None
        except jwt.InvalidTokenError:
            raise TokenError("the access token is not valid for this server") from None
        client_id = claims.get("client_id") or claims.get("azp") or claims.get("sub")
        if not client_id:
            raise TokenError("the access token names no client")
        return AccessClaims(
            str(client_id), str(claims.get("scope", "")), int(claims["exp"]), str(claims.get("jti", ""))
        )
