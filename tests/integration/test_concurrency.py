"""Concurrent writers against a live multi-process server: no duplicate, no lost update."""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from adapter.fhirio.jsonio import dump_json
from tests import fixtures
from tests.conftest import LiveServer

HEADERS = {"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"}


def _conditional_create(base: str, token: str, barrier, results) -> None:  # type: ignore[no-untyped-def]
    headers = dict(HEADERS, Authorization=f"Bearer {token}")
    headers["If-None-Exist"] = f"identifier={fixtures.INS_NIR}|2750399123456"
    body = dump_json(fixtures.patient())
    barrier.wait(timeout=30)
    response = requests.post(f"{base}/Patient", data=body, headers=headers, timeout=30)
    results.put((response.status_code, response.json().get("id")))


@pytest.fixture
def busy_server(database_url, tmp_path):  # type: ignore[no-untyped-def]
    server = LiveServer(database_url, tmp_path, workers=6)
    try:
        yield server
    finally:
        server.stop()


def test_parallel_conditional_creates_from_several_processes_make_one_resource(busy_server):
    token = busy_server.token()
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(20)
    results = context.Queue()
    processes = [
        context.Process(target=_conditional_create, args=(busy_server.base, token, barrier, results))
        for _ in range(20)
    ]
    for process in processes:
        process.start()
    outcomes = [results.get(timeout=60) for _ in processes]
    for process in processes:
        process.join(timeout=30)
    statuses = sorted(status for status, _ in outcomes)
    assert statuses == [200] * 19 + [201]
    assert len({ident for _, ident in outcomes}) == 1
    search = busy_server.session().get(
        f"{busy_server.base}/Patient?identifier={fixtures.INS_NIR}|2750399123456", timeout=10
    )
    assert search.json()["total"] == 1


def _increment(base: str, token: str, res_id: str, times: int) -> int:
    """Read-modify-write with If-Match, retrying on 412 as the FHIR specification recommends."""
    conflicts = 0
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    done = 0
    while done < times:
        current = session.get(f"{base}/Task/{res_id}", headers=HEADERS, timeout=10)
        task = current.json()
        task.setdefault("note", []).append({"text": f"step {len(task.get('note', []))}"})
        response = session.put(
            f"{base}/Task/{res_id}",
            data=dump_json(task),
            headers=dict(HEADERS, **{"If-Match": current.headers["ETag"]}),
            timeout=10,
        )
        if response.status_code == 412:
            conflicts += 1
            continue
        assert response.status_code == 200, response.text
        done += 1
    return conflicts


def test_concurrent_puts_with_if_match_lose_no_update(busy_server):
    session = busy_server.session()
    token = session.headers["Authorization"].split()[1]
    created = session.post(
        f"{busy_server.base}/Task", data=dump_json(fixtures.task()), headers=HEADERS, timeout=10
    ).json()
    writers, each = 6, 5
    with ThreadPoolExecutor(writers) as pool:
        conflicts = sum(
            pool.map(lambda _: _increment(busy_server.base, token, created["id"], each), range(writers))
        )
    final = session.get(f"{busy_server.base}/Task/{created['id']}", timeout=10).json()
    assert len(final["note"]) == writers * each
    assert final["meta"]["versionId"] == str(1 + writers * each)
    # Every note is there once: no writer overwrote another's step.
    assert sorted(n["text"] for n in final["note"]) == sorted(f"step {i}" for i in range(writers * each))
    history = session.get(f"{busy_server.base}/Task/{created['id']}/_history?_count=100", timeout=10).json()
    assert history["total"] == 1 + writers * each
    assert conflicts >= 0
