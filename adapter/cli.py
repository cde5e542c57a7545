"""The cart-adapter command line: serve, db."""

from __future__ import annotations

import os

import click

from adapter.config import Settings
from adapter.logs import configure_logging


@click.group()
def main() -> None:
    """cart-adapter: FHIR R4 adapter for CAR-T pathways."""
    configure_logging()


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8080, show_default=True, type=int)
@click.option("--workers", default=2, show_default=True, type=int, help="gunicorn worker processes")
@click.option(
    "--threads",
    default=1,
    show_default=True,
    type=int,
    help="threads per worker; above 1, gunicorn's gthread workers, which keep client connections open",
)
@click.option("--dev", is_flag=True, help="Flask's single-process development server instead of gunicorn")
def serve(host: str, port: int, workers: int, threads: int, dev: bool) -> None:
    """Migrate the database, then serve the FHIR API."""
    from adapter import create_app
    from adapter.search.params import configure
    from adapter.store.engine import make_engine
    from adapter.store.migrate import upgrade

    settings = Settings.from_env()
    configure(settings.search_parameters, base=settings.public_base_url)
    engine = make_engine(settings.effective_database_url)
    upgrade(engine)
    engine.dispose()
    click.echo(f"cart-adapter: FHIR R4 API on http://{host}:{port}/fhir (database: {_describe(settings)})")
    if dev:
        import logging

        # The development server logs request lines, and query strings can carry patient identifiers.
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        create_app(settings, migrate=False).run(host=host, port=port)
        return
    from gunicorn.app.base import BaseApplication

    class _Gunicorn(BaseApplication):
        def load_config(self) -> None:
            self.cfg.set("bind", f"{host}:{port}")
            self.cfg.set("workers", workers)
            if threads > 1:
                self.cfg.set("worker_class", "gthread")
                self.cfg.set("threads", threads)
            self.cfg.set("timeout", 60)
            self.cfg.set("accesslog", None)

        def load(self):  # type: ignore[no-untyped-def]
            return create_app(settings, migrate=False)

    _Gunicorn().run()


def _describe(settings: Settings) -> str:
    url = settings.effective_database_url
    return url.split("@")[-1] if "@" in url else url


def _register_tool_commands() -> None:
    from adapter.mapping.cli import make_map_command, mapping_group
    from adapter.validation.cli import validate_command

    main.add_command(validate_command, "validate")
    main.add_command(make_map_command(_validate_bundle), "map")
    main.add_command(mapping_group, "mapping")


def _validate_bundle(bundle: dict) -> list:  # type: ignore[type-arg]
    """The same judgement as the server's: core definitions plus the configured profile packages."""
    from adapter import configure_validation
    from adapter.validation.gate import validator

    configure_validation(Settings.from_env())
    return validator().validate(bundle)


_register_tool_commands()


@main.group()
def db() -> None:
    """Database schema management (Alembic migrations)."""


@db.command("upgrade")
@click.argument("revision", default="head")
def db_upgrade(revision: str) -> None:
    """Apply migrations up to REVISION (default: head)."""
    from adapter.search.params import configure
    from adapter.store.engine import make_engine
    from adapter.store.migrate import upgrade

    settings = Settings.from_env()
    configure(settings.search_parameters, base=settings.public_base_url)
    engine = make_engine(settings.effective_database_url)
    try:
        upgrade(engine, revision)
    finally:
        engine.dispose()
    click.echo(f"database at {revision}")


@db.command("reindex")
def db_reindex() -> None:
    """Rebuild the search index of every current resource (start-up does it when parameters change)."""
    from adapter.search.params import configure
    from adapter.store.engine import make_engine
    from adapter.store.migrate import upgrade
    from adapter.store.reindex import rebuild

    settings = Settings.from_env()
    configure(settings.search_parameters, base=settings.public_base_url)
    engine = make_engine(settings.effective_database_url)
    try:
        upgrade(engine)
        click.echo(f"search index rebuilt for {rebuild(engine)} resources")
    finally:
        engine.dispose()


@db.command("downgrade")
@click.argument("revision")
def db_downgrade(revision: str) -> None:
    """Revert migrations down to REVISION (use 'base' for an empty database)."""
    from adapter.store.engine import make_engine
    from adapter.store.migrate import downgrade

    downgrade(make_engine(Settings.from_env().effective_database_url), revision)
    click.echo(f"database at {revision}")


@main.group()
def clients() -> None:
    """Register and manage API clients (SMART Backend Services)."""


def _auth_service():  # type: ignore[no-untyped-def]
    from adapter import build_services
    from adapter.store.migrate import upgrade

    services = build_services(Settings.from_env())
    upgrade(services.engine)
    return services.auth


@clients.command("add")
@click.argument("client_id")
@click.option("--role", required=True, type=click.Choice(["hospital", "manufacturer", "engineer", "admin"]))
@click.option(
    "--scopes", required=True, help='SMART system scopes, e.g. "system/*.cruds" or "system/Task.rus"'
)
@click.option("--organization", help="hospital: its FINESS; manufacturer: Organization/<id> owning its Tasks")
@click.option(
    "--jwks",
    "jwks_file",
    type=click.Path(exists=True, dir_okay=False),
    help="the client's public keys (JWK Set JSON) for private_key_jwt; without it a secret is made",
)
@click.option(
    "--patient-field",
    "patient_fields",
    multiple=True,
    help="manufacturer: a Patient element it may see besides the chain-of-identity id (e.g. birthDate)",
)
@click.option("--label", default="", help="a human name for the client")
def clients_add(
    client_id: str,
    role: str,
    scopes: str,
    organization: str | None,
    jwks_file: str | None,
    patient_fields: tuple[str, ...],
    label: str,
) -> None:
    """Register CLIENT_ID; prints its secret once when no JWKS is given (it is stored hashed)."""
    import json

    jwks = json.loads(open(jwks_file, encoding="utf-8").read()) if jwks_file else None
    try:
        client, secret = _auth_service().register(
            client_id,
            role,
            scopes,
            organization=organization,
            jwks=jwks,
            patient_fields=patient_fields,
            label=label,
        )
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"registered {client.client_id} ({client.role}) with scopes: {client.scopes.text}")
    if secret:
        click.echo("client secret (shown once, store it now):")
        click.echo(secret)


@clients.command("list")
def clients_list() -> None:
    """List the clients registered in the database (not those of the clients file)."""
    from adapter.store import client_store

    auth = _auth_service()
    with auth.engine.connect() as connection:
        for client in client_store.all_clients(connection):
            state = "disabled" if client.disabled else "active"
            method = "private_key_jwt" if client.jwks else "client_secret_basic"
            click.echo(
                f"{client.client_id}\t{client.role}\t{client.organization or '-'}\t{method}\t{state}\t"
                f"{client.scopes.text}"
            )


@clients.command("disable")
@click.argument("client_id")
def clients_disable(client_id: str) -> None:
    """Disable a database client: its tokens stop working within seconds."""
    from adapter.store import client_store

    auth = _auth_service()
    with auth.engine.begin() as connection:
        if not client_store.set_disabled(connection, client_id, True):
            raise click.ClickException(f"no client {client_id} in the database")
    click.echo(f"disabled {client_id}")


@clients.command("hash-secret")
@click.option("--secret", prompt=True, hide_input=True, confirmation_prompt=True)
def clients_hash_secret(secret: str) -> None:
    """Hash a secret for the clients file (secret_hash = ...)."""
    from adapter.security.secrets import hash_secret

    click.echo(hash_secret(secret))


if __name__ == "__main__":  # pragma: no cover
    main(prog_name=os.path.basename(__file__))
