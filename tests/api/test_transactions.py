"""Transaction and batch Bundles posted to the base URL (POST /fhir), on SQLite and PostgreSQL."""

from __future__ import annotations

import base64
from urllib.parse import urlencode, urlsplit

from adapter.fhirio.jsonio import dump_json
from tests import fixtures
from tests.api.helpers import created as _create

FHIR_JSON = "application/fhir+json"
INS = fixtures.INS_NIR
FINESS = fixtures.FINESS

PATIENT_URN = "urn:uuid:6f1c2d3e-4b5a-4c6d-8e7f-0a1b2c3d4e01"
ORGANIZATION_URN = "urn:uuid:6f1c2d3e-4b5a-4c6d-8e7f-0a1b2c3d4e02"
REQUEST_URN = "urn:uuid:6f1c2d3e-4b5a-4c6d-8e7f-0a1b2c3d4e03"
TASK_URN = "urn:uuid:6f1c2d3e-4b5a-4c6d-8e7f-0a1b2c3d4e04"
OBSERVATION_URN = "urn:uuid:6f1c2d3e-4b5a-4c6d-8e7f-0a1b2c3d4e05"


# -- helpers ---------------------------------------------------------------------------------------


def _post_bundle(client, bundle: dict, **headers: str):  # type: ignore[no-untyped-def]
    return client.post(
        "/fhir",
        data=dump_json(bundle),
        headers={"Content-Type": FHIR_JSON, "Accept": FHIR_JSON, **headers},
    )


def _bundle(kind: str, *entries: dict) -> dict:
    return {"resourceType": "Bundle", "type": kind, "entry": list(entries)}


def _entry(
    method: str, url: str, resource: dict | None = None, full_url: str | None = None, **request: str
) -> dict:
    entry: dict = {}
    if full_url:
        entry["fullUrl"] = full_url
    if resource is not None:
        entry["resource"] = resource
    entry["request"] = {"method": method, "url": url, **request}
    return entry


def _read(client, res_type: str, res_id: str) -> dict:  # type: ignore[no-untyped-def]
    response = client.get(f"/fhir/{res_type}/{res_id}", headers={"Accept": FHIR_JSON})
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def _search(client, res_type: str, params: list[tuple[str, str]] | None = None) -> dict:  # type: ignore[no-untyped-def]
    url = f"/fhir/{res_type}" + (f"?{urlencode(params)}" if params else "")
    response = client.get(url, headers={"Accept": FHIR_JSON})
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def _count(client, res_type: str, params: list[tuple[str, str]] | None = None) -> int:  # type: ignore[no-untyped-def]
    return _search(client, res_type, [*(params or []), ("_summary", "count")])["total"]


def _match_ids(bundle: dict) -> list[str]:
    return [
        e["resource"]["id"] for e in bundle.get("entry", []) if e.get("search", {}).get("mode") == "match"
    ]


def _location_id(location: str, res_type: str) -> str:
    """`http://localhost/fhir/Task/abc/_history/1` -> `abc`, checking the type on the way."""
    parts = urlsplit(location).path.split("/")
    assert parts[-4] == res_type, location
    assert parts[-2] == "_history", location
    return parts[-3]


def _service_request(subject: str, performer: str | None = None) -> dict:
    resource: dict = {
        "resourceType": "ServiceRequest",
        "status": "active",
        "intent": "order",
        "code": {
            "coding": [
                {
                    "system": "http://snomed.info/sct",
                    "code": "1156181004",
                    "display": "Chimeric antigen receptor T-cell therapy",
                }
            ]
        },
        "subject": {"reference": subject},
        "authoredOn": "2026-03-01T14:00:00+01:00",
    }
    if performer:
        resource["performer"] = [{"reference": performer}]
    return resource


def _cart_transaction() -> dict:
    task = fixtures.task(owner=ORGANIZATION_URN)
    task["focus"] = {"reference": REQUEST_URN}
    task["for"] = {"reference": PATIENT_URN}
    task["basedOn"] = [{"reference": REQUEST_URN}]
    observation = fixtures.observation()
    observation["subject"] = {"reference": PATIENT_URN}
    observation["basedOn"] = [{"reference": REQUEST_URN}]
    device = {
        "resourceType": "Device",
        "id": "apheresis-spectra-01",
        "identifier": [{"system": "https://chu-lyon.example.org/devices", "value": "SPECTRA-01"}],
        "status": "active",
        "manufacturer": "Terumo BCT",
    }
    return _bundle(
        "transaction",
        _entry("POST", "Patient", fixtures.patient(), PATIENT_URN),
        _entry("POST", "Organization", fixtures.organization(), ORGANIZATION_URN),
        _entry("POST", "ServiceRequest", _service_request(PATIENT_URN, ORGANIZATION_URN), REQUEST_URN),
        _entry("POST", "Task", task, TASK_URN),
        _entry("POST", "Observation", observation, OBSERVATION_URN),
        _entry("PUT", "Device/apheresis-spectra-01", device),
    )


