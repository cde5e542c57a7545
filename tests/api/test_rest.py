"""The FHIR REST interactions over the Flask test client, on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest

from adapter.fhirio.jsonio import dump_json, parse_json
from adapter.fhirio.xml import serialise_xml
from adapter.store.engine import make_engine
from tests import fixtures
from tests.api.helpers import send


def _create(client, resource):  # type: ignore[no-untyped-def]
    response = send(client, "POST", f"/fhir/{resource['resourceType']}", resource)
    assert response.status_code == 201, response.data
    return response


def test_metadata_lists_only_supported_interactions_and_formats(client):
    response = client.get("/fhir/metadata")
    assert response.status_code == 200
    statement = response.get_json()
    assert statement["fhirVersion"] == "4.0.1"
    assert set(statement["format"]) == {"application/fhir+json", "application/fhir+xml"}
    rest = statement["rest"][0]
    task = next(r for r in rest["resource"] if r["type"] == "Task")
    params = {p["name"] for p in task["searchParam"]}
    assert {"_id", "_lastUpdated", "identifier", "owner", "focus", "based-on", "business-status"} <= params
    assert "patch" in {i["code"] for i in task["interaction"]}
    assert statement["patchFormat"] == [
        "application/json-patch+json",
        "application/fhir+json",
        "application/fhir+xml",
    ]
    assert {"transaction", "batch"} <= {i["code"] for i in rest["interaction"]}


def test_create_assigns_id_version_and_headers(client):
    response = _create(client, fixtures.patient())
    body = response.get_json()
    assert body["id"] and body["meta"]["versionId"] == "1"
    assert response.headers["ETag"] == 'W/"1"'
    assert response.headers["Location"].endswith(f"/fhir/Patient/{body['id']}/_history/1")
    assert response.headers["Last-Modified"]
    assert response.headers["Content-Type"].startswith("application/fhir+json")


def test_server_assigned_ids_grow_with_time_except_patients(client):
    # Ids that grow with time land at the end of every index on them (fewer pages written per Bundle);
    # the random part keeps them unguessable. A Patient's id is random: manufacturers see patients'
    # ids, and a time-ordered one would tell them when the hospital first recorded each patient.
    first = uuid.UUID(_create(client, fixtures.task(order="ORD-T0")).get_json()["id"])
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"resource": fixtures.task(order=f"ORD-T{n}"), "request": {"method": "POST", "url": "Task"}}
            for n in (1, 2)
        ]
        + [{"resource": fixtures.patient(), "request": {"method": "POST", "url": "Patient"}}],
    }
    response = send(client, "POST", "/fhir", bundle)
    assert response.status_code == 200, response.data
    locations = [e["response"]["location"] for e in response.get_json()["entry"]]
    later = [uuid.UUID(loc.split("Task/")[1].split("/")[0]) for loc in locations[:2]]
    assert {first.version, *(i.version for i in later)} == {7}
    assert all(i.int >> 80 >= first.int >> 80 for i in later)  # the 48-bit millisecond prefix
    assert len({first, *later}) == 3
    patients = [
        uuid.UUID(locations[2].split("Patient/")[1].split("/")[0]),
        uuid.UUID(_create(client, fixtures.patient(ins="2750399123457")).get_json()["id"]),
    ]
    assert {p.version for p in patients} == {4}


def test_create_ignores_client_id(client):
    resource = dict(fixtures.patient(), id="chosen-by-client")
    body = _create(client, resource).get_json()
    assert body["id"] != "chosen-by-client"


def test_read_returns_resource_as_stored_with_decimal_precision(client):
    created = _create(client, fixtures.observation("1.50")).get_json()
    response = client.get(f"/fhir/Observation/{created['id']}")
    assert response.status_code == 200
    assert b'"value":1.50' in response.data
    assert parse_json(response.data)["valueQuantity"]["value"] == Decimal("1.50")


def test_primitive_extension_inside_extension_is_accepted_and_kept(client):
    patient = fixtures.patient()
    patient["extension"] = [
        {
            "url": "https://example.org/StructureDefinition/birth-place-label",
            "valueString": "Lyon 3e",
            "_valueString": {"extension": [{"url": "https://example.org/source", "valueCode": "insi"}]},
        }
    ]
    created = _create(client, patient).get_json()
    stored = client.get(f"/fhir/Patient/{created['id']}").get_json()
    assert stored["extension"] == patient["extension"]


def test_read_unknown_is_404_operation_outcome(client):
    response = client.get("/fhir/Patient/does-not-exist")
    assert response.status_code == 404
    assert response.get_json()["resourceType"] == "OperationOutcome"


def test_unknown_type_is_404(client):
    response = send(client, "POST", "/fhir/Spaceship", {"resourceType": "Spaceship"})
    assert response.status_code == 404
    assert response.get_json()["issue"][0]["code"] == "not-found"


def test_update_creates_new_version_and_vread_returns_old(client):
    created = _create(client, fixtures.patient()).get_json()
    changed = dict(created, gender="male")
    response = send(client, "PUT", f"/fhir/Patient/{created['id']}", changed)
    assert response.status_code == 200
    assert response.headers["ETag"] == 'W/"2"'
    assert response.get_json()["meta"]["versionId"] == "2"
    old = client.get(f"/fhir/Patient/{created['id']}/_history/1").get_json()
    assert old["gender"] == "female"
    assert client.get(f"/fhir/Patient/{created['id']}").get_json()["gender"] == "male"


def test_update_as_create_uses_client_id(client):
    resource = dict(fixtures.organization(), id="hcl-lyon")
    response = send(client, "PUT", "/fhir/Organization/hcl-lyon", resource)
    assert response.status_code == 201
    assert client.get("/fhir/Organization/hcl-lyon").status_code == 200


def test_update_with_mismatched_id_is_400(client):
    response = send(client, "PUT", "/fhir/Organization/a", dict(fixtures.organization(), id="b"))
    assert response.status_code == 400
    assert response.get_json()["issue"][0]["expression"] == ["id"]


def test_if_match_conflict_is_412_and_keeps_current_version(client):
    created = _create(client, fixtures.patient()).get_json()
    url = f"/fhir/Patient/{created['id']}"
    ok = send(client, "PUT", url, dict(created, gender="male"), If_Match='W/"1"')
    assert ok.status_code == 200
    stale = send(client, "PUT", url, dict(created, gender="other"), If_Match='W/"1"')
    assert stale.status_code == 412
    assert stale.get_json()["resourceType"] == "OperationOutcome"
    assert client.get(url).get_json()["gender"] == "male"


def test_if_none_match_on_read_gives_304(client):
    created = _create(client, fixtures.patient()).get_json()
    url = f"/fhir/Patient/{created['id']}"
    assert client.get(url, headers={"If-None-Match": 'W/"1"'}).status_code == 304
    assert client.get(url, headers={"If-None-Match": 'W/"7"'}).status_code == 200


def test_if_modified_since_on_read_gives_304_until_the_resource_changes(client):
    created = _create(client, fixtures.patient()).get_json()
    url = f"/fhir/Patient/{created['id']}"
    last_modified = client.get(url).headers["Last-Modified"]
    unchanged = client.get(url, headers={"If-Modified-Since": last_modified})
    assert unchanged.status_code == 304 and unchanged.headers["ETag"] == 'W/"1"'
    before = "Mon, 02 Mar 2026 09:30:00 GMT"
    assert client.get(url, headers={"If-Modified-Since": before}).status_code == 200
    assert client.get(url, headers={"If-Modified-Since": "not a date"}).status_code == 200
    statement = client.get("/fhir/metadata").get_json()
    patient = next(r for r in statement["rest"][0]["resource"] if r["type"] == "Patient")
    assert patient["conditionalRead"] == "full-support"  # both If-Modified-Since and If-None-Match


def test_delete_then_read_is_410_and_history_shows_delete(client):
    created = _create(client, fixtures.patient()).get_json()
    url = f"/fhir/Patient/{created['id']}"
    assert client.delete(url).status_code == 204
    assert client.get(url).status_code == 410
    history = client.get(f"{url}/_history").get_json()
    assert history["type"] == "history"
    assert [e["request"]["method"] for e in history["entry"]] == ["DELETE", "POST"]
    assert "resource" not in history["entry"][0]
    assert client.delete(url).status_code == 204
    # Recreating a deleted resource with PUT is a creation again.
    again = send(client, "PUT", url, dict(fixtures.patient(), id=created["id"]))
    assert again.status_code == 201
    assert again.get_json()["meta"]["versionId"] == "3"


def test_type_history_lists_versions_newest_first_with_since(client):
    first = _create(client, fixtures.organization("690781810")).get_json()
    second = _create(client, fixtures.organization("750712184", "AP-HP Saint-Louis")).get_json()
    history = client.get("/fhir/Organization/_history").get_json()
    assert [e["resource"]["id"] for e in history["entry"]] == [second["id"], first["id"]]
    since = second["meta"]["lastUpdated"]
    recent = client.get(f"/fhir/Organization/_history?_since={since}").get_json()
    assert [e["resource"]["id"] for e in recent["entry"]] == [second["id"]]


def test_history_at_keeps_the_versions_current_during_the_period(client):
    created = _create(client, fixtures.organization("690781810")).get_json()
    url = f"/fhir/Organization/{created['id']}"
    second = send(client, "PUT", url, dict(created, name="Centre Léon Bérard (CLB)")).get_json()
    first_at, second_at = created["meta"]["lastUpdated"], second["meta"]["lastUpdated"]

    def versions(at: str) -> list[str]:
        bundle = client.get(f"{url}/_history", query_string={"_at": at}).get_json()
        assert bundle["total"] == len(bundle.get("entry", []))
        return [e["resource"]["meta"]["versionId"] for e in bundle.get("entry", [])]

    assert versions(first_at) == ["1"]  # version 1 was current then; version 2 not yet written
    assert versions(second_at) == ["2"]  # version 1 was replaced at that instant
    assert versions(first_at[:4]) == ["2", "1"]  # both were current at some moment of that year
    assert versions("1999") == []
    assert versions(f"1999,{first_at}") == ["1"]
    response = client.get(f"{url}/_history?_at=yesterday")
    assert response.status_code == 400
    assert response.get_json()["issue"][0]["expression"] == ["_at"]


def test_history_entry_of_an_update_as_create_says_created(client):
    url = "/fhir/Organization/clb-lyon"
    organization = dict(fixtures.organization("690781810"), id="clb-lyon")
    assert send(client, "PUT", url, organization).status_code == 201
    entry = client.get(f"{url}/_history").get_json()["entry"][0]
    assert (entry["request"]["method"], entry["response"]["status"]) == ("PUT", "201 Created")


def test_conditional_create_returns_existing_on_match(client):
    headers = {"If_None_Exist": f"identifier={fixtures.INS_NIR}|2750399123456"}
    first = send(client, "POST", "/fhir/Patient", fixtures.patient(), **headers)
    second = send(client, "POST", "/fhir/Patient", fixtures.patient(), **headers)
    assert first.status_code == 201
    assert second.status_code == 200
    assert second.get_json()["id"] == first.get_json()["id"]
    total = client.get("/fhir/Patient?_summary=count").get_json()["total"]
    assert total == 1


def test_conditional_create_with_several_matches_is_412(client):
    _create(client, fixtures.patient())
    _create(client, fixtures.patient())
    response = send(
        client,
        "POST",
        "/fhir/Patient",
        fixtures.patient(),
        If_None_Exist=f"identifier={fixtures.INS_NIR}|2750399123456",
    )
    assert response.status_code == 412


def test_conditional_update_creates_then_updates(client):
    url = f"/fhir/Patient?identifier={fixtures.INS_NIR}|1850775123456"
    created = send(client, "PUT", url, fixtures.patient("1850775123456"))
    assert created.status_code == 201
    updated = send(client, "PUT", url, dict(fixtures.patient("1850775123456"), gender="male"))
    assert updated.status_code == 200
    assert updated.get_json()["id"] == created.get_json()["id"]
    assert updated.get_json()["meta"]["versionId"] == "2"


def test_conditional_update_with_other_id_is_400(client):
    created = _create(client, fixtures.patient("1850775123456")).get_json()
    url = f"/fhir/Patient?identifier={fixtures.INS_NIR}|1850775123456"
    response = send(client, "PUT", url, dict(fixtures.patient("1850775123456"), id="someone-else"))
    assert response.status_code == 400
    assert client.get(f"/fhir/Patient/{created['id']}").get_json()["meta"]["versionId"] == "1"


def test_conditional_update_matching_nothing_will_not_overwrite_the_resource_its_body_names(client):
    # R4 treats it as an update as create; R5 says in so many words that an existing id is a 409
    other = _create(client, fixtures.patient("1850775123456")).get_json()
    url = f"/fhir/Patient?identifier={fixtures.INS_NIR}|2750399123456"
    response = send(client, "PUT", url, dict(fixtures.patient("2750399123456"), id=other["id"]))
    assert response.status_code == 409
    assert response.get_json()["issue"][0]["expression"] == ["id"]
    assert client.get(f"/fhir/Patient/{other['id']}").get_json()["meta"]["versionId"] == "1"
    # the same in a transaction, which then stores nothing
    entry = {
        "resource": dict(fixtures.patient("2750399123456"), id=other["id"]),
        "request": {"method": "PUT", "url": url.removeprefix("/fhir/")},
    }
    organization = {
        "resource": fixtures.organization("690781810"),
        "request": {"method": "POST", "url": "Organization"},
    }
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [organization, entry]}
    assert send(client, "POST", "/fhir", bundle).status_code == 409
    assert client.get("/fhir/Organization?_summary=count").get_json()["total"] == 0
    assert client.get(f"/fhir/Patient/{other['id']}").get_json()["meta"]["versionId"] == "1"
    # an id nobody has is still an update as create
    fresh = send(client, "PUT", url, dict(fixtures.patient("2750399123456"), id="new-patient-id"))
    assert fresh.status_code == 201 and fresh.get_json()["id"] == "new-patient-id"


def test_prefer_return_minimal_and_operation_outcome(client):
    minimal = send(client, "POST", "/fhir/Patient", fixtures.patient(), Prefer="return=minimal")
    assert minimal.status_code == 201 and minimal.data == b""
    assert minimal.headers["Location"]
    outcome = send(client, "POST", "/fhir/Patient", fixtures.patient(), Prefer="return=OperationOutcome")
    assert outcome.status_code == 201
    assert outcome.get_json()["resourceType"] == "OperationOutcome"


def test_invalid_resource_is_422_naming_the_element_and_not_stored(client):
    bad = fixtures.patient()
    bad["birthDate"] = "12/03/1975"
    bad["hairColour"] = "brown"
    response = send(client, "POST", "/fhir/Patient", bad)
    assert response.status_code == 422
    expressions = [e for issue in response.get_json()["issue"] for e in issue.get("expression", [])]
    assert "Patient.birthDate" in expressions and "Patient.hairColour" in expressions
    assert client.get("/fhir/Patient?_summary=count").get_json()["total"] == 0


def test_syntax_errors_are_400_with_operation_outcome(client):
    for body in (b"{not json", b'{"resourceType": "Patient", "x": NaN}', b"\xff\xfe{}"):
        response = client.post("/fhir/Patient", data=body, headers={"Content-Type": "application/fhir+json"})
        assert response.status_code == 400, body
        assert response.get_json()["resourceType"] == "OperationOutcome"


def test_body_type_must_match_url(client):
    response = send(client, "POST", "/fhir/Patient", fixtures.organization())
    assert response.status_code == 400
    assert response.get_json()["issue"][0]["expression"] == ["resourceType"]


def test_unsupported_content_type_is_415(client):
    response = client.post("/fhir/Patient", data=b"name=x", headers={"Content-Type": "text/plain"})
    assert response.status_code == 415


JSON_PATCH = "application/json-patch+json"


def _patch(client, url: str, operations: object, **headers: str):  # type: ignore[no-untyped-def]
    body = operations if isinstance(operations, bytes) else dump_json(operations).encode()
    return client.patch(
        url, data=body, headers={"Content-Type": JSON_PATCH, "Accept": "application/fhir+json", **headers}
    )


def test_json_patch_updates_a_task_as_a_new_version(client):
    task = _create(client, fixtures.task()).get_json()
    url = f"/fhir/Task/{task['id']}"
    response = _patch(
        client,
        url,
        [
            {"op": "test", "path": "/status", "value": "requested"},
            {"op": "replace", "path": "/status", "value": "in-progress"},
            {"op": "add", "path": "/note", "value": [{"text": "apheresis booked"}]},
            {"op": "remove", "path": "/businessStatus"},
        ],
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    patched = response.get_json()
    assert patched["status"] == "in-progress"
    assert patched["note"] == [{"text": "apheresis booked"}]
    assert "businessStatus" not in patched
    assert patched["meta"]["versionId"] == "2"
    assert response.headers["ETag"] == 'W/"2"'
    assert client.get(url).get_json() == patched
    history = client.get(f"{url}/_history").get_json()
    assert [e["resource"]["meta"]["versionId"] for e in history["entry"]] == ["2", "1"]
    assert history["entry"][1]["resource"]["status"] == "requested"


def test_json_patch_keeps_decimals_as_sent(client):
    observation = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"text": "CD3+ count"},
        "valueQuantity": {"value": 1.50, "unit": "10*9/L"},
    }
    created = _create(client, observation).get_json()
    response = _patch(
        client,
        f"/fhir/Observation/{created['id']}",
        b'[{"op": "replace", "path": "/valueQuantity/value", "value": 0.250}]',
    )
    assert response.status_code == 200
    assert b'"value":0.250' in client.get(f"/fhir/Observation/{created['id']}").data


def test_failed_json_patch_changes_nothing(client):
    task = _create(client, fixtures.task()).get_json()
    url = f"/fhir/Task/{task['id']}"
    cases = [
        # A failing test: 422, and no other operation applies.
        (
            [
                {"op": "replace", "path": "/status", "value": "cancelled"},
                {"op": "test", "path": "/intent", "value": "plan"},
            ],
            422,
        ),
        ([{"op": "remove", "path": "/note/0"}], 422),  # no such path
        ([{"op": "replace", "path": "/id", "value": "other"}], 422),  # the id may not change
        ([{"op": "replace", "path": "/status", "value": "not-a-status"}], 422),  # invalid result
        ([{"op": "explode", "path": "/status"}], 400),
        ([{"op": "replace", "path": "status", "value": "x"}], 400),
        ({"op": "replace"}, 400),
        ([], 400),
        (b"[{not json", 400),
    ]
    for operations, status in cases:
        response = _patch(client, url, operations)
        assert response.status_code == status, (operations, response.get_data(as_text=True))
        assert response.get_json()["resourceType"] == "OperationOutcome"
    invalid = _patch(client, url, [{"op": "replace", "path": "/status", "value": "not-a-status"}]).get_json()
    assert any("status" in " ".join(i.get("expression", [])) for i in invalid["issue"])
    current = client.get(url)
    assert current.get_json()["meta"]["versionId"] == "1"
    assert current.get_json()["status"] == "requested"


def test_json_patch_checks_if_match_content_type_and_existence(client):
    task = _create(client, fixtures.task()).get_json()
    url = f"/fhir/Task/{task['id']}"
    replace = [{"op": "replace", "path": "/status", "value": "accepted"}]
    assert _patch(client, url, replace, **{"If-Match": 'W/"7"'}).status_code == 412
    assert _patch(client, url, replace, **{"If-Match": 'W/"1"'}).status_code == 200
    wrong_type = client.patch(url, data=dump_json(replace), headers={"Content-Type": "application/fhir+json"})
    assert wrong_type.status_code == 415
    assert _patch(client, "/fhir/Task/does-not-exist", replace).status_code == 404
    assert client.delete(url).status_code == 204
    assert _patch(client, url, replace).status_code == 410
    assert _patch(client, "/fhir/Task", replace).status_code == 405


def test_conditional_patch_patches_the_single_match(client):
    order = "https://cart-adapter.example.org/order"
    _create(client, fixtures.task(order="ORD-CP1"))
    _create(client, fixtures.task(order="ORD-CP2"))
    _create(client, fixtures.task(order="ORD-CP2"))
    replace = [{"op": "replace", "path": "/status", "value": "accepted"}]
    done = _patch(client, f"/fhir/Task?identifier={order}|ORD-CP1", replace)
    assert done.status_code == 200, done.get_data(as_text=True)
    assert done.get_json()["status"] == "accepted" and done.get_json()["identifier"][0]["value"] == "ORD-CP1"
    fhirpath = _fhirpath_patch(
        client,
        f"/fhir/Task?identifier={order}|ORD-CP1",
        _op("replace", "Task.status", valueCode="in-progress"),
    )
    assert fhirpath.status_code == 200 and fhirpath.get_json()["meta"]["versionId"] == "3"
    assert _patch(client, f"/fhir/Task?identifier={order}|ORD-NONE", replace).status_code == 404
    several = _patch(client, f"/fhir/Task?identifier={order}|ORD-CP2", replace)
    assert several.status_code == 412
    assert [t["status"] for t in _search_tasks(client, "ORD-CP2")] == ["requested", "requested"]


def _search_tasks(client, order: str) -> list[dict]:  # type: ignore[no-untyped-def]
    bundle = client.get(f"/fhir/Task?identifier=https://cart-adapter.example.org/order|{order}").get_json()
    return [e["resource"] for e in bundle.get("entry", [])]


def _fhirpath_patch(
    client, url: str, *operations: list[dict], fmt: str = "application/fhir+json", **headers: str
):  # type: ignore[no-untyped-def]
    document = {
        "resourceType": "Parameters",
        "parameter": [{"name": "operation", "part": o} for o in operations],
    }
    body = dump_json(document) if fmt.endswith("json") else serialise_xml(document)
    return client.patch(
        url, data=body, headers={"Content-Type": fmt, "Accept": "application/fhir+json", **headers}
    )


def _op(kind: str, path: str, **parts: object) -> list[dict]:
    out: list[dict] = [{"name": "type", "valueCode": kind}, {"name": "path", "valueString": path}]
    for name, value in parts.items():
        if name == "value_parts":
            out.append({"name": "value", "part": value})
        elif name.startswith("value"):
            out.append({"name": "value", name: value})
        elif name == "name":
            out.append({"name": "name", "valueString": value})
        else:
            out.append({"name": name, "valueInteger": value})
    return out


def test_fhirpath_patch_adds_inserts_replaces_moves_and_deletes(client):
    ins, coi = "urn:oid:1.2.250.1.213.1.4.8", "https://cart-adapter.example.org/fhir/NamingSystem/coi"
    patient = _create(client, fixtures.patient()).get_json()
    url = f"/fhir/Patient/{patient['id']}"
    response = _fhirpath_patch(
        client,
        url,
        _op("replace", "Patient.birthDate", valueDate="1975-03-13"),
        _op("add", "Patient", name="telecom", valueContactPoint={"system": "phone", "value": "0478000000"}),
        _op("insert", "Patient.identifier", valueIdentifier={"system": coi, "value": "COI-1"}, index=0),
        _op("add", "Patient.name[0]", name="prefix", valueString="Mme"),
        _op("replace", "Patient.name.where(use = 'official').family", valueString="Lefebvre"),
        _op("add", "Patient", name="maritalStatus", value_parts=[{"name": "text", "valueString": "married"}]),
        _op("move", "Patient.identifier", source=0, destination=1),
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    patched = response.get_json()
    assert patched["birthDate"] == "1975-03-13"
    assert patched["telecom"] == [{"system": "phone", "value": "0478000000"}]  # a repeating element: a list
    assert [i["system"] for i in patched["identifier"]] == [ins, coi]
    assert patched["name"][0]["prefix"] == ["Mme"] and patched["name"][0]["family"] == "Lefebvre"
    assert patched["maritalStatus"] == {"text": "married"}
    assert patched["meta"]["versionId"] == "2"
    # Delete by a where(): the item goes; the last one takes its list with it. In XML as well.
    delete = _fhirpath_patch(
        client, url, _op("delete", f"Patient.identifier.where(system = '{coi}')"), fmt="application/fhir+xml"
    )
    assert delete.status_code == 200, delete.get_data(as_text=True)
    assert [i["system"] for i in delete.get_json()["identifier"]] == [ins]
    gone = _fhirpath_patch(client, url, _op("delete", "Patient.telecom[0]")).get_json()
    assert "telecom" not in gone
    # A choice element by its stem, as FHIRPath reads it.
    observation = _create(client, fixtures.observation()).get_json()
    changed = _fhirpath_patch(
        client,
        f"/fhir/Observation/{observation['id']}",
        _op("replace", "Observation.value.value", valueDecimal=2.5),
    )
    assert changed.status_code == 200, changed.get_data(as_text=True)
    assert changed.get_json()["valueQuantity"]["value"] == 2.5
    # Deleting what is not there changes nothing but the version (the spec makes it no error).
    assert _fhirpath_patch(client, url, _op("delete", "Patient.photo")).status_code == 200


def test_a_fhirpath_patch_that_cannot_apply_changes_nothing(client):
    task = _create(client, fixtures.task()).get_json()
    url = f"/fhir/Task/{task['id']}"
    for operation, status in (
        (_op("replace", "Task.input.value", valueString="x"), 422),  # nothing there
        (_op("replace", "Task.status", valueCode="not-a-status"), 422),  # invalid result
        (_op("add", "Task", name="status", valueCode="accepted"), 422),  # already there
        (_op("move", "Task.identifier", source=0, destination=3), 422),
        (
            _op("replace", "Task.identifier.descendants()", valueString="x"),
            400,
        ),  # FHIRPath not evaluated here
        (_op("replace", "Patient.status", valueCode="accepted"), 400),
        (_op("replace", "Task.id", valueId="other"), 422),
        (_op("delete", "Task"), 422),  # the resource itself: DELETE is for that
        (_op("replace", "Task", valueString="x"), 422),
        ([{"name": "type", "valueCode": "rename"}, {"name": "path", "valueString": "Task.status"}], 400),
    ):
        response = _fhirpath_patch(client, url, operation)
        assert response.status_code == status, (operation, response.get_data(as_text=True))
        assert response.get_json()["resourceType"] == "OperationOutcome"
    # Two operations: the second fails, so the first is not kept either.
    response = _fhirpath_patch(
        client,
        url,
        _op("replace", "Task.status", valueCode="accepted"),
        _op("replace", "Task.note.text", valueString="x"),
    )
    assert response.status_code == 422
    assert client.get(url).get_json()["meta"]["versionId"] == "1"
    not_parameters = client.patch(
        url, data=dump_json(task), headers={"Content-Type": "application/fhir+json"}
    )
    assert not_parameters.status_code == 415


def test_body_over_limit_is_413(app, client):
    limit = app.extensions["cart_adapter"].settings.max_body_bytes
    body = b'{"resourceType":"Patient","text":"' + b"a" * limit + b'"}'
    response = client.post("/fhir/Patient", data=body, headers={"Content-Type": "application/fhir+json"})
    assert response.status_code == 413
    assert response.get_json()["resourceType"] == "OperationOutcome"


def test_deeply_nested_json_is_400(client):
    body = b'{"resourceType":"Patient","extension":' + b"[" * 5000 + b"]" * 5000 + b"}"
    response = client.post("/fhir/Patient", data=body, headers={"Content-Type": "application/fhir+json"})
    assert response.status_code == 400


def test_xml_in_and_out(client):
    xml = (
        '<Patient xmlns="http://hl7.org/fhir"><identifier><system value="urn:oid:1.2.250.1.213.1.4.8"/>'
        '<value value="2750399123456"/></identifier><name><family value="Lefèvre"/><given value="Hélène"/>'
        '</name><birthDate value="1975-03-12"/></Patient>'
    ).encode()
    created = client.post(
        "/fhir/Patient",
        data=xml,
        headers={"Content-Type": "application/fhir+xml", "Accept": "application/fhir+xml"},
    )
    assert created.status_code == 201
    assert created.headers["Content-Type"].startswith("application/fhir+xml")
    assert b'<family value="Lef\xc3\xa8vre"/>' in created.data
    location = created.headers["Location"].split("/_history")[0].split("/fhir")[1]
    as_json = client.get(f"/fhir{location}?_format=json").get_json()
    assert as_json["name"][0]["given"] == ["Hélène"]


def test_xml_with_doctype_is_refused_and_nothing_stored(client):
    xml = (
        b'<?xml version="1.0"?><!DOCTYPE p [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        b'<Patient xmlns="http://hl7.org/fhir"><gender value="&x;"/></Patient>'
    )
    response = client.post("/fhir/Patient", data=xml, headers={"Content-Type": "application/fhir+xml"})
    assert response.status_code == 400
    assert client.get("/fhir/Patient?_summary=count").get_json()["total"] == 0


def test_format_parameter_and_accept_choose_output(client):
    created = _create(client, fixtures.patient()).get_json()
    url = f"/fhir/Patient/{created['id']}"
    assert client.get(url + "?_format=xml").headers["Content-Type"].startswith("application/fhir+xml")
    assert client.get(url, headers={"Accept": "application/xml"}).data.startswith(b"<?xml")
    assert client.get(url, headers={"Accept": "text/html,*/*;q=0.8"}).get_json()["id"] == created["id"]
    assert client.get(url + "?_format=text/csv").status_code == 406


def test_unknown_route_and_method_give_operation_outcome(client):
    response = client.get("/nothing-here")
    assert response.status_code == 404
    assert response.get_json()["resourceType"] == "OperationOutcome"
    response = client.put("/fhir/Patient", data=b"{}", headers={"Content-Type": "application/fhir+json"})
    assert response.status_code == 405
    assert response.get_json()["resourceType"] == "OperationOutcome"


@pytest.mark.postgres
def test_a_database_restart_is_503_then_the_next_request_works(fresh_postgres_url, tmp_path):  # type: ignore[no-untyped-def]
    """A pooled connection the server dropped a moment ago fails the request that meets it with 503
    and Retry-After, not a 500; SQLAlchemy renews the pool and the next request succeeds."""
    from adapter import create_app
    from adapter.config import Settings
    from tests.conftest import bearer_for

    # The server's connections carry a name of their own, so that they can all be cut off at once.
    server_url = f"{fresh_postgres_url}&application_name=restart-test"
    app = create_app(Settings(instance_path=tmp_path, database_url=server_url))
    admin = make_engine(fresh_postgres_url)
    try:
        client = app.test_client()
        client.environ_base["HTTP_AUTHORIZATION"] = bearer_for(app, "test-admin")
        patient = send(client, "POST", "/fhir/Patient", fixtures.patient()).get_json()
        assert client.get(f"/fhir/Patient/{patient['id']}").status_code == 200
        assert client.get("/fhir/Patient?gender=female").status_code == 200
        # Every connection the server holds goes (pooled, and kept for reads), as when PostgreSQL restarts.
        with admin.connect() as connection:
            cut = connection.exec_driver_sql(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE application_name = 'restart-test'"
            ).scalar_one()
        assert cut >= 1
        failed = client.get(f"/fhir/Patient/{patient['id']}")
        assert failed.status_code == 503
        assert failed.headers["Retry-After"] == "1"
        assert failed.get_json()["issue"][0]["code"] == "transient"
        assert client.get(f"/fhir/Patient/{patient['id']}").status_code == 200
        assert client.get("/fhir/Patient?gender=female").status_code == 200
    finally:
        app.extensions["cart_adapter"].close()
        admin.dispose()


def test_a_write_that_deadlocked_is_503_saying_it_conflicted(app, client, monkeypatch):  # type: ignore[no-untyped-def]
    """PostgreSQL ends a transaction that deadlocked with another (40P01) or could not be serialised
    with it (40001): nothing was written, and a retry is all it takes. 503 and Retry-After, as for a
    database away, but saying what happened: the database is up."""
    errors = pytest.importorskip("psycopg.errors")
    from sqlalchemy import exc

    def deadlocked(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise exc.OperationalError("UPDATE", None, errors.DeadlockDetected("deadlock detected"))

    monkeypatch.setattr(app.extensions["cart_adapter"].fhir, "update", deadlocked)
    response = send(client, "PUT", "/fhir/Patient/p1", {**fixtures.patient(), "id": "p1"})
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "1"
    issue = response.get_json()["issue"][0]
    assert issue["code"] == "transient"
    assert "conflicted with a concurrent" in issue["diagnostics"]
    assert "unavailable" not in issue["diagnostics"]
