"""What both benchmarks share: databases per backend, the gunicorn server, CPU accounting, results files."""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
RESULTS = BENCH_DIR / "results"
POSTGRES_URL = os.environ.get(
    "CART_ADAPTER_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
BACKENDS = ("sqlite", "postgres")


@dataclass
class Database:
    backend: str
    url: str
    instance: Path


@contextmanager
def fresh_database(backend: str, *, keep: bool = False) -> Iterator[Database]:
    """An empty database for one run: a SQLite file in a temporary instance folder, or a new PG schema.

    Both are removed afterwards unless `keep` (to look at query plans on the loaded data later).
    """
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r} (sqlite or postgres)")
    instance = Path(tempfile.mkdtemp(prefix=f"cart-bench-{backend}-"))
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    admin = None
    try:
        if backend == "sqlite":
            yield Database(backend, "", instance)
            return
        from sqlalchemy import text

        from adapter.store.engine import make_engine

        admin = make_engine(POSTGRES_URL)
        with admin.begin() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
        separator = "&" if "?" in POSTGRES_URL else "?"
        yield Database(backend, f"{POSTGRES_URL}{separator}options=-csearch_path%3D{schema}", instance)
    finally:
        if keep:
            where = f"schema {schema} and {instance}" if admin is not None else str(instance)
            print(f"  kept the {backend} database: {where}", flush=True)
        else:
            if admin is not None:
                from sqlalchemy import text

                with admin.begin() as connection:
                    connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            shutil.rmtree(instance, ignore_errors=True)
        if admin is not None:
            admin.dispose()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """`cart-adapter serve` (gunicorn) with the bench endpoints, in a child process.

    One thread per worker: sync workers, a connection per request. More: gthread workers, which keep
    the client's connection open between requests.
    """

    def __init__(self, db: Database, workers: int = 2, threads: int = 1, env: dict[str, str] | None = None):
        self.port = free_port()
        self.root = f"http://127.0.0.1:{self.port}"
        self.env = {
            "CART_ADAPTER_DATABASE_URL": db.url,
            "CART_ADAPTER_INSTANCE_PATH": str(db.instance),
            "CART_ADAPTER_BENCH_ENDPOINTS": "1",
            **(env or {}),
        }
        self.command = [
            str(Path(sys.executable).with_name("cart-adapter")),
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--workers",
            str(workers),
            "--threads",
            str(threads),
        ]
        if not Path(self.command[0]).exists():
            self.command[:1] = [sys.executable, "-m", "adapter.cli"]
        # The server runs the adapter package this process imports, even when that is a snapshot of
        # another commit and not the editable install.
        path = [str(adapter_source())] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
        self.log = open(db.instance / "server.log", "wb")  # noqa: SIM115 - closed in stop()
        env = {**os.environ, **self.env, "PYTHONPATH": os.pathsep.join(path)}
        self.process = subprocess.Popen(
            self.command, env=env, stdout=self.log, stderr=subprocess.STDOUT, cwd=db.instance
        )
        self._wait()

    def shell_command(self) -> str:
        env = " ".join(f"{k}={shlex.quote(v)}" for k, v in self.env.items())
        return f"{env} {shlex.join(self.command)}"

    def _wait(self) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}; see {self.log.name}")
            try:
                if requests.get(f"{self.root}/fhir/metadata", timeout=2).status_code == 200:
                    return
            except requests.ConnectionError:
                time.sleep(0.1)
        raise RuntimeError("server did not start within 60 s")

    def log_tail(self, lines: int = 40) -> str:
        self.log.flush()
        return "\n".join(Path(self.log.name).read_text(errors="replace").splitlines()[-lines:])

    def worker_pids(self) -> list[int]:
        return _children(self.process.pid)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


_TICK = os.sysconf("SC_CLK_TCK")


def _cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICK  # utime + stime


def _postgres_pids() -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == "postgres":
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


def _machine_busy(*, processes_only: bool = False) -> float:
    """CPU seconds all processors have spent busy since boot (idle and iowait excluded).

    `processes_only` leaves out interrupt time: the loopback traffic of the benchmark itself is handled
    there, and is nobody else's.
    """
    user, nice, system, idle, iowait, irq, softirq, steal = (
        int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]
    )
    if processes_only:
        return (user + nice + system) / _TICK
    return (user + nice + system + irq + softirq + steal) / _TICK


def wait_for_quiet(max_wait_s: float, busy_share: float = 0.1) -> tuple[float, float]:
    """Wait (up to max_wait_s) for a second in which the machine is at most `busy_share` busy.

    Others share this machine: a test suite running beside the server would be measured as the server's
    slowness. Returns the time waited and the busy share of the last second sampled.
    """
    waited = 0.0
    cpus = os.cpu_count() or 1
    while True:
        before = _machine_busy()
        time.sleep(1.0)
        share = (_machine_busy() - before) / cpus
        if share <= busy_share or waited >= max_wait_s:
            return waited, share
        waited += 1.0


