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
@click.option("--dev", is_flag=True, help="Flask's single-process development server instead of gunicorn")
def serve(host: str, port: int, workers: int, dev: bool) -> None:
    """Migrate the database, then serve the FHIR API."""
    from adapter import create_app
    from adapter.store.engine import make_engine
    from adapter.store.migrate import upgrade

    settings = Settings.from_env()
    engine = make_engine(settings.effective_database_url)
    upgrade(engine)
    engine.dispose()
    click.echo(f"cart-adapter: FHIR R4 API on http://{host}:{port}/fhir (database: {_describe(settings)})")
    if dev:
        create_app(settings, migrate=False).run(host=host, port=port)
        return
    from gunicorn.app.base import BaseApplication

    class _Gunicorn(BaseApplication):
        def load_config(self) -> None:
            self.cfg.set("bind", f"{host}:{port}")
            self.cfg.set("workers", workers)
            self.cfg.set("timeout", 60)
            self.cfg.set("accesslog", None)

        def load(self):  # type: ignore[no-untyped-def]
            return create_app(settings, migrate=False)

    _Gunicorn().run()


def _describe(settings: Settings) -> str:
    url = settings.effective_database_url
    return url.split("@")[-1] if "@" in url else url


@main.group()
def db() -> None:
    """Database schema management (Alembic migrations)."""


@db.command("upgrade")
@click.argument("revision", default="head")
def db_upgrade(revision: str) -> None:
    """Apply migrations up to REVISION (default: head)."""
    from adapter.store.engine import make_engine
    from adapter.store.migrate import upgrade

    upgrade(make_engine(Settings.from_env().effective_database_url), revision)
    click.echo(f"database at {revision}")


@db.command("downgrade")
@click.argument("revision")
def db_downgrade(revision: str) -> None:
    """Revert migrations down to REVISION (use 'base' for an empty database)."""
    from adapter.store.engine import make_engine
    from adapter.store.migrate import downgrade

    downgrade(make_engine(Settings.from_env().effective_database_url), revision)
    click.echo(f"database at {revision}")


if __name__ == "__main__":  # pragma: no cover
    main(prog_name=os.path.basename(__file__))
