"""Closed-loop HTTP load for a fixed duration: wrk when installed, else Python processes with http.client."""

from __future__ import annotations

import http.client
import json
import multiprocessing
import resource
import shlex
import shutil
import statistics
import subprocess
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from bench.pathway_bundle import NIR_PREFIX, fill_template

LUA = Path(__file__).resolve().parent / "wrk_load.lua"


@dataclass
class Load:
    """What to send: one path, a rotation of paths, or distinct Bundles filled from a template."""

    method: str
    path: str = "/"
    paths: list[str] = field(default_factory=list)
    # The Authorization header of each path in `paths` (a manufacturer polls with its own token).
    authorizations: list[str] = field(default_factory=list)
    template: str | None = None
    prefer: str = ""
    first_seq: int = 0
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Result:
    requests: int
    errors: int  # HTTP status >= 400 and timeouts
    socket_errors: int
    seconds: float
    per_second: float  # successful responses per second
    p50_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float
    max_ms: float
    loadgen_cpu_s: float
    command: str

    def as_dict(self) -> dict:
        return asdict(self)


def tool_name(prefer_python: bool = False) -> str:
    if not prefer_python and shutil.which("wrk"):
        version = subprocess.run(["wrk", "--version"], capture_output=True, text=True).stdout.split("\n")[0]
        return f"wrk ({version.split(' Copyright')[0].strip()})"
    reason = "--python-client" if prefer_python else "wrk not found"
    return f"python http.client processes ({reason}; this client takes CPU from the server)"


def run(
    root: str, load: Load, *, seconds: float, clients: int, threads: int = 1, use_python: bool = False
) -> Result:
    if use_python or not shutil.which("wrk"):
        return _run_python(root, load, seconds=seconds, clients=clients)
    return _run_wrk(root, load, seconds=seconds, clients=clients, threads=threads)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _run_wrk(root: str, load: Load, *, seconds: float, clients: int, threads: int) -> Result:
    threads = max(1, min(threads, clients))
    with tempfile.TemporaryDirectory(prefix="cart-wrk-") as tmp:
        if load.template is not None:
            data = Path(tmp) / "bundle-template.json"
            data.write_text(load.template, encoding="utf-8")
            args = ["post", str(data), str(load.first_seq), str(threads), load.prefer, NIR_PREFIX]
            url = root + load.path
        else:
            data = Path(tmp) / "paths.txt"
            paths = load.paths or [load.path]
            authorizations = load.authorizations or [""] * len(paths)
            data.write_text(
                "".join(f"{p}\t{a}\n" for p, a in zip(paths, authorizations, strict=True)), encoding="utf-8"
            )
            args = ["get", str(data), str(load.first_seq), str(threads), "", ""]
            url = root + paths[0]
        headers = [arg for name, value in load.headers.items() for arg in ("-H", f"{name}: {value}")]
        command = [
            "wrk",
            f"-t{threads}",
            f"-c{clients}",
            f"-d{seconds:g}s",
            "--timeout",
            "10s",
            "--latency",
            *headers,
            "-s",
            str(LUA),
            url,
            "--",
            *args,
        ]
        cpu_before = _children_cpu()
        done = subprocess.run(command, capture_output=True, text=True, check=True)
        cpu = _children_cpu() - cpu_before
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith("WRK_RESULT ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no result:\n{done.stdout}\n{done.stderr}")
    raw = json.loads(line.split(" ", 1)[1])
    elapsed = raw["duration_us"] / 1e6
    errors = raw["status_errors"] + raw["timeouts"]
    ok = raw["requests"] - errors
    return Result(
        requests=raw["requests"],
        errors=errors,
        socket_errors=raw["connect_errors"] + raw["read_errors"] + raw["write_errors"],
        seconds=elapsed,
        per_second=ok / elapsed,
        p50_ms=raw["p50_us"] / 1000,
        p90_ms=raw["p90_us"] / 1000,
        p99_ms=raw["p99_us"] / 1000,
        mean_ms=raw["mean_us"] / 1000,
        max_ms=raw["max_us"] / 1000,
        loadgen_cpu_s=cpu,
        command=_printable(command, tmp),
    )


def _printable(command: list[str], tmp: str) -> str:
    """The wrk command as run, without the bearer tokens (they expire) and with the temporary folder named."""
    text = shlex.join(
        ["Authorization: Bearer $TOKEN" if arg.startswith("Authorization:") else arg for arg in command]
    )
    return text.replace(tmp, "$TMP")


# -- the Python fallback ----------------------------------------------------------------------------
def _client(root: str, load: Load, index: int, clients: int, deadline: float, out) -> None:  # type: ignore[no-untyped-def]
    parts = urlsplit(root)
    connection = None
    latencies: list[float] = []
    failed = broken = 0
    seq = load.first_seq + index
    headers = {"Content-Type": "application/fhir+json", **load.headers}
    if load.prefer:
        headers["Prefer"] = f"return={load.prefer}"
    paths = load.paths or [load.path]
    authorizations = load.authorizations or [""] * len(paths)
    position = index * max(1, len(paths) // clients)
    while time.monotonic() < deadline:
        if load.template is not None:
            body: bytes | None = fill_template(load.template, seq).encode()
            seq += clients
            path = load.path
        else:
            body = None
            path = paths[position % len(paths)]
            if authorizations[position % len(paths)]:
                headers["Authorization"] = authorizations[position % len(paths)]
            position += 1
        if connection is None:
            connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
            connection.connect()
        started = time.perf_counter()
        try:
            connection.request(load.method, path, body=body, headers=headers)
            response = connection.getresponse()
            response.read()
        except (OSError, http.client.HTTPException):
            broken += 1
            connection.close()
            connection = None
            continue
        latencies.append(time.perf_counter() - started)
        if response.status >= 400:
            failed += 1
        if response.will_close:
            connection.close()
            connection = None
    out.put((latencies, failed, broken))


def _run_python(root: str, load: Load, *, seconds: float, clients: int) -> Result:
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    started = time.monotonic()
    deadline = started + seconds
    processes = [
        context.Process(target=_client, args=(root, load, i, clients, deadline, queue))
        for i in range(clients)
    ]
    cpu_before = _children_cpu()
    for process in processes:
        process.start()
    gathered = [queue.get() for _ in processes]
    for process in processes:
        process.join()
    elapsed = time.monotonic() - started
    cpu = _children_cpu() - cpu_before
    latencies = sorted(x for lat, _, _ in gathered for x in lat)
    failed = sum(f for _, f, _ in gathered)
    broken = sum(b for _, _, b in gathered)
    count = len(latencies)

    def pct(p: float) -> float:
        return latencies[min(count - 1, int(p / 100 * count))] * 1000 if count else float("nan")

    return Result(
        requests=count + broken,
        errors=failed,
        socket_errors=broken,
        seconds=elapsed,
        per_second=(count - failed) / elapsed,
        p50_ms=pct(50),
        p90_ms=pct(90),
        p99_ms=pct(99),
        mean_ms=statistics.fmean(latencies) * 1000 if count else float("nan"),
        max_ms=latencies[-1] * 1000 if count else float("nan"),
        loadgen_cpu_s=cpu,
        command=f"python http.client: {clients} processes, keep-alive, {load.method} {root}{load.path}"
        f" for {seconds:g} s",
    )