def _assert_outcome_at(response, index: int) -> dict:  # type: ignore[no-untyped-def]
    """The response is one OperationOutcome whose issues all point into Bundle.entry[index]."""
    body = response.get_json()
    assert body["resourceType"] == "OperationOutcome", body
    assert body["issue"], body
    for issue in body["issue"]:
        assert issue["severity"] in ("error", "fatal")
        assert issue["expression"], issue
        assert all(e.startswith(f"Bundle.entry[{index}]") for e in issue["expression"]), issue
    return body


# -- a complete CAR-T transaction ------------------------------------------------------------------


def test_cart_transaction_creates_every_entry_and_answers_in_request_order(client):
    response = _post_bundle(client, _cart_transaction())

    assert response.status_code == 200, response.get_data(as_text=True)
    bundle = response.get_json()
    assert bundle["resourceType"] == "Bundle"
    assert bundle["type"] == "transaction-response"
    entries = bundle["entry"]
    assert len(entries) == 6
    expected_types = ["Patient", "Organization", "ServiceRequest", "Task", "Observation", "Device"]
    for entry, res_type in zip(entries, expected_types, strict=True):
        assert entry["response"]["status"].startswith("201"), entry["response"]
        location = entry["response"]["location"]
        res_id = _location_id(location, res_type)
        assert entry["response"]["etag"] == 'W/"1"'
        assert entry["resource"]["resourceType"] == res_type
        assert entry["resource"]["id"] == res_id
    assert _location_id(entries[5]["response"]["location"], "Device") == "apheresis-spectra-01"
    # Server ids, never the urn:uuid of the request.
    assert not any("urn:uuid" in e["response"]["location"] for e in entries)


def test_cart_transaction_rewrites_urn_uuid_references_to_server_ids(client):
    entries = _post_bundle(client, _cart_transaction()).get_json()["entry"]
    patient_id = _location_id(entries[0]["response"]["location"], "Patient")
    organization_id = _location_id(entries[1]["response"]["location"], "Organization")
    request_id = _location_id(entries[2]["response"]["location"], "ServiceRequest")
    task_id = _location_id(entries[3]["response"]["location"], "Task")
    observation_id = _location_id(entries[4]["response"]["location"], "Observation")

    task = _read(client, "Task", task_id)
    assert task["focus"] == {"reference": f"ServiceRequest/{request_id}"}
    assert task["for"] == {"reference": f"Patient/{patient_id}"}
    assert task["owner"] == {"reference": f"Organization/{organization_id}"}
    assert task["basedOn"] == [{"reference": f"ServiceRequest/{request_id}"}]
    service_request = _read(client, "ServiceRequest", request_id)
    assert service_request["subject"] == {"reference": f"Patient/{patient_id}"}
    assert service_request["performer"] == [{"reference": f"Organization/{organization_id}"}]
    observation = _read(client, "Observation", observation_id)
    assert observation["subject"] == {"reference": f"Patient/{patient_id}"}
    assert "urn:uuid" not in dump_json(task) + dump_json(service_request) + dump_json(observation)


def test_cart_transaction_indexes_the_rewritten_references_for_search(client):
    entries = _post_bundle(client, _cart_transaction()).get_json()["entry"]
    patient_id = _location_id(entries[0]["response"]["location"], "Patient")
    request_id = _location_id(entries[2]["response"]["location"], "ServiceRequest")
    task_id = _location_id(entries[3]["response"]["location"], "Task")

    assert _match_ids(_search(client, "Task", [("patient", patient_id)])) == [task_id]
    assert _match_ids(_search(client, "Task", [("focus", f"ServiceRequest/{request_id}")])) == [task_id]
    assert _count(client, "Observation", [("subject", f"Patient/{patient_id}")]) == 1
    assert _read(client, "Device", "apheresis-spectra-01")["manufacturer"] == "Terumo BCT"


def test_transaction_with_return_minimal_answers_without_resources(client):
    response = _post_bundle(client, _cart_transaction(), Prefer="return=minimal")

    assert response.status_code == 200
    entries = response.get_json()["entry"]
    assert len(entries) == 6
    for entry in entries:
        assert "resource" not in entry
        assert entry["response"]["status"].startswith("201")
        assert entry["response"]["location"]
    assert _count(client, "Task") == 1


