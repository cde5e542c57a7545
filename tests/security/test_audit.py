"""The audit trail of a full order: who did what, when, with which outcome — failures and refusals too."""

from __future__ import annotations

import base64

from tests.security.conftest import World


def _events(world: World, **params: str) -> list[dict]:
    query = "&".join(f"{k.replace('_', '-')}={v}" for k, v in params.items())
    response = world.admin("GET", f"/fhir/AuditEvent?_count=200&{query}")
    assert response.status_code == 200
    return [e["resource"] for e in response.get_json().get("entry", [])]


def _summary(event: dict) -> tuple:
    entity = (event.get("entity") or [{}])[0].get("what", {})
    return (
        event["agent"][0].get("name"),
        event.get("subtype", [{}])[0].get("code", event["type"]["code"]),
        entity.get("reference") or entity.get("display"),
        event["outcome"],
    )


def test_audit_trail_of_a_full_order(world: World) -> None:
    task_id, patient_id = world.ids["tx1"], world.ids["px1"]
    # The manufacturer polls, reads what it needs, moves the milestone; then tries something else.
    world.maker_a("GET", "/fhir/Task?_lastUpdated=gt2020-01-01")
    world.maker_a("GET", f"/fhir/Patient/{patient_id}")
    task = world.maker_a("GET", f"/fhir/Task/{task_id}").get_json()
    task["businessStatus"] = {"text": "apheresis-scheduled"}
    assert world.maker_a("PUT", f"/fhir/Task/{task_id}", task).status_code == 200
    assert world.maker_a("GET", f"/fhir/Patient/{world.ids['py1']}").status_code == 404
    world.admin.client.get("/fhir/Task", headers={"Authorization": "Bearer forged"})

    hospital = {_summary(e) for e in _events(world, agent_name="hcl")}
    assert ("hcl", "create", f"Patient/{patient_id}", "0") in hospital
    assert ("hcl", "create", f"Task/{task_id}", "0") in hospital

    maker = [_summary(e) for e in _events(world, agent_name="maker-a")]
    assert ("maker-a", "search-type", "Task", "0") in maker
    assert ("maker-a", "read", f"Patient/{patient_id}", "0") in maker
    assert ("maker-a", "update", f"Task/{task_id}", "0") in maker
    assert ("maker-a", "read", f"Patient/{world.ids['py1']}", "4") in maker

    per_task = [_summary(e) for e in _events(world, entity=f"Task/{task_id}")]
    assert [s[0] for s in per_task].count("maker-a") == 2  # read and update
    refused = [e for e in _events(world) if e["type"]["code"] == "110114" and e["outcome"] != "0"]
    assert refused, "the refused login is in the trail"


def test_audit_events_record_time_source_and_query(world: World) -> None:
    world.maker_a("GET", "/fhir/Task?status=requested")
    (event,) = [
        e
        for e in _events(world, agent_name="maker-a")
        if e.get("subtype", [{}])[0].get("code") == "search-type"
    ]
    assert event["recorded"].endswith("Z")
    assert event["agent"][0]["network"]["address"] == "127.0.0.1"
    assert event["agent"][0]["role"][0]["text"] == "manufacturer"
    assert base64.b64decode(event["entity"][0]["query"]).decode() == "status=requested"


def test_failed_write_is_still_audited(world: World) -> None:
    bad = {"resourceType": "Patient", "birthDate": "not a date"}
    assert world.hospital_x("POST", "/fhir/Patient", bad).status_code == 422
    failures = [_summary(e) for e in _events(world, agent_name="hcl") if e["outcome"] != "0"]
    assert ("hcl", "create", "Patient", "4") in failures


def test_audit_event_can_be_read_by_id(world: World) -> None:
    event = _events(world, agent_name="hcl")[0]
    read = world.admin("GET", f"/fhir/AuditEvent/{event['id']}")
    assert read.status_code == 200 and read.get_json() == event
    assert world.hospital_x("GET", f"/fhir/AuditEvent/{event['id']}").status_code == 403


