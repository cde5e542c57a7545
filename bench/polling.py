"""Manufacturer Task polling over HTTP (gunicorn) on 100,000 stored Tasks, beside the constant floor."""

from __future__ import annotations

import argparse
import random
import sys
import time
from urllib.parse import quote

import requests

from bench import auth, harness, loadgen
from bench.pathway_bundle import LOCAL, MILESTONES

# Two floors: gunicorn answering below Flask, and the Flask request cycle with token check and audit.
FLOORS = ("wsgi", "constant")
POLLS = ("lastupdated", "business")
VARIANTS = FLOORS + POLLS
LABELS = {
    "wsgi": "floor: GET /bench/wsgi",
    "constant": "floor: GET /bench/constant",
    "lastupdated": "owner + _lastUpdated=gt",
    "business": "owner + business-status",
}
# Milestones of an order by the age of its last update: the last one that is not older than the Task.
# Recent Tasks are in early steps, Tasks older than 40 days are done, so a poll for new orders finds few.
_MILESTONES_BY_AGE_H = (
    (2, "order-received", "requested"),
    (24, "order-accepted", "accepted"),
    (7 * 24, "apheresis-scheduled", "in-progress"),
    (9 * 24, "material-shipped", "in-progress"),
    (30 * 24, "manufacturing", "in-progress"),
    (33 * 24, "product-released", "in-progress"),
    (35 * 24, "product-shipped", "in-progress"),
    (40 * 24, "delivered", "in-progress"),
)
POLLED_MILESTONE = "order-received"
US_PER_HOUR = 3_600_000_000


class SyntheticClock:
    """The server's clock during loading: evenly spaced instants ending at `end_us`, one per created resource.

    Loading takes minutes, but production Tasks were written over weeks; spreading their lastUpdated over
    `span` is what makes a poll for the last minutes return a handful of Tasks and not thousands.
    """

    def __init__(self, end_us: int, span_us: int, calls: int):
        self.start_us = end_us - span_us
        self.step_us = span_us // max(1, calls - 1)
        self.calls = 0

    def at(self, call: int) -> int:
        return self.start_us + call * self.step_us

    def __call__(self) -> int:
        value = self.at(self.calls)
        self.calls += 1
        return value


def _milestone(age_us: int, rng: random.Random) -> tuple[str, str]:
    for limit_h, code, status in _MILESTONES_BY_AGE_H:
        if age_us <= limit_h * US_PER_HOUR:
            return code, status
    return ("cancelled", "cancelled") if rng.random() < 0.03 else ("infused", "completed")


def _organization(res_id: str, name: str, system: str, value: str) -> dict:
    return {
        "request": {"method": "PUT", "url": f"Organization/{res_id}"},
        "resource": {
            "resourceType": "Organization",
            "id": res_id,
            "active": True,
            "name": name,
            "identifier": [{"system": system, "value": value}],
        },
    }


def _task(number: int, owner: str, hospital: str, updated_us: int, end_us: int, rng: random.Random) -> dict:
    from adapter.search.dates import format_instant

    code, status = _milestone(end_us - updated_us, rng)
    authored = format_instant(updated_us - rng.randrange(0, 40 * 24) * US_PER_HOUR)[:19] + "Z"
    return {
        "request": {"method": "POST", "url": "Task"},
        "resource": {
            "resourceType": "Task",
            "identifier": [{"system": f"{LOCAL}/order", "value": f"CART-ORD-{number:08d}"}],
            "status": status,
            "intent": "order",
            "businessStatus": {"coding": [{"system": MILESTONES, "code": code}]},
            "focus": {"reference": f"ServiceRequest/sr-{number:08d}"},
            "for": {"reference": f"Patient/pat-{number:08d}"},
            "authoredOn": authored,
            "lastModified": format_instant(updated_us),
            "requester": {"reference": f"Organization/{hospital}"},
            "owner": {"reference": f"Organization/{owner}"},
        },
    }