def test_rewriting_full_urls_leaves_string_identifier_values_untouched(client):
    # A common pattern: the fullUrl's uuid is also the resource's business identifier (system
    # urn:ietf:rfc:3986). Identifier.value is a string, not a reference or uri, so it must be kept.
    patient = fixtures.patient()
    patient["identifier"].append({"system": "urn:ietf:rfc:3986", "value": PATIENT_URN})
    task = fixtures.task()
    task["for"] = {"reference": PATIENT_URN}
    bundle = _bundle(
        "transaction",
        _entry("POST", "Patient", patient, PATIENT_URN),
        _entry("POST", "Task", task, TASK_URN),
    )

    response = _post_bundle(client, bundle)

    assert response.status_code == 200, response.get_data(as_text=True)
    entries = response.get_json()["entry"]
    patient_id = _location_id(entries[0]["response"]["location"], "Patient")
    task_id = _location_id(entries[1]["response"]["location"], "Task")
    assert _read(client, "Task", task_id)["for"] == {"reference": f"Patient/{patient_id}"}
    stored = _read(client, "Patient", patient_id)
    assert {"system": "urn:ietf:rfc:3986", "value": PATIENT_URN} in stored["identifier"]


# -- atomicity -------------------------------------------------------------------------------------


def test_transaction_with_an_observation_missing_status_stores_nothing(client):
    bad = fixtures.observation()
    del bad["status"]
    bad["subject"] = {"reference": PATIENT_URN}
    bundle = _bundle(
        "transaction",
        _entry("POST", "Patient", fixtures.patient(), PATIENT_URN),
        _entry("POST", "Organization", fixtures.organization(), ORGANIZATION_URN),
        _entry("POST", "Observation", bad, OBSERVATION_URN),
        _entry(
            "PUT", "Device/apheresis-spectra-01", {"resourceType": "Device", "id": "apheresis-spectra-01"}
        ),
    )

    response = _post_bundle(client, bundle)

    assert 400 <= response.status_code < 500, response.get_data(as_text=True)
    _assert_outcome_at(response, 2)
    assert _count(client, "Patient") == 0
    assert _count(client, "Organization") == 0
    assert _count(client, "Observation") == 0
    assert _count(client, "Device") == 0
    assert client.get("/fhir/Device/apheresis-spectra-01").status_code == 404


def test_transaction_with_an_unknown_element_stores_nothing(client):
    bad = fixtures.patient(ins="1850575000001", family="Dupont", given="Jean")
    bad["favouriteColour"] = "blue"
    bundle = _bundle(
        "transaction",
        _entry("POST", "Organization", fixtures.organization(), ORGANIZATION_URN),
        _entry("POST", "Patient", bad, PATIENT_URN),
        _entry("POST", "Task", fixtures.task(owner=ORGANIZATION_URN), TASK_URN),
    )

    response = _post_bundle(client, bundle)

    assert 400 <= response.status_code < 500
    body = _assert_outcome_at(response, 1)
    assert "favouriteColour" in dump_json(body)
    assert _count(client, "Organization") == 0
    assert _count(client, "Patient") == 0
    assert _count(client, "Task") == 0


def test_transaction_failing_on_its_last_processed_entry_undoes_the_earlier_ones(client):
    existing = _create(client, fixtures.patient())
    bundle = _bundle(
        "transaction",
        # PUT entries run after POST entries: the Organization is written before the PUT fails.
        _entry("PUT", f"Patient/{existing['id']}", {"resourceType": "Patient", "id": "another-id"}),
        _entry("POST", "Organization", fixtures.organization()),
        _entry("DELETE", f"Patient/{existing['id']}"),
    )

    response = _post_bundle(client, bundle)

    assert 400 <= response.status_code < 500
    assert _count(client, "Organization") == 0
    assert _read(client, "Patient", existing["id"])["meta"]["versionId"] == "1"


def test_malformed_entry_request_is_rejected_with_the_entry_index(client):
    bundle = _bundle(
        "transaction",
        _entry("POST", "Patient", fixtures.patient()),
        {"resource": fixtures.organization()},  # no request
    )

    response = _post_bundle(client, bundle)

    assert response.status_code == 400
    _assert_outcome_at(response, 1)
    assert _count(client, "Patient") == 0


# -- processing order ------------------------------------------------------------------------------


def test_get_entry_placed_first_sees_the_patient_created_by_a_later_post(client):
    bundle = _bundle(
        "transaction",
        _entry("GET", f"Patient?identifier={INS}|2750399123456"),
        _entry("POST", "Patient", fixtures.patient(ins="2750399123456"), PATIENT_URN),
    )

    response = _post_bundle(client, bundle)

    assert response.status_code == 200, response.get_data(as_text=True)
    entries = response.get_json()["entry"]
    assert entries[0]["response"]["status"].startswith("200")
    assert entries[1]["response"]["status"].startswith("201")
    created_id = _location_id(entries[1]["response"]["location"], "Patient")
    searchset = entries[0]["resource"]
    assert searchset["type"] == "searchset"
    assert searchset["total"] == 1
    assert _match_ids(searchset) == [created_id]


