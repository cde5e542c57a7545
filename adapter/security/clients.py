"""Registered clients: who they are (role, organisation), what they may ask for, how they authenticate."""

from __future__ import annotations

import json
import re
import time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from adapter.security.scopes import ScopeSet

ROLES = ("hospital", "manufacturer", "engineer", "admin")
# The widths of the columns a client's texts go to (store/schema.py uses these): its id, its label and
# organisation, and the access label its organisation becomes on everything it writes.
CLIENT_ID_CHARS = 100
LABEL_CHARS = 255
# A manufacturer's organisation is the owner reference of its Tasks, which validation holds to
# Organization/[FHIR id].
_ORGANIZATION_REFERENCE = re.compile(r"Organization/[A-Za-z0-9\-.]{1,64}")


class ClientConfigError(ValueError):
    """The clients file or a registration is not valid."""


@dataclass(frozen=True)
class Client:
    """A registered system client.

    `organization` is the FINESS of a hospital, or the `Organization/<id>` reference a manufacturer's
    Tasks are owned by; admin and engineer clients have none.
    """

    client_id: str
    role: str
    scopes: ScopeSet
    organization: str | None = None
    secret_hash: str | None = None
    jwks: dict | None = None
    patient_fields: tuple[str, ...] = ()
    disabled: bool = False
    label: str = ""

    @property
    def tenant(self) -> str | None:
        """The access label of the resources this client's organisation may see."""
        if self.role == "hospital" and self.organization:
            return f"finess|{self.organization}"
        if self.role == "manufacturer" and self.organization:
            return self.organization
        return None


def storable_text(text: str) -> bool:
    """Whether both databases can hold the text: PostgreSQL refuses a NUL, and a lone surrogate (from a
    JSON \\uD800 escape or a surrogate-escaped header) cannot be encoded as UTF-8."""
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def validate_client(client: Client) -> Client:
    """The client, or ClientConfigError: also for texts the database cannot hold (PostgreSQL refuses a
    NUL, and a value longer than its column), which would fail its registration or every write it makes."""
    if not client.client_id or len(client.client_id) > CLIENT_ID_CHARS or not storable_text(client.client_id):
        raise ClientConfigError(f"client_id must be 1 to {CLIENT_ID_CHARS} characters of text without NUL")
    for name, value in (("organization", client.organization), ("label", client.label)):
        if value is not None and not storable_text(value):
            raise ClientConfigError(f"client {client.client_id}: {name} must be text without NUL")
        if value is not None and len(value) > LABEL_CHARS:
            raise ClientConfigError(
                f"client {client.client_id}: {name} is longer than {LABEL_CHARS} characters"
            )
    if client.role not in ROLES:
        raise ClientConfigError(f"client {client.client_id}: role must be one of {', '.join(ROLES)}")
    if client.role == "hospital" and not (client.organization or "").isdigit():
        raise ClientConfigError(f"client {client.client_id}: a hospital is bound to its FINESS (9 digits)")
    if client.role == "manufacturer" and not _ORGANIZATION_REFERENCE.fullmatch(client.organization or ""):
        raise ClientConfigError(
            f"client {client.client_id}: a manufacturer is bound to Organization/<id> (its organization: "
            "an id of 1 to 64 letters, digits, '-' or '.')"
        )
    if client.tenant is not None and len(client.tenant) > LABEL_CHARS:
        raise ClientConfigError(
            f"client {client.client_id}: organization is too long for the access label "
            f"{client.tenant[:20]}... ({LABEL_CHARS} characters at most)"
        )
    if not client.secret_hash and not client.jwks:
        raise ClientConfigError(f"client {client.client_id}: needs a jwks (private_key_jwt) or a secret hash")
    if client.jwks is not None and not isinstance(client.jwks.get("keys"), list):
        raise ClientConfigError(f"client {client.client_id}: jwks must be a JWK Set with a keys list")
    return client


def client_from_mapping(data: dict, base_dir: Path | None = None) -> Client:
    """Build a client from a clients-file table or a database row."""
    jwks = data.get("jwks")
    if isinstance(jwks, str):
        jwks = json.loads(jwks)
    if data.get("jwks_file"):
        path = Path(data["jwks_file"])
        if base_dir and not path.is_absolute():
            path = base_dir / path
        jwks = json.loads(path.read_text(encoding="utf-8"))
    fields = data.get("patient_fields") or ()
    if isinstance(fields, str):
        fields = json.loads(fields)
    return validate_client(
        Client(
            client_id=str(data.get("client_id", "")),
            role=str(data.get("role", "")),
            scopes=ScopeSet.parse(str(data.get("scopes", ""))),
            organization=data.get("organization") or None,
            secret_hash=data.get("secret_hash") or None,
            jwks=jwks,
            patient_fields=tuple(fields),
            disabled=bool(data.get("disabled", False)),
            label=str(data.get("label", "")),
        )
    )


def load_clients_file(path: Path) -> dict[str, Client]:
    """Read `[[client]]` tables from a TOML file."""
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ClientConfigError(f"cannot read clients file {path}: {exc}") from exc
    clients: dict[str, Client] = {}
    for table in document.get("client", []):
        try:
            client = client_from_mapping(table, path.parent)
        except (OSError, json.JSONDecodeError) as exc:
            raise ClientConfigError(f"clients file {path}: {exc}") from exc
        if client.client_id in clients:
            raise ClientConfigError(f"clients file {path}: client_id {client.client_id} appears twice")
        clients[client.client_id] = client
    return clients


@dataclass
class ClientRegistry:
    """Clients from the configuration file, then from the database, with a short cache for the latter."""

    from_file: dict[str, Client]
    lookup: Callable[[str], Client | None]
    ttl_seconds: float = 10.0
    max_cached: int = 4096
    _cache: dict[str, tuple[float, Client | None]] = field(default_factory=dict)

    def get(self, client_id: str) -> Client | None:
        if client_id in self.from_file:
            client = self.from_file[client_id]
        elif not (0 < len(client_id) <= CLIENT_ID_CHARS and storable_text(client_id)):
            # No such client can be registered: the database is not asked (PostgreSQL would fail on a
            # NUL), and the id is not cached.
            return None
        else:
            now = time.monotonic()
            cached = self._cache.get(client_id)
            if cached and now - cached[0] < self.ttl_seconds:
                client = cached[1]
            else:
                client = self.lookup(client_id)
                self._remember(client_id, now, client)
        if client is None or client.disabled:
            return None
        return client

    def _remember(self, client_id: str, now: float, client: Client | None) -> None:
        # Unknown ids are cached too (a client retrying with a wrong id costs no query), so anyone can
        # add entries: past the bound, expired ones go, and if none has expired, all of them.
        if len(self._cache) >= self.max_cached:
            for key, (at, _) in list(self._cache.items()):  # a copy: other threads write meanwhile
                if now - at >= self.ttl_seconds:
                    self._cache.pop(key, None)
            if len(self._cache) >= self.max_cached:
                self._cache.clear()
        self._cache[client_id] = (now, client)

    def forget(self, client_id: str) -> None:
        self._cache.pop(client_id, None)
