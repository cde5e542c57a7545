"""FHIR R4 REST conformance (http.html): status codes, headers and Bundle rules, on SQLite and PostgreSQL."""

from __future__ import annotations

from tests import fixtures
from tests.api.helpers import created, send


def test_head_answers_like_get_without_a_body(client):
    """HEAD is allowed wherever GET is (http.html; RFC 9110: the same status and headers, no body)."""
    patient = created(client, fixtures.patient())
    read = client.head(f"/fhir/Patient/{patient['id']}")
    assert read.status_code == 200
    assert read.headers["ETag"] == 'W/"1"'
    assert read.data == b""
    search = client.head(f"/fhir/Patient?_id={patient['id']}")
    assert search.status_code == 200 and search.data == b""
    assert client.head("/fhir/Patient/unknown").status_code == 404
    # A HEAD on the type with a query string is a search, never a conditional patch.
    patch = client.open(
        f"/fhir/Patient?_id={patient['id']}",
        method="HEAD",
        data=b'[{"op": "replace", "path": "/gender", "value": "male"}]',
        headers={"Content-Type": "application/json-patch+json"},
    )
    assert patch.status_code == 200
    assert client.get(f"/fhir/Patient/{patient['id']}").get_json()["meta"]["versionId"] == "1"


def _bundle(kind: str, *entries: dict) -> dict:
    return {"resourceType": "Bundle", "type": kind, "entry": list(entries)}


def test_delete_of_a_resource_that_never_existed_succeeds_and_changes_nothing(client):
    """http.html delete: on success, or when the resource does not exist at all, 200 or 204."""
    response = client.delete("/fhir/Patient/never-existed")
    assert response.status_code == 204 and response.data == b""
    assert client.get("/fhir/Patient/never-existed").status_code == 404
    assert client.get("/fhir/Patient/_history").get_json().get("entry", []) == []
    # A version-aware delete of nothing has nothing to match.
    assert send(client, "DELETE", "/fhir/Patient/never-existed", If_Match='W/"1"').status_code == 412
    delete = {"request": {"method": "DELETE", "url": "Patient/never-existed"}}
    transaction = send(client, "POST", "/fhir", _bundle("transaction", delete)).get_json()
    assert transaction["entry"][0]["response"]["status"].startswith("204")
    batch = send(client, "POST", "/fhir", _bundle("batch", delete)).get_json()
    assert batch["entry"][0]["response"]["status"].startswith("204")