def test_get_entry_placed_first_reads_the_device_written_by_a_later_put(client):
    device = {"resourceType": "Device", "id": "cryo-01", "manufacturer": "Cryoport"}
    bundle = _bundle(
        "transaction",
        _entry("GET", "Device/cryo-01"),
        _entry("PUT", "Device/cryo-01", device),
    )

    response = _post_bundle(client, bundle)

    assert response.status_code == 200, response.get_data(as_text=True)
    entries = response.get_json()["entry"]
    assert entries[0]["response"]["status"].startswith("200")
    assert entries[0]["resource"]["id"] == "cryo-01"
    assert entries[0]["resource"]["manufacturer"] == "Cryoport"
    assert entries[1]["response"]["status"].startswith("201")


def test_delete_entry_runs_before_a_post_placed_earlier_in_the_bundle(client):
    # If the POST ran first, the conditional DELETE would find and delete the new Patient.
    bundle = _bundle(
        "transaction",
        _entry("POST", "Patient", fixtures.patient(ins="2750399123456")),
        _entry("DELETE", f"Patient?identifier={INS}|2750399123456"),
    )

    response = _post_bundle(client, bundle)

    assert response.status_code == 200, response.get_data(as_text=True)
    entries = response.get_json()["entry"]
    assert entries[0]["response"]["status"].startswith("201")
    assert entries[1]["response"]["status"][:3] in ("200", "204")
    assert _count(client, "Patient", [("identifier", f"{INS}|2750399123456")]) == 1


def test_delete_entry_removes_an_existing_resource_while_post_creates_its_replacement(client):
    old = _create(client, fixtures.patient(ins="2750399123456", family="Lefèvre"))
    bundle = _bundle(
        "transaction",
        _entry("POST", "Patient", fixtures.patient(ins="2750399123456", family="Lefèvre-Durand")),
        _entry("DELETE", f"Patient/{old['id']}"),
    )

    response = _post_bundle(client, bundle)

    assert response.status_code == 200, response.get_data(as_text=True)
    new_id = _location_id(response.get_json()["entry"][0]["response"]["location"], "Patient")
    assert client.get(f"/fhir/Patient/{old['id']}").status_code == 410
    assert _match_ids(_search(client, "Patient", [("identifier", f"{INS}|2750399123456")])) == [new_id]


# -- conditional create and conditional references -------------------------------------------------


def test_if_none_exist_entry_returns_the_existing_resource_and_references_point_to_it(client):
    existing = _create(client, fixtures.organization(finess="690781810"))
    bundle = _bundle(
        "transaction",
        _entry(
            "POST",
            "Organization",
            fixtures.organization(finess="690781810"),
            ORGANIZATION_URN,
            ifNoneExist=f"identifier={FINESS}|690781810",
        ),
        _entry("POST", "Task", fixtures.task(owner=ORGANIZATION_URN), TASK_URN),
    )

    response = _post_bundle(client, bundle)

    assert response.status_code == 200, response.get_data(as_text=True)
    entries = response.get_json()["entry"]
    assert entries[0]["response"]["status"].startswith("200")
    assert _location_id(entries[0]["response"]["location"], "Organization") == existing["id"]
    assert entries[1]["response"]["status"].startswith("201")
    task_id = _location_id(entries[1]["response"]["location"], "Task")
    assert _read(client, "Task", task_id)["owner"] == {"reference": f"Organization/{existing['id']}"}
    assert _count(client, "Organization") == 1
    assert _read(client, "Organization", existing["id"])["meta"]["versionId"] == "1"


def test_if_none_exist_entry_without_a_match_creates_the_resource(client):
    bundle = _bundle(
        "transaction",
        _entry(
            "POST",
            "Organization",
            fixtures.organization(finess="690781810"),
            ORGANIZATION_URN,
            ifNoneExist=f"identifier={FINESS}|690781810",
        ),
        _entry("POST", "Task", fixtures.task(owner=ORGANIZATION_URN), TASK_URN),
    )

    response = _post_bundle(client, bundle)

    assert response.status_code == 200, response.get_data(as_text=True)
    entries = response.get_json()["entry"]
    assert entries[0]["response"]["status"].startswith("201")
    organization_id = _location_id(entries[0]["response"]["location"], "Organization")
    task_id = _location_id(entries[1]["response"]["location"], "Task")
    assert _read(client, "Task", task_id)["owner"] == {"reference": f"Organization/{organization_id}"}
    assert _count(client, "Organization") == 1


