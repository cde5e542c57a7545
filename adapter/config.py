"""Settings: read once from CART_ADAPTER_* environment variables, then frozen."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ValueError(f"{name} must be an integer, got {raw!r}") from exc


def _codes(raw: str) -> tuple[str, ...]:
    codes = tuple(c.strip() for c in raw.split(",") if c.strip())
    return () if codes == ("all",) else codes


@dataclass(frozen=True)
class Settings:
    """Everything the service needs to start; built by `from_env` or directly in tests."""

    instance_path: Path = Path("instance")
    # Empty means the embedded default: a SQLite file under instance_path.
    database_url: str = ""
    # Public base URL of the FHIR endpoint (https://cart.example.org/fhir); empty = taken from the request.
    public_base_url: str = ""
    max_body_bytes: int = 20 * 1024 * 1024
    max_json_depth: int = 64
    default_page_size: int = 50
    max_page_size: int = 1000
    log_level: str = "INFO"
    # TOML file of registered clients ([[client]] tables); clients can also be added with the CLI.
    clients_file: Path | None = None
    # The server's token signing key (EC P-384, PEM); created on first start when missing.
    signing_key_file: Path | None = None
    token_lifetime_seconds: int = 300
    # Optional outside identity provider whose tokens are accepted too.
    external_jwks_url: str = ""
    external_issuer: str = ""
    external_audience: str = ""
    # Identifier systems of the chain-of-identity number, the one patient identifier manufacturers see.
    coi_systems: tuple[str, ...] = ("https://cart-adapter.example.org/fhir/NamingSystem/coi",)
    # Write each audit record before the response leaves (slower) instead of in batches every 50 ms.
    audit_sync: bool = False
    # FHIR packages (folders, .tgz, files) whose profiles the validator knows; empty = the CAR-T package.
    profile_sources: tuple[Path, ...] = ()
    # Resource types whose every write must claim one of the loaded profiles for its type ("*" = all).
    required_profile_types: tuple[str, ...] = ()
    # Search parameter codes to index (beside _id and _lastUpdated); empty = every one that can be.
    search_parameters: tuple[str, ...] = ()
    # Exposes /bench/parse and /bench/constant, the floors that bench/ compares against. Never in production.
    bench_endpoints: bool = False

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.instance_path / 'cart-adapter.sqlite3').resolve()}"

    @property
    def effective_signing_key_file(self) -> Path:
        return self.signing_key_file or self.instance_path / "signing-key.pem"

    def with_overrides(self, **changes: object) -> Settings:
        return replace(self, **changes)  # type: ignore[arg-type]

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        return cls(
            instance_path=Path(env.get("CART_ADAPTER_INSTANCE_PATH", "instance")),
            database_url=env.get("CART_ADAPTER_DATABASE_URL", ""),
            public_base_url=env.get("CART_ADAPTER_PUBLIC_BASE_URL", "").rstrip("/"),
            max_body_bytes=_int(env, "CART_ADAPTER_MAX_BODY_BYTES", cls.max_body_bytes),
            max_json_depth=_int(env, "CART_ADAPTER_MAX_JSON_DEPTH", cls.max_json_depth),
            default_page_size=_int(env, "CART_ADAPTER_DEFAULT_PAGE_SIZE", cls.default_page_size),
            max_page_size=_int(env, "CART_ADAPTER_MAX_PAGE_SIZE", cls.max_page_size),
            log_level=env.get("CART_ADAPTER_LOG_LEVEL", "INFO").upper(),
            profile_sources=tuple(
                Path(p) for p in env.get("CART_ADAPTER_PROFILES", "").split(os.pathsep) if p
            ),
            required_profile_types=tuple(
                t.strip() for t in env.get("CART_ADAPTER_REQUIRE_PROFILES", "").split(",") if t.strip()
            ),
            audit_sync=env.get("CART_ADAPTER_AUDIT_SYNC", "") == "1",
            search_parameters=_codes(env.get("CART_ADAPTER_SEARCH_PARAMETERS", "")),
            bench_endpoints=env.get("CART_ADAPTER_BENCH_ENDPOINTS", "") == "1",
            clients_file=Path(env["CART_ADAPTER_CLIENTS_FILE"])
            if env.get("CART_ADAPTER_CLIENTS_FILE")
            else None,
            signing_key_file=(
                Path(env["CART_ADAPTER_SIGNING_KEY_FILE"])
                if env.get("CART_ADAPTER_SIGNING_KEY_FILE")
                else None
            ),
            token_lifetime_seconds=_int(env, "CART_ADAPTER_TOKEN_LIFETIME", cls.token_lifetime_seconds),
            external_jwks_url=env.get("CART_ADAPTER_EXTERNAL_JWKS_URL", ""),
            external_issuer=env.get("CART_ADAPTER_EXTERNAL_ISSUER", ""),
            external_audience=env.get("CART_ADAPTER_EXTERNAL_AUDIENCE", ""),
            coi_systems=tuple(
                s for s in env.get("CART_ADAPTER_COI_SYSTEMS", ",".join(cls.coi_systems)).split(",") if s
            ),
        )