class CpuMeter:
    """CPU seconds spent by the server's workers and by PostgreSQL between start() and stop().

    Where the two cores go is what explains a ratio: a load generator or a database on the same machine
    takes CPU the web workers would otherwise have.
    """

    def __init__(self, server: Server):
        self.server = server

    def _sample(self) -> dict[str, dict[int, float]]:
        return {
            "server": {p: _cpu_seconds(p) for p in self.server.worker_pids()},
            "postgres": {p: _cpu_seconds(p) for p in _postgres_pids()},
            "machine": {0: _machine_busy(processes_only=True)},
        }

    def start(self) -> None:
        self.before = self._sample()
        self.started = time.monotonic()

    def stop(self) -> dict[str, float]:
        """CPU seconds per group; a process that ended in between is missed (PG backends rarely do)."""
        after = self._sample()
        out = {
            group: sum(cpu - self.before[group].get(pid, 0.0) for pid, cpu in pids.items())
            for group, pids in after.items()
        }
        out["wall"] = time.monotonic() - self.started
        return out

    @staticmethod
    def others_share(cpu: dict[str, float], loadgen_cpu_s: float) -> float:
        """The share of all CPUs used by neither the server, nor PostgreSQL, nor the load generator."""
        others = cpu["machine"] - cpu["server"] - cpu["postgres"] - loadgen_cpu_s
        return max(0.0, others) / (cpu["wall"] * (os.cpu_count() or 1))


def exit_cleanly_on_sigterm() -> None:
    """Turn SIGTERM into SystemExit, so that the server is stopped and the PostgreSQL schema dropped."""
    import signal

    def stop(signum: int, _frame: object) -> None:
        print(f"terminated by signal {signum}: stopping the server, removing the database", file=sys.stderr)
        sys.exit(128 + signum)

    signal.signal(signal.SIGTERM, stop)


def machine() -> dict[str, object]:
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
    }


def adapter_source() -> Path:
    """The folder holding the `adapter` package that is benchmarked."""
    import adapter

    return Path(adapter.__file__).resolve().parent.parent


def code_version() -> dict[str, object]:
    """The commit measured, and whether the working tree differed from it (others edit it concurrently)."""
    source = adapter_source()

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=source, capture_output=True, text=True)
        # Only trailing whitespace: porcelain lines start with a status column that may be a space.
        return done.stdout.rstrip() if done.returncode == 0 else ""

    commit = git("rev-parse", "--short", "HEAD")
    if not commit:
        return {"source": str(source), "commit": None, "modified_outside_bench": []}
    dirty = [
        line[3:] for line in git("status", "--porcelain").splitlines() if not line[3:].startswith("bench/")
    ]
    return {"source": str(source), "commit": commit, "modified_outside_bench": dirty}


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def write_results(name: str, payload: dict) -> Path:
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(payload, indent=2, ensure_ascii=False))
    return path


def reproduce_line(module: str) -> str:
    """The command that was run; with the adapter of another folder (a snapshot of a commit) when it was."""
    command = shlex.join([sys.executable, "-m", module, *sys.argv[1:]])
    source = adapter_source()
    if source == REPO:
        return f"cd {REPO} && {command}"
    return f"cd {source} && PYTHONPATH={REPO} {command}"


def http_parser(module: str, description: str | None) -> argparse.ArgumentParser:
    """The options every HTTP benchmark takes; each adds its own."""
    parser = argparse.ArgumentParser(prog=f"python -m {module}", description=description)
    parser.add_argument("--seconds", type=float, default=15, help="duration of each measurement")
    parser.add_argument("--clients", type=int, default=4, help="concurrent keep-alive connections")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds of the measurements")
    parser.add_argument("--warmup", type=float, default=3, help="seconds of warm-up per measurement kind")
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument(
        "--server-threads",
        type=int,
        default=1,
        help="threads per gunicorn worker (above 1: gthread workers, connections kept alive)",
    )
    parser.add_argument("--threads", type=int, default=1, help="wrk threads")
    parser.add_argument(
        "--python-client", action="store_true", help="use the Python client even if wrk exists"
    )
    parser.add_argument(
        "--search-parameters",
        default="",
        help="CART_ADAPTER_SEARCH_PARAMETERS for the server (comma-separated codes; default: all)",
    )
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=120,
        help="before each measurement, wait up to this long for the machine to be idle",
    )
    return parser


def start_run(module: str, python_client: bool) -> str:
    """Print what the figures depend on (load generator, CPUs, code, how to reproduce); the tool name."""
    from bench import loadgen

    exit_cleanly_on_sigterm()
    tool = loadgen.tool_name(python_client)
    print(f"load generator: {tool}")
    print(f"CPUs: {machine()['cpus']}")
    code = code_version()
    print(
        f"code: adapter from {code['source']}"
        + (f", commit {code['commit']}" if code["commit"] else " (not a git checkout)")
        + (
            f" + uncommitted changes in {len(code['modified_outside_bench'])} files"
            if code["modified_outside_bench"]
            else ""
        )
    )
    print(f"reproduce: {reproduce_line(module)}")
    return tool


def backends(args: argparse.Namespace) -> list[str]:
    return [b.strip() for b in args.backends.split(",") if b.strip()]


def save_run(
    name: str, module: str, args: argparse.Namespace, tool: str, results: dict, **extra: object
) -> None:
    """Write the run (rounds included) under bench/results and say where."""
    path = write_results(
        name,
        {
            "benchmark": name,
            "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "machine": machine(),
            "code": code_version(),
            "load_generator": tool,
            "reproduce": reproduce_line(module),
            "options": vars(args),
            **extra,
            "results": results,
        },
    )
    print(f"results: {path}")


def server_kind(args: argparse.Namespace) -> str:
    if args.server_threads > 1:
        return f"{args.workers} gthread workers x {args.server_threads} threads (keep-alive)"
    return f"{args.workers} sync workers"


def search_parameters_env(args: argparse.Namespace) -> dict[str, str]:
    """The server setting that narrows the indexed search parameters, when the run asks for it."""
    return {"CART_ADAPTER_SEARCH_PARAMETERS": args.search_parameters} if args.search_parameters else {}