def test_conditional_reference_with_one_match_is_resolved_to_that_resource(client):
    patient = _create(client, fixtures.patient(ins="2750399123456"))
    _create(client, fixtures.patient(ins="1850575000001", family="Dupont", given="Jean"))
    task = fixtures.task()
    task["for"] = {"reference": f"Patient?identifier={INS}|2750399123456"}

    response = _post_bundle(client, _bundle("transaction", _entry("POST", "Task", task, TASK_URN)))

    assert response.status_code == 200, response.get_data(as_text=True)
    task_id = _location_id(response.get_json()["entry"][0]["response"]["location"], "Task")
    assert _read(client, "Task", task_id)["for"] == {"reference": f"Patient/{patient['id']}"}


def test_conditional_reference_outside_a_transaction_is_refused_not_stored(client):
    # Conditional references are a transaction feature (R4 http.html); stored elsewhere, the text
    # "Patient?identifier=..." would be a reference to nothing.
    _create(client, fixtures.patient(ins="2750399123456"))
    task = fixtures.task()
    task["for"] = {"reference": f"Patient?identifier={INS}|2750399123456"}

    response = client.post("/fhir/Task", data=dump_json(task), headers={"Content-Type": FHIR_JSON})
    assert response.status_code == 422, response.get_data(as_text=True)
    assert response.get_json()["issue"][0]["expression"] == ["Task.for.reference"]

    batch = _post_bundle(client, _bundle("batch", _entry("POST", "Task", task)))
    assert batch.status_code == 200
    entry = batch.get_json()["entry"][0]
    assert entry["response"]["status"].startswith("422")
    issue = entry["response"]["outcome"]["issue"][0]
    assert issue["expression"] == ["Bundle.entry[0].resource.for.reference"]
    assert _count(client, "Task") == 0


def test_conditional_reference_without_a_match_fails_the_transaction_with_412(client):
    _create(client, fixtures.patient(ins="1850575000001", family="Dupont", given="Jean"))
    task = fixtures.task()
    task["for"] = {"reference": f"Patient?identifier={INS}|2750399123456"}
    bundle = _bundle(
        "transaction",
        _entry("POST", "Organization", fixtures.organization()),
        _entry("POST", "Task", task, TASK_URN),
    )

    response = _post_bundle(client, bundle)

    assert response.status_code == 412, response.get_data(as_text=True)
    _assert_outcome_at(response, 1)
    assert _count(client, "Task") == 0
    assert _count(client, "Organization") == 0


def test_conditional_reference_with_several_matches_fails_the_transaction_with_412(client):
    _create(client, fixtures.patient(ins="2750399123456"))
    _create(client, fixtures.patient(ins="2750399123456", family="Lefèvre-Durand"))
    task = fixtures.task()
    task["for"] = {"reference": f"Patient?identifier={INS}|2750399123456"}

    response = _post_bundle(client, _bundle("transaction", _entry("POST", "Task", task, TASK_URN)))

    assert response.status_code == 412
    _assert_outcome_at(response, 0)
    assert _count(client, "Task") == 0


# -- identity overlaps -----------------------------------------------------------------------------


def test_the_same_resource_twice_in_a_transaction_is_rejected_with_400(client):
    first = {"resourceType": "Device", "id": "cryo-01", "manufacturer": "Cryoport"}
    second = {"resourceType": "Device", "id": "cryo-01", "manufacturer": "Cryoport Inc."}
    bundle = _bundle(
        "transaction",
        _entry("POST", "Organization", fixtures.organization()),
        _entry("PUT", "Device/cryo-01", first),
        _entry("PUT", "Device/cryo-01", second),
    )

    response = _post_bundle(client, bundle)

    assert response.status_code == 400
    assert response.get_json()["resourceType"] == "OperationOutcome"
    assert client.get("/fhir/Device/cryo-01").status_code == 404
    assert _count(client, "Organization") == 0


def test_update_and_delete_of_the_same_resource_in_one_transaction_is_rejected(client):
    existing = _create(client, fixtures.patient())
    changed = dict(existing, gender="other")
    bundle = _bundle(
        "transaction",
        _entry("PUT", f"Patient/{existing['id']}", changed),
        _entry("DELETE", f"Patient/{existing['id']}"),
    )

    response = _post_bundle(client, bundle)

    assert response.status_code == 400
    current = _read(client, "Patient", existing["id"])
    assert current["meta"]["versionId"] == "1"
    assert current["gender"] == "female"