def load_tasks(
    db: harness.Database,
    tasks: int,
    owners: list[str],
    span_days: float,
    batch: int,
    search_parameters: str = "",
) -> dict:
    """Store the organisations and `tasks` Tasks in process, through BundleProcessor transactions.

    Returns what the polling needs: the synthetic end instant, and how long loading took.
    """
    from adapter import build_services
    from adapter.config import Settings
    from adapter.search.dates import format_instant
    from adapter.store.migrate import upgrade

    # The same indexed parameters as the server will have, so that it starts without a reindex.
    codes = Settings.from_env({"CART_ADAPTER_SEARCH_PARAMETERS": search_parameters}).search_parameters
    services = build_services(
        Settings(instance_path=db.instance, database_url=db.url, search_parameters=codes)
    )
    engine = services.engine
    upgrade(engine)
    hospitals = [f"hosp-{i:02d}" for i in range(1, 31)]
    end_us = (time.time_ns() // 1000) // 1_000_000 * 1_000_000
    clock = SyntheticClock(end_us, int(span_days * 24 * US_PER_HOUR), len(owners) + len(hospitals) + tasks)
    processor = services.bundles
    processor.clock = clock
    rng = random.Random(20260302)
    started = time.monotonic()
    organisations = [
        _organization(o, f"CAR-T manufacturer {o[-2:]}", f"{LOCAL}/manufacturer", o) for o in owners
    ]
    organisations += [
        _organization(h, f"Centre qualifié {h[-2:]}", "https://finess.esante.gouv.fr", f"69{i:07d}")
        for i, h in enumerate(hospitals)
    ]
    processor.process({"resourceType": "Bundle", "type": "transaction", "entry": organisations}, "")
    done = 0
    while done < tasks:
        size = min(batch, tasks - done)
        entries = [
            _task(number, rng.choice(owners), rng.choice(hospitals), clock.at(clock.calls + k), end_us, rng)
            for k, number in enumerate(range(done + 1, done + size + 1))
        ]
        processor.process({"resourceType": "Bundle", "type": "transaction", "entry": entries}, "")
        done += size
        if done % (batch * 20) == 0 or done == tasks:
            rate = done / (time.monotonic() - started)
            print(f"  loaded {done:>7,} Tasks ({rate:,.0f}/s)", flush=True)
    seconds = time.monotonic() - started
    # Measure the steady state, not the aftermath of loading 100,000 Tasks in a minute: what autovacuum
    # and the checkpointer would have done by then (statistics, visibility map, dirty pages written).
    if db.backend == "postgres":
        with engine.connect() as connection:
            connection.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("VACUUM ANALYZE")
            connection.exec_driver_sql("CHECKPOINT")
    else:
        with engine.connect() as connection:
            connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()
    return {
        "end_us": end_us,
        "end": format_instant(end_us),
        "load_seconds": seconds,
        "tasks": tasks,
        "owners": len(owners),
        "span_days": span_days,
    }


def polling_queries(variant: str, owners: list[str], end_us: int, count: int = 2000) -> list[tuple[str, str]]:
    """(path, owner) pairs as manufacturers would poll: their own Tasks changed since their last poll.

    The floor rotates over the same owners, so that with authentication it carries the same tokens.
    """
    from adapter.search.dates import format_instant

    rng = random.Random(7)
    queries = []
    for _ in range(count):
        owner = rng.choice(owners)
        if variant in FLOORS:
            path = f"/bench/{variant}"
        elif variant == "lastupdated":
            # The last poll was 1 to 60 minutes ago (every minute, with misses and restarts).
            since = format_instant(end_us - rng.randint(1, 60) * 60_000_000)
            path = (
                f"/fhir/Task?owner=Organization/{owner}&_lastUpdated=gt{since}&_sort=_lastUpdated&_count=50"
            )
        else:
            token = quote(f"{MILESTONES}|{POLLED_MILESTONE}", safe="")
            path = (
                f"/fhir/Task?owner=Organization/{owner}&business-status={token}&_sort=_lastUpdated&_count=50"
            )
        queries.append((path, owner))
    return queries


def _probe(
    root: str,
    queries: list[tuple[str, str]],
    clients: auth.Clients,
    *,
    sample: int,
    budget_s: float,
    slow_s: float,
) -> dict:
    """One client, one query at a time: that the polls succeed, how many Tasks they return, how long each
    takes alone. Stops early when they are slower than `slow_s`, so that a pathological plan is reported
    and not waited for (gunicorn kills a worker after 60 s; that shows as a failed query)."""
    sizes, seconds = [], []
    started = time.monotonic()
    with requests.Session() as session:
        for path, owner in queries[:sample]:
            began = time.perf_counter()
            try:
                response = session.get(
                    root + path, timeout=120, headers=clients.header(auth.manufacturer_client(owner))
                )
                response.raise_for_status()
            except requests.RequestException as exc:
                return {
                    "queries": len(sizes) + 1,
                    "failed": f"{type(exc).__name__} after {time.perf_counter() - began:.0f} s",
                    "alone_median_ms": 1000 * (time.perf_counter() - began),
                }
            seconds.append(time.perf_counter() - began)
            entries = response.json().get("entry", [])
            sizes.append(sum(1 for e in entries if e.get("search", {}).get("mode") == "match"))
            # The first queries also warm the workers up; one hopeless query, or five slow ones, are enough.
            if seconds[-1] > 10 * slow_s or (len(seconds) >= 5 and harness.median(seconds) > slow_s):
                break
            if time.monotonic() - started > budget_s:
                break
    return {
        "queries": len(sizes),
        "mean": sum(sizes) / len(sizes),
        "max": max(sizes),
        "empty_share": sizes.count(0) / len(sizes),
        "alone_median_ms": 1000 * harness.median(seconds),
    }


def run_backend(backend: str, args: argparse.Namespace) -> dict:
    owners = [f"mfr-{i:02d}" for i in range(1, args.owners + 1)]
    rounds: dict[str, list[dict]] = {v: [] for v in VARIANTS}
    skipped: dict[str, str] = {}
    with harness.fresh_database(backend, keep=args.keep_database) as db:
        print(
            f"\n[{backend}] loading {args.tasks:,} Tasks in process (BundleProcessor, "
            f"transactions of {args.batch} Tasks)",
            flush=True,
        )
        loaded = load_tasks(db, args.tasks, owners, args.span_days, args.batch, args.search_parameters)
        print(
            f"  loaded in {loaded['load_seconds']:.0f} s; lastUpdated spread over {args.span_days:g} days "
            f"up to {loaded['end']}",
            flush=True,
        )
        queries = {v: polling_queries(v, owners, loaded["end_us"]) for v in VARIANTS}
        clients = auth.register(db.instance, owners, hospital=False)
        server = harness.Server(
            db,
            workers=args.workers,
            threads=args.server_threads,
            env={**clients.env, **harness.search_parameters_env(args)},
        )
        try:
            print(f"[{backend}] server: {server.shell_command()}", flush=True)
            clients.fetch_tokens(server.root)
            if clients.tokens:
                print(
                    "  the server requires tokens: each poll carries its manufacturer's bearer token",
                    flush=True,
                )
            loads = {
                v: loadgen.Load(
                    "GET",
                    paths=[p for p, _ in queries[v]],
                    authorizations=[
                        clients.header(auth.manufacturer_client(o)).get("Authorization", "")
                        for _, o in queries[v]
                    ],
                )
                for v in VARIANTS
            }
            probes = {
                v: _probe(
                    server.root, queries[v], clients, sample=200, budget_s=60, slow_s=args.max_query_seconds
                )
                for v in POLLS
            }
            for v, p in probes.items():
                if "failed" in p:
                    skipped[v] = f"not measured: its first query failed ({p['failed']})"
                elif p["alone_median_ms"] > 1000 * args.max_query_seconds:
                    skipped[v] = (
                        f"not measured under load: {p['alone_median_ms'] / 1000:.1f} s per query "
                        f"with no other load (limit --max-query-seconds {args.max_query_seconds:g})"
                    )
                else:
                    print(
                        f"  {LABELS[v]}: {p['mean']:.1f} Tasks per response on average, max {p['max']}, "
                        f"{100 * p['empty_share']:.0f}% empty; alone: {p['alone_median_ms']:.2f} ms "
                        f"per query (median of {p['queries']})",
                        flush=True,
                    )
                if v in skipped:
                    print(f"  {LABELS[v]}: {skipped[v]}", flush=True)
            measured = [v for v in VARIANTS if v not in skipped]
            for variant in measured:
                loadgen.run(
                    server.root,
                    loads[variant],
                    seconds=args.warmup,
                    clients=args.clients,
                    threads=args.threads,
                    use_python=args.python_client,
                )
            for number in range(args.rounds):
                order = measured[number % len(measured) :] + measured[: number % len(measured)]
                for variant in order:
                    loads[variant].first_seq = number * 397
                    waited, _ = harness.wait_for_quiet(args.quiet_wait)
                    meter = harness.CpuMeter(server)
                    meter.start()
                    result = loadgen.run(
                        server.root,
                        loads[variant],
                        seconds=args.seconds,
                        clients=args.clients,
                        threads=args.threads,
                        use_python=args.python_client,
                    )
                    cpu = meter.stop()
                    rounds[variant].append(
                        {
                            "round": number + 1,
                            **result.as_dict(),
                            "server_cpu_s": cpu["server"],
                            "postgres_cpu_s": cpu["postgres"] if backend == "postgres" else 0.0,
                            "others_share": harness.CpuMeter.others_share(cpu, result.loadgen_cpu_s),
                            "waited_for_quiet_s": waited,
                        }
                    )
                    print(
                        f"  round {number + 1} {variant:12s} {result.per_second:8.0f} queries/s  "
                        f"p50 {result.p50_ms:6.2f} ms  p99 {result.p99_ms:6.2f} ms  errors {result.errors}  "
                        f"other processes {100 * rounds[variant][-1]['others_share']:.0f}% of the CPUs",
                        flush=True,
                    )
                    if result.errors:
                        raise RuntimeError(
                            f"{result.errors} failed requests in {variant}; see {server.log.name}"
                        )
        except Exception:
            print(f"--- server log (last lines)\n{server.log_tail()}\n---", file=sys.stderr)
            raise
        finally:
            server.stop()
    summary = {}
    for variant, rows in rounds.items():
        if not rows:
            summary[variant] = {
                "skipped": skipped[variant],
                "alone_median_ms": probes[variant]["alone_median_ms"],
            }
            continue
        summary[variant] = {
            "queries_per_s": harness.median([r["per_second"] for r in rows]),
            "p50_ms": harness.median([r["p50_ms"] for r in rows]),
            "p99_ms": harness.median([r["p99_ms"] for r in rows]),
            "rounds_queries_per_s": [r["per_second"] for r in rows],
            "rounds_p99_ms": [r["p99_ms"] for r in rows],
            "server_cpu_ms_per_req": harness.median(
                [1000 * r["server_cpu_s"] / max(1, r["requests"]) for r in rows]
            ),
            "postgres_cpu_ms_per_req": harness.median(
                [1000 * r["postgres_cpu_s"] / max(1, r["requests"]) for r in rows]
            ),
            "loadgen_cpu_share": harness.median([r["loadgen_cpu_s"] / r["seconds"] for r in rows]),
            # CPU taken by processes outside the benchmark (others share the machine): high means noisy.
            "others_share": harness.median([r["others_share"] for r in rows]),
        }
    return {
        "server_command": server.shell_command(),
        "authenticated": bool(clients.tokens),
        "load": loaded,
        "probes": probes,
        "example_paths": {v: [p for p, _ in queries[v][:3]] for v in VARIANTS},
        "rounds": rounds,
        "summary": summary,
    }


def print_table(results: dict, args: argparse.Namespace, tool: str) -> None:
    print(
        f"\n== Task polling over {args.tasks:,} Tasks, {args.owners} manufacturer owners "
        f"(medians of {args.rounds} rounds x {args.seconds:g} s, {args.clients} clients) =="
    )
    print(
        f"load generator: {tool}; CPUs: {harness.machine()['cpus']}; "
        f"server: gunicorn, {harness.server_kind(args)}"
    )
    header = (
        f"{'backend':9s} {'measurement':28s} {'queries/s':>10s} {'p50 ms':>8s} {'p99 ms':>8s} "
        f"{'vs floor':>9s} {'Tasks/resp':>11s} {'app CPU ms':>11s} {'PG CPU ms':>10s} {'others':>7s}"
    )
    print(header)
    print("-" * len(header))
    for backend, data in results.items():
        floor = data["summary"]["constant"]["queries_per_s"]
        for variant in VARIANTS:
            s = data["summary"][variant]
            probe = data["probes"].get(variant)
            mean_size = f"{probe['mean']:.1f}" if probe and "mean" in probe else "-"
            if "skipped" in s:
                print(
                    f"{backend:9s} {LABELS[variant]:28s} {'-':>10s} {s['alone_median_ms']:8.0f} {'-':>8s} "
                    f"{'-':>9s} {mean_size:>11s}   (too slow: median of queries sent one at a time)"
                )
                continue
            print(
                f"{backend:9s} {LABELS[variant]:28s} {s['queries_per_s']:10.0f} {s['p50_ms']:8.2f} "
                f"{s['p99_ms']:8.2f} {s['queries_per_s'] / floor:8.2f}x "
                f"{mean_size:>11s} {s['server_cpu_ms_per_req']:11.3f} {s['postgres_cpu_ms_per_req']:10.3f} "
                f"{100 * s['others_share']:6.0f}%"
            )
    print(
        "(/bench/wsgi is answered below Flask: gunicorn and the load generator alone; /bench/constant adds "
        "the Flask request cycle with token check and audit record. "
        "vs floor = median queries/s / median constant-endpoint queries/s. Targets: >= 3,000 queries/s and "
        "p99 < 10 ms. CPU ms = CPU per request of the gunicorn workers / of all PostgreSQL processes;"
        " others = share of the CPUs used by processes outside the benchmark, where above a few % the"
        " figures are understated.)"
    )
    for backend, data in results.items():
        for variant in POLLS:
            s = data["summary"][variant]
            if "skipped" in s:
                print(f"{backend} {LABELS[variant]}: {s['skipped']} -> target NOT met")
                continue
            met = s["queries_per_s"] >= 3000 and s["p99_ms"] < 10
            print(
                f"{backend} {LABELS[variant]}: {s['queries_per_s']:.0f} queries/s, p99 {s['p99_ms']:.2f} ms "
                f"-> target {'MET' if met else 'NOT met'}"
            )


def main(argv: list[str] | None = None) -> int:
    parser = harness.http_parser("bench.polling", __doc__)
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--owners", type=int, default=20, help="manufacturer Organizations owning the Tasks")
    parser.add_argument(
        "--span-days", type=float, default=90, help="the Tasks' lastUpdated cover this many days"
    )
    parser.add_argument("--batch", type=int, default=1000, help="Tasks per transaction Bundle while loading")
    parser.add_argument(
        "--max-query-seconds",
        type=float,
        default=2.0,
        help="a variant whose queries take longer than this alone is not measured under load",
    )
    parser.add_argument(
        "--keep-database", action="store_true", help="keep the loaded database (SQLite folder, PG schema)"
    )
    args = parser.parse_args(argv)
    tool = harness.start_run("bench.polling", args.python_client)
    results = {b: run_backend(b, args) for b in harness.backends(args)}
    print_table(results, args, tool)
    harness.save_run("polling", "bench.polling", args, tool, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
