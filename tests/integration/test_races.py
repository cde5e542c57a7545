"""Races that EHR interfaces and manufacturer portals run into: clients that retry, poll and write in
parallel against a live multi-worker server, on SQLite and on PostgreSQL.

Every scenario releases its requests together through a barrier and is played a few rounds, each on new
resources; the tests assert outcomes only: which statuses, how many resources, and that every resource's
versions are 1..n with no gap or duplicate, its history, read and search agreeing.
"""

from __future__ import annotations

import base64
import json
import threading
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from functools import partial
from typing import Any

import pytest
import requests

from adapter.fhirio.jsonio import dump_json
from tests.conftest import LiveServer, postgres_schema

FHIR_JSON = "application/fhir+json"
RACE = "https://cart-adapter.example.org/race"
ROUNDS = 3
CLIENTS = 6
# What a client may be told when a concurrent write got in its way: try again (409, 412, 503).
RETRYABLE = (409, 412, 503)


@dataclass(frozen=True)
class Reply:
    status: int
    body: Any
    headers: dict[str, str]


class Api:
    """A FHIR client of the live server; one per test, its calls safe to make from several threads."""

    def __init__(self, base: str, token: str):
        self.base = base
        self.token = token

    def call(
        self, method: str, path: str, body: object = None, *, content_type: str = FHIR_JSON, **headers: str
    ) -> Reply:
        sent = {"Authorization": f"Bearer {self.token}", "Accept": FHIR_JSON, **headers}
        data = None
        if body is not None:
            sent["Content-Type"] = content_type
            data = dump_json(body) if content_type == FHIR_JSON else json.dumps(body)
        response = requests.request(method, f"{self.base}/{path}", data=data, headers=sent, timeout=60)
        parsed = response.json() if response.content else None
        return Reply(response.status_code, parsed, dict(response.headers))

    def ok(self, method: str, path: str, body: object = None, **headers: str) -> Any:
        reply = self.call(method, path, body, **headers)
        assert reply.status in (200, 201), (method, path, reply.status, reply.body)
        return reply.body


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def race_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    """One server of six workers for the module, on each database (as test_concurrency's busy_server):
    the scenarios work on resources of their own, and starting and stopping gunicorn for each would take
    longer than the scenario."""
    instance = tmp_path_factory.mktemp("races")
    with ExitStack() as stack:
        if request.param == "sqlite":
            url = f"sqlite:///{instance / 'store.sqlite3'}"
        else:
            url = stack.enter_context(postgres_schema(request.getfixturevalue("postgres_base_url")))
        server = LiveServer(url, instance, workers=6)
        stack.callback(server.stop)
        yield server


@pytest.fixture
def api(race_server: LiveServer) -> Api:
    return Api(race_server.base, race_server.token())


def together(calls: list[Callable[[], Reply]]) -> list[Reply]:
    """Run the calls in as many threads, released at once by a barrier; their replies in call order."""
    barrier = threading.Barrier(len(calls))

    def run(call: Callable[[], Reply]) -> Reply:
        barrier.wait(timeout=30)
        return call()

    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(run, calls))


def assert_no_server_error(replies: list[Reply]) -> None:
    errors = [(r.status, r.body) for r in replies if r.status >= 500 and r.status != 503]
    assert not errors, errors


def assert_retryable(reply: Reply) -> None:
    """A refusal caused by a concurrent write: a status the client retries on, with an OperationOutcome."""
    assert reply.status in RETRYABLE, (reply.status, reply.body)
    assert reply.body["resourceType"] == "OperationOutcome", reply.body
    if reply.status == 503:
        assert reply.headers.get("Retry-After"), reply.headers


def version_of(reply: Reply) -> int:
    etag = reply.headers["ETag"]
    assert etag.startswith('W/"') and etag.endswith('"'), etag
    return int(etag[3:-1])