def test_two_entries_with_the_same_full_url_are_rejected(client):
    # bdl-7: fullUrl must be unique within a Bundle; otherwise a reference to it is ambiguous.
    task = fixtures.task()
    task["for"] = {"reference": PATIENT_URN}
    bundle = _bundle(
        "transaction",
        _entry("POST", "Patient", fixtures.patient(ins="2750399123456"), PATIENT_URN),
        _entry("POST", "Patient", fixtures.patient(ins="1850575000001", family="Dupont"), PATIENT_URN),
        _entry("POST", "Task", task, TASK_URN),
    )

    response = _post_bundle(client, bundle)

    assert response.status_code == 400, response.get_data(as_text=True)
    assert response.get_json()["resourceType"] == "OperationOutcome"
    assert _count(client, "Patient") == 0
    assert _count(client, "Task") == 0


# -- conditional update in a transaction -----------------------------------------------------------


def test_conditional_put_in_a_transaction_creates_then_updates_the_same_patient(client):
    url = f"Patient?identifier={INS}|2750399123456"

    first = _post_bundle(
        client, _bundle("transaction", _entry("PUT", url, fixtures.patient(family="Lefèvre")))
    )
    assert first.status_code == 200, first.get_data(as_text=True)
    created = first.get_json()["entry"][0]["response"]
    assert created["status"].startswith("201")
    patient_id = _location_id(created["location"], "Patient")

    second = _post_bundle(
        client, _bundle("transaction", _entry("PUT", url, fixtures.patient(family="Lefèvre-Durand")))
    )
    assert second.status_code == 200, second.get_data(as_text=True)
    updated = second.get_json()["entry"][0]["response"]
    assert updated["status"].startswith("200")
    assert _location_id(updated["location"], "Patient") == patient_id
    assert updated["etag"] == 'W/"2"'

    found = _search(client, "Patient", [("identifier", f"{INS}|2750399123456")])
    assert _match_ids(found) == [patient_id]
    assert found["entry"][0]["resource"]["name"][0]["family"] == "Lefèvre-Durand"


def test_conditional_put_full_url_can_be_referenced_by_other_entries(client):
    existing = _create(client, fixtures.patient(ins="2750399123456"))
    task = fixtures.task()
    task["for"] = {"reference": PATIENT_URN}
    bundle = _bundle(
        "transaction",
        _entry(
            "PUT",
            f"Patient?identifier={INS}|2750399123456",
            fixtures.patient(family="Lefèvre-Durand"),
            PATIENT_URN,
        ),
        _entry("POST", "Task", task, TASK_URN),
    )

    response = _post_bundle(client, bundle)

    assert response.status_code == 200, response.get_data(as_text=True)
    task_id = _location_id(response.get_json()["entry"][1]["response"]["location"], "Task")
    assert _read(client, "Task", task_id)["for"] == {"reference": f"Patient/{existing['id']}"}
    assert _read(client, "Patient", existing["id"])["name"][0]["family"] == "Lefèvre-Durand"


# -- batch -----------------------------------------------------------------------------------------


def test_batch_keeps_the_good_entry_and_reports_the_bad_one(client):
    bad = fixtures.observation()
    del bad["status"]
    bundle = _bundle(
        "batch",
        _entry("POST", "Patient", fixtures.patient(ins="2750399123456")),
        _entry("POST", "Observation", bad),
    )

    response = _post_bundle(client, bundle)

    assert response.status_code == 200, response.get_data(as_text=True)
    result = response.get_json()
    assert result["type"] == "batch-response"
    assert len(result["entry"]) == 2
    good, failed = result["entry"]
    assert good["response"]["status"].startswith("201")
    patient_id = _location_id(good["response"]["location"], "Patient")
    assert failed["response"]["status"][:1] == "4"
    assert "location" not in failed["response"]
    outcome = failed["response"]["outcome"]
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["severity"] in ("error", "fatal")
    assert _match_ids(_search(client, "Patient", [("identifier", f"{INS}|2750399123456")])) == [patient_id]
    assert _count(client, "Observation") == 0


def test_batch_entries_are_independent_of_each_other_failures_in_any_position(client):
    bundle = _bundle(
        "batch",
        _entry("GET", "Patient/does-not-exist"),
        _entry("POST", "Organization", fixtures.organization()),
        _entry("PUT", "Device/cryo-01", {"resourceType": "Device", "id": "other-id"}),
        _entry("PUT", "Device/cryo-02", {"resourceType": "Device", "id": "cryo-02"}),
    )

    response = _post_bundle(client, bundle)

    assert response.status_code == 200
    statuses = [e["response"]["status"][:3] for e in response.get_json()["entry"]]
    assert statuses == ["404", "201", "400", "201"]
    assert _count(client, "Organization") == 1
    assert client.get("/fhir/Device/cryo-02").status_code == 200
    assert client.get("/fhir/Device/cryo-01").status_code == 404


