"""FHIR R4 REST conformance (http.html): status codes, headers and Bundle rules, on SQLite and PostgreSQL."""

from __future__ import annotations

from tests import fixtures
from tests.api.helpers import created


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