def assert_consistent(api: Api, res_type: str, res_id: str) -> list[dict]:
    """The resource's versions are 1..n, each once; read, vread, search and history agree on the last.

    Returns the history entries, oldest first."""
    history = api.ok("GET", f"{res_type}/{res_id}/_history?_count=1000")
    entries = history["entry"]
    versions = [int(e["response"]["etag"][3:-1]) for e in entries]
    assert versions == list(range(len(entries), 0, -1)), versions  # newest first, no gap, no duplicate
    assert history["total"] == len(entries)
    methods = [e["request"]["method"] for e in reversed(entries)]
    # Deleting a deleted resource writes nothing: a deletion never follows another.
    assert all(not (a == b == "DELETE") for a, b in zip(methods, methods[1:], strict=False)), methods
    latest = entries[0]
    read = api.call("GET", f"{res_type}/{res_id}")
    found = api.ok("GET", f"{res_type}?_id={res_id}")
    if latest["request"]["method"] == "DELETE":
        assert read.status == 410, (read.status, read.body)
        assert found["total"] == 0
    else:
        assert read.status == 200, (read.status, read.body)
        assert version_of(read) == len(entries)
        assert read.body == latest["resource"]
        assert read.body["meta"]["versionId"] == str(len(entries))
        assert [e["resource"] for e in found["entry"]] == [read.body]
        vread = api.ok("GET", f"{res_type}/{res_id}/_history/{len(entries)}")
        assert vread == read.body
    return list(reversed(entries))


def patient(value: str, *, res_id: str | None = None, given: str = "Race") -> dict:
    body: dict = {
        "resourceType": "Patient",
        "identifier": [{"system": RACE, "value": value}],
        "name": [{"family": "Testrace", "given": [given]}],
        "gender": "female",
    }
    if res_id:
        body["id"] = res_id
    return body


def task(patient_id: str, owner: str) -> dict:
    return {
        "resourceType": "Task",
        "status": "requested",
        "intent": "order",
        "for": {"reference": f"Patient/{patient_id}"},
        "owner": {"reference": owner},
        "note": [{"text": "created"}],
    }


def observation(subject: str) -> dict:
    return {
        "resourceType": "Observation",
        "status": "final",
        "code": {"text": "CD19+ cell count"},
        "subject": {"reference": subject},
    }


def entry(method: str, url: str, resource: dict | None = None, full_url: str | None = None, **request: str):  # type: ignore[no-untyped-def]
    out: dict = {"request": {"method": method, "url": url, **request}}
    if resource is not None:
        out["resource"] = resource
    if full_url:
        out["fullUrl"] = full_url
    return out


def transaction(*entries: dict) -> dict:
    return {"resourceType": "Bundle", "type": "transaction", "entry": list(entries)}


def new_id() -> str:
    return f"race-{uuid.uuid4().hex[:16]}"


def location_id(location: str) -> str:
    return location.split("/_history/")[0].rsplit("/", 1)[1]


# -- update as create, conditional update ---------------------------------------------------------------


def test_parallel_update_as_create_of_one_new_id_creates_once_and_numbers_every_version(api):
    for _ in range(ROUNDS):
        res_id = new_id()
        body = patient(res_id, res_id=res_id)
        replies = together([partial(api.call, "PUT", f"Patient/{res_id}", body)] * CLIENTS)
        assert_no_server_error(replies)
        assert sorted(r.status for r in replies) == [200] * (CLIENTS - 1) + [201], [r.body for r in replies]
        # Each PUT wrote its own version: 1 (the creation) to n.
        assert sorted(version_of(r) for r in replies) == list(range(1, CLIENTS + 1))
        assert [version_of(r) for r in replies if r.status == 201] == [1]
        assert_consistent(api, "Patient", res_id)
        assert api.ok("GET", f"Patient?identifier={RACE}|{res_id}")["total"] == 1


def test_parallel_put_if_none_match_star_creates_once_and_refuses_the_others(api):
    for _ in range(ROUNDS):
        res_id = new_id()
        body = patient(res_id, res_id=res_id)
        replies = together(
            [partial(api.call, "PUT", f"Patient/{res_id}", body, **{"If-None-Match": "*"})] * CLIENTS
        )
        assert sorted(r.status for r in replies) == [201] + [412] * (CLIENTS - 1), [r.body for r in replies]
        for reply in replies:
            if reply.status == 412:
                assert_retryable(reply)
        assert len(assert_consistent(api, "Patient", res_id)) == 1


