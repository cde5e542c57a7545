"""Shared fixtures: the same tests run on SQLite and on PostgreSQL, in process and over real sockets."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests
from sqlalchemy import text

from adapter import create_app
from adapter.config import Settings
from adapter.store.engine import make_engine

# Patient data the tests send (INS numbers, names, birth dates). None of it may reach a log: the whole
# run's log output, the test process's and every live server's, is scanned at the end of the session.
PHI_MARKERS = (
    "2750399123456",
    "2680169123456",
    "1850775123456",
    "2550275111222",
    "1720769654321",
    "Lefèvre",
    "Hélène",
    "Élodie",
    "Dubois",
    "Sophie",
    "Bernard",
    "1975-03-12",
    "1968-11-02",
    "1985-07-14",
)
_LOG_FILES: list[Path] = []


def pytest_configure(config: pytest.Config) -> None:
    import logging
    import tempfile

    path = Path(tempfile.mkdtemp(prefix="cart-adapter-logs-")) / "test-run.log"
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setLevel(logging.DEBUG)
    logging.getLogger().addHandler(handler)
    logging.getLogger("adapter").setLevel(logging.DEBUG)
    _LOG_FILES.append(path)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    import logging

    for handler in logging.getLogger().handlers:
        handler.flush()
    leaks = []
    for path in _LOG_FILES:
        if path.exists():
            text = path.read_text(encoding="utf-8", errors="replace")
            leaks.extend(f"{path}: {marker!r}" for marker in PHI_MARKERS if marker in text)
    if leaks:
        print("\nPATIENT DATA FOUND IN LOG OUTPUT:\n  " + "\n  ".join(leaks))
        session.exitstatus = 1


POSTGRES_URL = os.environ.get(
    "CART_ADAPTER_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
# CI sets this so that an unreachable PostgreSQL fails the run instead of silently skipping half of it.
REQUIRE_POSTGRES = os.environ.get("CART_ADAPTER_REQUIRE_POSTGRES") == "1"


def _postgres_problem() -> str | None:
    try:
        engine = make_engine(POSTGRES_URL)
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        engine.dispose()
        return None
    except Exception as exc:  # any driver or network error means "not reachable"
        return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"


@pytest.fixture(scope="session")
def postgres_base_url() -> str:
    problem = _postgres_problem()
    if problem:
        if REQUIRE_POSTGRES:
            pytest.fail(
                f"PostgreSQL required (CART_ADAPTER_REQUIRE_POSTGRES=1) "
                f"but unreachable at {POSTGRES_URL}: {problem}"
            )
        pytest.skip(
            f"PostgreSQL not reachable at {POSTGRES_URL} ({problem}); set CART_ADAPTER_TEST_POSTGRES_URL"
        )
    return POSTGRES_URL


def _with_schema(url: str, schema: str) -> str:
    separator = "&" if "?" in url else "?"
    return f"{url}{separator}options=-csearch_path%3D{schema}"


@pytest.fixture
def fresh_postgres_url(postgres_base_url: str) -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a new, empty schema, dropped after the test."""
    with postgres_schema(postgres_base_url) as url:
        yield url


@contextmanager
def postgres_schema(postgres_base_url: str) -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a new, empty schema, dropped when the block ends."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = make_engine(postgres_base_url)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield _with_schema(postgres_base_url, schema)
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.sqlite3'}"
    return request.getfixturevalue("fresh_postgres_url")


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(instance_path=tmp_path, database_url=database_url, default_page_size=20)


@pytest.fixture
def app(settings: Settings):  # type: ignore[no-untyped-def]
    application = create_app(settings)
    yield application
    services = application.extensions["cart_adapter"]
    services.close()


def bearer_for(app, client_id: str, role: str = "admin", scopes: str = "system/*.cruds", **kwargs) -> str:  # type: ignore[no-untyped-def]
    """Register a client directly and mint a token for it, as the token endpoint would."""
    auth = app.extensions["cart_adapter"].auth
    auth.register(client_id, role, scopes, **kwargs)
    token, _ = auth.tokens.issue(client_id, scopes, "http://localhost/fhir")
    return f"Bearer {token}"


@pytest.fixture
def client(app):  # type: ignore[no-untyped-def]
    """A test client authenticated as an administrator with every system scope."""
    test_client = app.test_client()
    test_client.environ_base["HTTP_AUTHORIZATION"] = bearer_for(app, "test-admin")
    return test_client


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LiveServer:
    """`cart-adapter serve` (gunicorn) in a child process on a loopback port, with an admin client."""

    def __init__(self, database_url: str, instance: Path, workers: int = 2):
        self.port = free_port()
        self.root = f"http://127.0.0.1:{self.port}"
        self.base = f"{self.root}/fhir"
        self.settings = Settings(instance_path=instance, database_url=database_url)
        setup = create_app(self.settings)
        _, self.secret = setup.extensions["cart_adapter"].auth.register(
            "live-admin", "admin", "system/*.cruds"
        )
        setup.extensions["cart_adapter"].engine.dispose()
        env = dict(
            os.environ, CART_ADAPTER_DATABASE_URL=database_url, CART_ADAPTER_INSTANCE_PATH=str(instance)
        )
        self.log = open(instance / "server.log", "wb")  # noqa: SIM115 - closed in stop()
        _LOG_FILES.append(instance / "server.log")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "adapter.cli",
                "serve",
                "--port",
                str(self.port),
                "--workers",
                str(workers),
            ],
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        self._wait()

    def token(self, client_id: str = "live-admin", secret: str | None = None) -> str:
        """An access token from the server's token endpoint (client_secret_basic)."""
        response = requests.post(
            f"{self.root}/auth/token",
            data={"grant_type": "client_credentials", "scope": "system/*.cruds"},
            auth=(client_id, secret or self.secret),
            timeout=10,
        )
        response.raise_for_status()
        return response.json()["access_token"]

    def session(self) -> requests.Session:
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {self.token()}"
        return session

    def _wait(self) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}")
            try:
                if requests.get(f"{self.base}/metadata", timeout=10).status_code == 200:
                    return
            except requests.RequestException:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError("server did not start within 60 s")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()


@pytest.fixture
def live_server(database_url: str, tmp_path: Path) -> Iterator[LiveServer]:
    server = LiveServer(database_url, tmp_path)
    try:
        yield server
    finally:
        server.stop()