# -- what may be posted to the base ----------------------------------------------------------------


def test_collection_bundle_posted_to_the_base_is_rejected_with_400(client):
    bundle = _bundle("collection", {"fullUrl": PATIENT_URN, "resource": fixtures.patient()})

    response = _post_bundle(client, bundle)

    assert response.status_code == 400
    assert response.get_json()["resourceType"] == "OperationOutcome"
    assert _count(client, "Patient") == 0


def test_a_resource_other_than_a_bundle_posted_to_the_base_is_rejected_with_400(client):
    response = client.post(
        "/fhir", data=dump_json(fixtures.patient()), headers={"Content-Type": FHIR_JSON, "Accept": FHIR_JSON}
    )

    assert response.status_code == 400
    assert response.get_json()["resourceType"] == "OperationOutcome"
    assert _count(client, "Patient") == 0


def test_empty_transaction_returns_an_empty_transaction_response(client):
    response = _post_bundle(client, _bundle("transaction"))

    assert response.status_code == 200
    body = response.get_json()
    assert body["type"] == "transaction-response"
    assert body.get("entry", []) == []


def test_search_entry_in_a_batch_returns_a_searchset_with_absolute_full_urls(client):
    patient = _create(client, fixtures.patient(ins="2750399123456"))
    _create(client, fixtures.patient(ins="1850575000001", family="Dupont", given="Jean"))

    response = _post_bundle(
        client, _bundle("batch", _entry("GET", f"Patient?identifier={INS}|2750399123456"))
    )

    assert response.status_code == 200
    entry = response.get_json()["entry"][0]
    assert entry["response"]["status"].startswith("200")
    searchset = entry["resource"]
    assert searchset["type"] == "searchset"
    assert searchset["total"] == 1
    assert _match_ids(searchset) == [patient["id"]]
    # fullUrl is the absolute URL of the resource on this server, as in a search made directly.
    assert searchset["entry"][0]["fullUrl"] == f"http://localhost/fhir/Patient/{patient['id']}"


# -- PATCH entries -----------------------------------------------------------------------------------


def _fhirpath(*operations: list[dict]) -> dict:
    return {"resourceType": "Parameters", "parameter": [{"name": "operation", "part": o} for o in operations]}


def _replace(path: str, **value: object) -> list[dict]:
    ((key, item),) = value.items()
    return [
        {"name": "type", "valueCode": "replace"},
        {"name": "path", "valueString": path},
        {"name": "value", key: item},
    ]


def _json_patch_binary(operations: list[dict]) -> dict:
    data = base64.b64encode(dump_json(operations).encode()).decode()
    return {"resourceType": "Binary", "contentType": "application/json-patch+json", "data": data}


def test_patch_entries_apply_in_a_transaction_with_references_to_new_entries(client):
    patient = _create(client, fixtures.patient())
    task = _create(client, fixtures.task(order="ORD-PT1"))
    request = fixtures.service_request(patient["id"])
    add_focus = [
        {"name": "type", "valueCode": "add"},
        {"name": "path", "valueString": "Task"},
        {"name": "name", "valueString": "focus"},
        {"name": "value", "valueReference": {"reference": "urn:uuid:1c5e2f5a-0000-4000-8000-000000000001"}},
    ]
    bundle = _bundle(
        "transaction",
        _entry(
            "PATCH", f"Task/{task['id']}", _fhirpath(add_focus, _replace("Task.status", valueCode="accepted"))
        ),
        _entry("POST", "ServiceRequest", request, full_url="urn:uuid:1c5e2f5a-0000-4000-8000-000000000001"),
        _entry(
            "PATCH",
            f"Patient/{patient['id']}",
            _json_patch_binary([{"op": "replace", "path": "/gender", "value": "other"}]),
        ),
        _entry("GET", f"Task/{task['id']}"),
    )
    response = _post_bundle(client, bundle)
    assert response.status_code == 200, response.get_data(as_text=True)
    statuses = [e["response"]["status"] for e in response.get_json()["entry"]]
    assert [status[:3] for status in statuses] == ["200", "201", "200", "200"]
    # The GET entry runs after the patches: it reads the patched Task.
    assert response.get_json()["entry"][3]["resource"]["status"] == "accepted"
    location = response.get_json()["entry"][1]["response"]["location"]
    request_id = location.split("ServiceRequest/", 1)[1].split("/")[0]
    patched = _read(client, "Task", task["id"])
    assert patched["status"] == "accepted"
    assert patched["focus"] == {"reference": f"ServiceRequest/{request_id}"}
    assert _read(client, "Patient", patient["id"])["gender"] == "other"