def test_audit_event_ids_are_version_7_uuids_that_grow_with_time() -> None:
    import time
    import uuid

    from adapter.security.audit import AuditRecord, audit_event
    from adapter.store.ids import time_ordered_uuid

    before_ms = time.time_ns() // 1_000_000
    first = time_ordered_uuid()
    ids = [time_ordered_uuid() for _ in range(1000)]
    time.sleep(0.002)
    later = time_ordered_uuid()
    after_ms = time.time_ns() // 1_000_000
    for value in [first, later, *ids]:
        assert value.version == 7
        assert value.variant == uuid.RFC_4122
        assert before_ms <= value.int >> 80 <= after_ms
    assert len(set(ids)) == 1000
    assert first.int >> 80 < later.int >> 80 and str(first) < str(later)
    event = audit_event(AuditRecord("read", 200, time.time_ns() // 1000))
    assert uuid.UUID(event["id"]).version == 7


def _request_ids(event: dict) -> list[str]:
    return [
        detail["valueString"]
        for entity in event.get("entity", [])
        for detail in entity.get("detail", [])
        if detail.get("type") == "X-Request-Id"
    ]


def test_the_clients_request_id_comes_back_and_leads_to_the_audit_record(world: World) -> None:
    response = world.maker_a("GET", "/fhir/Task?status=requested", **{"X-Request-Id": "mfr-a poll 0042"})
    assert response.headers["X-Request-Id"] == "mfr-a poll 0042"
    (event,) = [e for e in _events(world, agent_name="maker-a") if "mfr-a poll 0042" in _request_ids(e)]
    assert event["subtype"][0]["code"] == "search-type"


def test_the_server_assigns_a_request_id_when_the_client_gives_none_or_an_unusable_one(
    world: World,
) -> None:
    assigned = []
    for given in (None, "", "   ", "x" * 201, "caf\u00e9"):
        headers = {} if given is None else {"X-Request-Id": given}
        response = world.maker_a("GET", "/fhir/Task", **headers)
        assert response.status_code == 200
        assigned.append(response.headers["X-Request-Id"])
    assert all(len(value) == 32 and value.isalnum() for value in assigned)
    assert len(set(assigned)) == len(assigned)  # one per request
    recorded = {i for e in _events(world, agent_name="maker-a") for i in _request_ids(e)}
    assert set(assigned) <= recorded
    # A refusal carries one too, and its audit record (a failed login) keeps it.
    refused = world.admin.client.get("/fhir/Task", headers={"Authorization": "Bearer forged"})
    assert refused.status_code == 401
    logins = [e for e in _events(world) if e["type"]["code"] == "110114" and e["outcome"] != "0"]
    assert any(refused.headers["X-Request-Id"] in _request_ids(e) for e in logins)


def test_a_compartment_search_is_recorded_against_the_compartment(world: World) -> None:
    patient = world.ids["px1"]
    url = f"/fhir/Patient/{patient}/ServiceRequest?status=active"
    assert world.maker_a("GET", url).status_code == 200
    (event,) = [
        e
        for e in _events(world, entity=f"Patient/{patient}")
        if _summary(e) == ("maker-a", "search", f"Patient/{patient}", "0")
    ]
    assert base64.b64decode(event["entity"][0]["query"]).decode() == "ServiceRequest?status=active"


def test_everything_is_recorded_as_an_operation_on_the_patient(world: World) -> None:
    patient = world.ids["px1"]
    assert world.maker_a("GET", f"/fhir/Patient/{patient}/$everything?_type=Task").status_code == 200
    (event,) = [
        e
        for e in _events(world, entity=f"Patient/{patient}")
        if _summary(e) == ("maker-a", "operation", f"Patient/{patient}", "0")
    ]
    assert base64.b64decode(event["entity"][0]["query"]).decode() == "$everything?_type=Task"


def test_a_search_sent_as_a_form_is_recorded_with_its_criteria(world: World) -> None:
    response = world.maker_a.client.post(
        "/fhir/Task/_search?_count=5",
        data={"status": "requested"},
        headers={"Authorization": world.maker_a.authorization},
    )
    assert response.status_code == 200
    queries = [
        base64.b64decode(e["entity"][0]["query"]).decode()
        for e in _events(world, agent_name="maker-a")
        if e.get("subtype", [{}])[0].get("code") == "search-type"
    ]
    assert "_count=5&status=requested" in queries