def test_parallel_conditional_updates_and_creates_on_a_new_identifier_make_one_resource(api):
    for _ in range(ROUNDS):
        value = new_id()
        body = patient(value)
        query = f"identifier={RACE}|{value}"
        calls = [partial(api.call, "PUT", f"Patient?{query}", body)] * (CLIENTS // 2) + [
            partial(api.call, "POST", "Patient", body, **{"If-None-Exist": query})
        ] * (CLIENTS - CLIENTS // 2)
        replies = together(calls)
        assert_no_server_error(replies)
        assert sorted(r.status for r in replies).count(201) == 1, [(r.status, r.body) for r in replies]
        assert all(r.status in (200, 201) for r in replies), [(r.status, r.body) for r in replies]
        assert len({r.body["id"] for r in replies}) == 1
        found = api.ok("GET", f"Patient?{query}")
        assert found["total"] == 1
        res_id = found["entry"][0]["resource"]["id"]
        history = assert_consistent(api, "Patient", res_id)
        # One creation; then a conditional create that found the patient wrote nothing, and every
        # conditional update that found it wrote a version.
        updates = sum(1 for r in replies[: CLIENTS // 2] if r.status == 200)
        assert len(history) == 1 + updates


def test_parallel_puts_without_if_match_each_write_their_own_version(api):
    res_id = new_id()
    api.ok("PUT", f"Patient/{res_id}", patient(res_id, res_id=res_id))
    for round_ in range(ROUNDS):
        calls = [
            partial(api.call, "PUT", f"Patient/{res_id}", patient(res_id, res_id=res_id, given=f"W{n}"))
            for n in range(CLIENTS)
        ]
        replies = together(calls)
        assert all(r.status == 200 for r in replies), [(r.status, r.body) for r in replies]
        first = 2 + round_ * CLIENTS
        assert sorted(version_of(r) for r in replies) == list(range(first, first + CLIENTS))
        assert len(assert_consistent(api, "Patient", res_id)) == first + CLIENTS - 1


# -- deletes --------------------------------------------------------------------------------------------


def test_parallel_conditional_deletes_delete_once(api):
    for _ in range(ROUNDS):
        value = new_id()
        created = api.ok("POST", "Patient", patient(value))
        replies = together([partial(api.call, "DELETE", f"Patient?identifier={RACE}|{value}")] * CLIENTS)
        assert all(r.status in (200, 204) for r in replies), [(r.status, r.body) for r in replies]
        history = assert_consistent(api, "Patient", created["id"])
        assert [e["request"]["method"] for e in history] == ["POST", "DELETE"]


def test_deletes_racing_puts_on_one_resource_leave_a_contiguous_history(api):
    for _ in range(ROUNDS):
        res_id = new_id()
        api.ok("PUT", f"Patient/{res_id}", patient(res_id, res_id=res_id))
        calls = [
            partial(api.call, "DELETE", f"Patient/{res_id}")
            if n % 2
            else partial(api.call, "PUT", f"Patient/{res_id}", patient(res_id, res_id=res_id, given=f"W{n}"))
            for n in range(CLIENTS)
        ]
        replies = together(calls)
        assert_no_server_error(replies)
        for n, reply in enumerate(replies):
            assert reply.status in ((200, 204) if n % 2 else (200, 201)), (n, reply.status, reply.body)
        history = assert_consistent(api, "Patient", res_id)
        puts = [version_of(r) for n, r in enumerate(replies) if n % 2 == 0]
        assert len(set(puts)) == len(puts)
        # A PUT that answered 201 brought the resource back: the version before it is a deletion.
        for reply in replies[::2]:
            version = version_of(reply)
            was_deleted = history[version - 2]["request"]["method"] == "DELETE"
            assert (reply.status == 201) == was_deleted, (version, reply.status, history)


def test_conditional_delete_racing_conditional_update_on_one_identifier(api):
    for _ in range(ROUNDS):
        value = new_id()
        query = f"identifier={RACE}|{value}"
        api.ok("POST", "Patient", patient(value))
        calls = [
            partial(api.call, "DELETE", f"Patient?{query}")
            if n % 2
            else partial(api.call, "PUT", f"Patient?{query}", patient(value, given=f"W{n}"))
            for n in range(CLIENTS)
        ]
        replies = together(calls)
        assert_no_server_error(replies)
        assert all(r.status in (200, 201, 204) for r in replies), [(r.status, r.body) for r in replies]
        # However they interleave, at most one resource holds the identifier, and every one written is
        # consistent (a conditional update after the deletion creates a new resource).
        ids = {r.body["id"] for r in replies if r.status in (200, 201)}
        for res_id in ids:
            assert_consistent(api, "Patient", res_id)
        assert api.ok("GET", f"Patient?{query}")["total"] <= 1


# -- transactions ---------------------------------------------------------------------------------------


def opposite_orders(first: str, second: str) -> list[tuple[str, str]]:
    return [(first, second) if n % 2 else (second, first) for n in range(CLIENTS)]


def test_transactions_updating_two_resources_in_opposite_orders_all_succeed_all_or_nothing(api):
    # Each Bundle locks what it writes, entry after entry: in opposite orders, two of them would each hold
    # the resource the other waits for. PostgreSQL would end one as a deadlock after a second, a 503; the
    # locks are taken in one order instead, and every Bundle goes through.
    first, second = new_id(), new_id()
    for res_id in (first, second):
        api.ok("PUT", f"Patient/{res_id}", patient(res_id, res_id=res_id))

    def bundle(marker: str, order: tuple[str, str]) -> dict:
        return transaction(*(entry("PUT", f"Patient/{i}", patient(i, res_id=i, given=marker)) for i in order))

    markers: list[str] = []
    for round_ in range(ROUNDS):
        sent = [(f"R{round_}B{n}", order) for n, order in enumerate(opposite_orders(first, second))]
        replies = together([partial(api.call, "POST", "", bundle(m, o)) for m, o in sent])
        assert all(r.status == 200 for r in replies), [(r.status, r.body) for r in replies]
        for reply in replies:
            assert [e["response"]["status"][:3] for e in reply.body["entry"]] == ["200", "200"]
        markers += [m for m, _ in sent]
    # Every Bundle wrote a version of both patients.
    for res_id in (first, second):
        history = assert_consistent(api, "Patient", res_id)
        written = [e["resource"]["name"][0]["given"][0] for e in history[1:]]
        assert sorted(written) == sorted(markers)


def test_transactions_creating_two_new_ids_in_opposite_orders_create_each_once(api):
    for _ in range(ROUNDS):
        first, second = new_id(), new_id()
        bundles = [
            transaction(*(entry("PUT", f"Patient/{i}", patient(i, res_id=i)) for i in order))
            for order in opposite_orders(first, second)
        ]
        replies = together([partial(api.call, "POST", "", b) for b in bundles])
        assert all(r.status == 200 for r in replies), [(r.status, r.body) for r in replies]
        for res_id in (first, second):
            statuses = [
                e["response"]["status"][:3]
                for r in replies
                for e in r.body["entry"]
                if location_id(e["response"]["location"]) == res_id
            ]
            assert sorted(statuses) == ["200"] * (CLIENTS - 1) + ["201"]
            assert len(assert_consistent(api, "Patient", res_id)) == CLIENTS


def test_transactions_with_if_none_exist_on_two_identifiers_in_opposite_orders_make_one_of_each(api):
    for _ in range(ROUNDS):
        first, second = new_id(), new_id()
        bundles = [
            transaction(
                *(entry("POST", "Patient", patient(v), ifNoneExist=f"identifier={RACE}|{v}") for v in order)
            )
            for order in opposite_orders(first, second)
        ]
        replies = together([partial(api.call, "POST", "", b) for b in bundles])
        assert all(r.status == 200 for r in replies), [(r.status, r.body) for r in replies]
        for value in (first, second):
            found = api.ok("GET", f"Patient?identifier={RACE}|{value}")
            assert found["total"] == 1
            assert len(assert_consistent(api, "Patient", found["entry"][0]["resource"]["id"])) == 1


def test_transactions_deleting_and_updating_in_opposite_orders_all_succeed(api):
    # DELETE entries run before PUT entries: "delete A, update B" and "delete B, update A" lock A and B
    # in opposite orders.
    for _ in range(ROUNDS):
        first, second = new_id(), new_id()
        for res_id in (first, second):
            api.ok("PUT", f"Patient/{res_id}", patient(res_id, res_id=res_id))
        bundles = [
            transaction(
                entry("DELETE", f"Patient/{gone}"),
                entry("PUT", f"Patient/{kept}", patient(kept, res_id=kept)),
            )
            for gone, kept in opposite_orders(first, second)
        ]
        replies = together([partial(api.call, "POST", "", b) for b in bundles])
        assert all(r.status == 200 for r in replies), [(r.status, r.body) for r in replies]
        for res_id in (first, second):
            history = assert_consistent(api, "Patient", res_id)
            # Three Bundles deleted it and three updated it (201 when it was deleted).
            assert sum(1 for e in history if e["request"]["method"] == "PUT") == 1 + CLIENTS // 2


def test_batches_updating_two_resources_in_opposite_orders_all_succeed(api):
    # A batch runs in one database transaction too: a deadlock would fail every one of its entries.
    first, second = new_id(), new_id()
    for res_id in (first, second):
        api.ok("PUT", f"Patient/{res_id}", patient(res_id, res_id=res_id))
    for _ in range(ROUNDS):
        bundles = [
            {
                "resourceType": "Bundle",
                "type": "batch",
                "entry": [entry("PUT", f"Patient/{i}", patient(i, res_id=i)) for i in order],
            }
            for order in opposite_orders(first, second)
        ]
        replies = together([partial(api.call, "POST", "", b) for b in bundles])
        assert all(r.status == 200 for r in replies), [(r.status, r.body) for r in replies]
        statuses = [e["response"]["status"][:3] for r in replies for e in r.body["entry"]]
        assert statuses == ["200"] * 2 * CLIENTS
    for res_id in (first, second):
        assert len(assert_consistent(api, "Patient", res_id)) == 1 + ROUNDS * CLIENTS


def test_parallel_transactions_with_if_none_exist_on_one_identifier_make_one_patient(api):
    for _ in range(ROUNDS):
        value = new_id()
        query = f"identifier={RACE}|{value}"
        bundles = [
            transaction(
                entry("POST", "Patient", patient(value), urn, ifNoneExist=query),
                entry("POST", "Observation", observation(urn)),
            )
            for urn in (f"urn:uuid:{uuid.uuid4()}" for _ in range(CLIENTS))
        ]
        replies = together([partial(api.call, "POST", "", bundle) for bundle in bundles])
        assert all(r.status == 200 for r in replies), [(r.status, r.body) for r in replies]
        patient_statuses = sorted(r.body["entry"][0]["response"]["status"][:3] for r in replies)
        assert patient_statuses == ["200"] * (CLIENTS - 1) + ["201"]
        ids = {location_id(r.body["entry"][0]["response"]["location"]) for r in replies}
        assert len(ids) == 1
        (res_id,) = ids
        assert api.ok("GET", f"Patient?{query}")["total"] == 1
        assert len(assert_consistent(api, "Patient", res_id)) == 1
        observations = api.ok("GET", f"Observation?subject=Patient/{res_id}")
        assert observations["total"] == CLIENTS


def test_conditional_references_while_the_patient_is_being_created(api):
    for _ in range(ROUNDS):
        value = new_id()
        query = f"identifier={RACE}|{value}"
        create = transaction(entry("POST", "Patient", patient(value), ifNoneExist=query))
        refer = transaction(entry("POST", "Observation", observation(f"Patient?{query}")))
        calls = [partial(api.call, "POST", "", create)] + [partial(api.call, "POST", "", refer)] * (
            CLIENTS - 1
        )
        replies = together(calls)
        assert_no_server_error(replies)
        assert replies[0].status == 200, replies[0].body
        res_id = location_id(replies[0].body["entry"][0]["response"]["location"])
        resolved = 0
        for reply in replies[1:]:
            if reply.status == 200:
                obs_id = location_id(reply.body["entry"][0]["response"]["location"])
                stored = api.ok("GET", f"Observation/{obs_id}")
                assert stored["subject"] == {"reference": f"Patient/{res_id}"}
                resolved += 1
            else:
                # Before the patient was committed the reference matched nothing: the transaction fails.
                assert reply.status == 412, (reply.status, reply.body)
                assert reply.body["resourceType"] == "OperationOutcome"
        assert api.ok("GET", f"Observation?subject=Patient/{res_id}")["total"] == resolved
        assert len(assert_consistent(api, "Patient", res_id)) == 1


# -- patch ----------------------------------------------------------------------------------------------


def _json_patch(api: Api, res_id: str, n: int, **headers: str) -> Reply:
    operations = [{"op": "add", "path": "/note/-", "value": {"text": f"note {n}"}}]
    return api.call(
        "PATCH", f"Task/{res_id}", operations, content_type="application/json-patch+json", **headers
    )


def test_parallel_json_patches_without_if_match_all_apply(api):
    patient_id = api.ok("POST", "Patient", patient(new_id()))["id"]
    for _ in range(ROUNDS):
        res_id = api.ok("POST", "Task", task(patient_id, "Organization/kite-eu"))["id"]
        replies = together([partial(_json_patch, api, res_id, n) for n in range(CLIENTS)])
        # No If-Match: each patch applies to the version current when it runs; none is lost or refused.
        assert all(r.status == 200 for r in replies), [(r.status, r.body) for r in replies]
        assert sorted(version_of(r) for r in replies) == list(range(2, CLIENTS + 2))
        history = assert_consistent(api, "Task", res_id)
        notes = [n["text"] for n in history[-1]["resource"]["note"]]
        assert sorted(notes) == sorted(["created"] + [f"note {n}" for n in range(CLIENTS)])


def test_parallel_json_patches_with_one_if_match_apply_once(api):
    patient_id = api.ok("POST", "Patient", patient(new_id()))["id"]
    for _ in range(ROUNDS):
        res_id = api.ok("POST", "Task", task(patient_id, "Organization/kite-eu"))["id"]
        replies = together(
            [partial(_json_patch, api, res_id, n, **{"If-Match": 'W/"1"'}) for n in range(CLIENTS)]
        )
        assert sorted(r.status for r in replies) == [200] + [412] * (CLIENTS - 1), [r.body for r in replies]
        for reply in replies:
            if reply.status != 200:
                assert_retryable(reply)
        history = assert_consistent(api, "Task", res_id)
        assert len(history) == 2
        assert len(history[-1]["resource"]["note"]) == 2


def test_parallel_json_patches_in_transactions_all_apply(api):
    patient_id = api.ok("POST", "Patient", patient(new_id()))["id"]
    res_id = api.ok("POST", "Task", task(patient_id, "Organization/kite-eu"))["id"]

    def bundle(n: int) -> dict:
        operations = [{"op": "add", "path": "/note/-", "value": {"text": f"note {n}"}}]
        binary = {
            "resourceType": "Binary",
            "contentType": "application/json-patch+json",
            "data": base64.b64encode(json.dumps(operations).encode()).decode(),
        }
        return transaction(entry("PATCH", f"Task/{res_id}", binary))

    replies = together([partial(api.call, "POST", "", bundle(n)) for n in range(CLIENTS)])
    assert all(r.status == 200 for r in replies), [(r.status, r.body) for r in replies]
    history = assert_consistent(api, "Task", res_id)
    assert len(history) == CLIENTS + 1


# -- access labels --------------------------------------------------------------------------------------


def test_parallel_tasks_of_a_new_owner_for_one_patient_are_all_created(api):
    # Each Task shares its patient with the manufacturer owning it: the first Tasks of a new owner, written
    # at once, all give the patient that owner's label.
    patient_id = api.ok("POST", "Patient", patient(new_id()))["id"]
    for round_ in range(ROUNDS):
        owner = f"Organization/maker-{round_}-{uuid.uuid4().hex[:8]}"
        replies = together([partial(api.call, "POST", "Task", task(patient_id, owner))] * CLIENTS)
        assert all(r.status == 201 for r in replies), [(r.status, r.body) for r in replies]
        assert api.ok("GET", f"Task?owner={owner}")["total"] == CLIENTS
    assert_consistent(api, "Patient", patient_id)