def test_a_patch_entry_that_cannot_apply_undoes_the_whole_transaction(client):
    task = _create(client, fixtures.task(order="ORD-PT2"))
    bundle = _bundle(
        "transaction",
        _entry("POST", "Patient", fixtures.patient(ins="2750399123401")),
        _entry("PATCH", f"Task/{task['id']}", _fhirpath(_replace("Task.note.text", valueString="x"))),
    )
    response = _post_bundle(client, bundle)
    assert response.status_code == 422
    assert "Bundle.entry[1]" in response.get_data(as_text=True)
    assert client.get("/fhir/Patient?identifier=2750399123401").get_json()["total"] == 0
    not_a_patch = _bundle("transaction", _entry("PATCH", f"Task/{task['id']}", fixtures.patient()))
    assert _post_bundle(client, not_a_patch).status_code == 400


def test_patch_entries_in_a_batch_stand_alone_and_may_be_conditional(client):
    _create(client, fixtures.task(order="ORD-PT3"))
    bundle = _bundle(
        "batch",
        _entry(
            "PATCH",
            "Task?identifier=https://cart-adapter.example.org/order|ORD-PT3",
            _fhirpath(_replace("Task.status", valueCode="accepted")),
        ),
        _entry("PATCH", "Task/does-not-exist", _fhirpath(_replace("Task.status", valueCode="accepted"))),
        _entry(
            "PATCH",
            "Task?identifier=https://cart-adapter.example.org/order|ORD-NONE",
            _fhirpath(_replace("Task.status", valueCode="accepted")),
        ),
    )
    response = _post_bundle(client, bundle)
    assert response.status_code == 200, response.get_data(as_text=True)
    statuses = [e["response"]["status"][:3] for e in response.get_json()["entry"]]
    assert statuses == ["200", "404", "404"]
    found = client.get("/fhir/Task?identifier=https://cart-adapter.example.org/order|ORD-PT3").get_json()
    assert found["entry"][0]["resource"]["status"] == "accepted"


# -- conditional references to what the Bundle itself writes (http.html: resolved last) ---------------

_INS_QUERY = "identifier=urn:oid:1.2.250.1.213.1.4.8|2750399123456"


def _observation_of(reference: str) -> dict:
    return {
        "resourceType": "Observation",
        "status": "final",
        "code": {"text": "CD19+ cells"},
        "subject": {"reference": reference},
    }


def test_a_conditional_reference_finds_the_patient_a_later_entry_creates(client):
    """A mapped HL7 v2 message creates its patient (ifNoneExist) and refers to it by INS; the entry that
    refers comes first in the Bundle, and is still resolved after the patient is written."""
    bundle = _bundle(
        "transaction",
        _entry("POST", "Observation", _observation_of(f"Patient?{_INS_QUERY}")),
        _entry("POST", "Patient", fixtures.patient(), ifNoneExist=_INS_QUERY),
    )
    response = _post_bundle(client, bundle)
    assert response.status_code == 200, response.get_data(as_text=True)
    observation_entry, patient_entry = response.get_json()["entry"]
    assert patient_entry["response"]["status"] == "201 Created"
    patient_id = _location_id(patient_entry["response"]["location"], "Patient")
    observation_id = _location_id(observation_entry["response"]["location"], "Observation")
    assert _read(client, "Observation", observation_id)["subject"] == {"reference": f"Patient/{patient_id}"}


def test_a_conditional_reference_finds_a_resource_a_put_of_the_bundle_creates(client):
    bundle = _bundle(
        "transaction",
        _entry("POST", "Observation", _observation_of(f"Patient?{_INS_QUERY}")),
        _entry("PUT", "Patient/ins-2750399123456", dict(fixtures.patient(), id="ins-2750399123456")),
    )
    response = _post_bundle(client, bundle)
    assert response.status_code == 200, response.get_data(as_text=True)
    location = response.get_json()["entry"][0]["response"]["location"]
    observation = _read(client, "Observation", _location_id(location, "Observation"))
    assert observation["subject"] == {"reference": "Patient/ins-2750399123456"}


def test_a_conditional_reference_that_the_bundle_makes_ambiguous_fails_the_transaction(client):
    _create(client, fixtures.patient())
    before = _count(client, "Observation")
    bundle = _bundle(
        "transaction",
        _entry("POST", "Patient", fixtures.patient()),  # a second patient with the same INS
        _entry("POST", "Observation", _observation_of(f"Patient?{_INS_QUERY}")),
    )
    response = _post_bundle(client, bundle)
    assert response.status_code == 412
    assert "matches 2 resources" in response.get_json()["issue"][0]["diagnostics"]
    assert _count(client, "Observation") == before
    assert _count(client, "Patient", [("identifier", "urn:oid:1.2.250.1.213.1.4.8|2750399123456")]) == 1
