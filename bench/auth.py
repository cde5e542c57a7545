"""Bearer tokens for the benchmarks when the server requires SMART Backend Services authentication.

Older code has no adapter.security and ignores the clients-file setting, so the same benchmark runs on
both: clients are registered only when the package can hash their secrets, tokens fetched only on a 401.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from pathlib import Path

import requests

HOSPITAL_FINESS = "690781810"
HOSPITAL_CLIENT = "bench-hospital"
# Tokens outlive a whole run: the cost of checking one does not depend on its lifetime.
TOKEN_LIFETIME_S = 24 * 3600


def manufacturer_client(owner: str) -> str:
    return f"bench-{owner}"


@dataclass
class Clients:
    """The clients a run registers, their secrets, and the server settings that load them."""

    env: dict[str, str] = field(default_factory=dict)
    secrets: dict[str, str] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)

    @property
    def enabled(self) -> bool:
        return bool(self.secrets)

    def header(self, client_id: str) -> dict[str, str]:
        token = self.tokens.get(client_id)
        return {"Authorization": f"Bearer {token}"} if token else {}

    def fetch_tokens(self, root: str) -> None:
        """Client-credentials grants with client_secret_basic, once per client, if the server wants tokens."""
        probe = requests.get(f"{root}/bench/constant", timeout=10)
        if probe.status_code != 401:
            return
        if not self.enabled:
            raise RuntimeError(
                "the server answers 401 but this adapter has no adapter.security to register clients"
            )
        for client_id, secret in self.secrets.items():
            response = requests.post(
                f"{root}/auth/token",
                data={"grant_type": "client_credentials"},
                auth=(client_id, secret),
                timeout=30,
            )
            if response.status_code != 200:
                raise RuntimeError(
                    f"token for {client_id}: HTTP {response.status_code} {response.text[:300]}"
                )
            self.tokens[client_id] = response.json()["access_token"]


def register(instance: Path, owners: list[str], *, hospital: bool) -> Clients:
    """Write a clients file for a hospital (writes everything) and one client per manufacturer owner."""
    import adapter

    # Not importlib.find_spec: the editable install would find the working tree's package even when the
    # adapter measured is a snapshot without it.
    if not (Path(adapter.__file__).parent / "security").is_dir():
        return Clients()
    from adapter.security.secrets import hash_secret

    clients = Clients()
    tables = []

    def add(client_id: str, role: str, organization: str, scopes: str) -> None:
        secret = secrets.token_urlsafe(24)
        clients.secrets[client_id] = secret
        tables.append(
            "\n".join(
                [
                    "[[client]]",
                    f'client_id = "{client_id}"',
                    f'role = "{role}"',
                    f'organization = "{organization}"',
                    f'scopes = "{scopes}"',
                    f'secret_hash = "{hash_secret(secret)}"',
                    "",
                ]
            )
        )

    if hospital:
        add(HOSPITAL_CLIENT, "hospital", HOSPITAL_FINESS, "system/*.cruds")
    for owner in owners:
        add(manufacturer_client(owner), "manufacturer", f"Organization/{owner}", "system/Task.rs")
    path = instance / "bench-clients.toml"
    path.write_text("\n".join(tables), encoding="utf-8")
    clients.env = {
        "CART_ADAPTER_CLIENTS_FILE": str(path),
        "CART_ADAPTER_TOKEN_LIFETIME": str(TOKEN_LIFETIME_S),
    }
    return clients
