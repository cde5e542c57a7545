"""POST /ingest/{mapping}: hospital files mapped, validated and stored; bad records rejected with reasons."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import bearer_for

FIXTURES = Path(__file__).resolve().parents[2] / "mappings" / "fixtures"
HL7 = {"Content-Type": "application/hl7-v2"}  # each message declares its charset in MSH-18
CSV = {"Content-Type": "text/csv; charset=utf-8"}


def _params(response) -> dict:  # type: ignore[no-untyped-def]
    body = response.get_json()
    assert body["resourceType"] == "Parameters", body
    return {p["name"]: p.get("resource", p.get("valueInteger")) for p in body["parameter"]}


def _count(client, res_type: str) -> int:  # type: ignore[no-untyped-def]
    return client.get(f"/fhir/{res_type}?_summary=count").get_json()["total"]


def test_dry_run_returns_bundle_and_outcome_and_stores_nothing(client) -> None:
    data = (FIXTURES / "hl7v2-adt" / "mixed-batch.hl7").read_bytes()
    response = client.post("/ingest/hl7v2-adt?dry-run=true", data=data, headers=HL7)
    assert response.status_code == 200, response.data
    params = _params(response)
    assert params["bundle"]["type"] == "transaction"
    assert (params["records"], params["mapped"], params["rejected"]) == (5, 3, 2)
    diagnostics = " ".join(i["diagnostics"] for i in params["outcome"]["issue"])
    assert "message 3" in diagnostics and "message 4" in diagnostics
    assert _count(client, "Patient") == 0


def test_ingest_stores_good_records_rejects_bad_ones_and_is_idempotent(client) -> None:
    data = (FIXTURES / "hl7v2-adt" / "mixed-batch.hl7").read_bytes()
    first = client.post("/ingest/hl7v2-adt", data=data, headers=HL7)
    assert first.status_code == 200, first.data
    params = _params(first)
    assert params["rejected"] == 2
    statuses = {e["response"]["status"] for e in params["response"]["entry"]}
    assert statuses <= {"201 Created", "200 OK"}
    patients = _count(client, "Patient")
    assert patients >= 1
    again = client.post("/ingest/hl7v2-adt", data=data, headers=HL7)
    assert again.status_code == 200
    assert _count(client, "Patient") == patients  # a re-sent file updates, it does not duplicate


def test_csv_tracking_sheet_builds_one_pathway_per_row(client) -> None:
    data = (FIXTURES / "csv-tracking" / "tracking-sheet.csv").read_bytes()
    response = client.post("/ingest/csv-tracking", data=data, headers=CSV)
    assert response.status_code == 200, response.data
    params = _params(response)
    assert params["mapped"] == 2
    assert _count(client, "CarePlan") == 2
    client.post("/ingest/csv-tracking", data=data, headers=CSV)
    assert _count(client, "CarePlan") == 2


def test_unknown_mapping_and_wrong_media_type(client) -> None:
    assert client.post("/ingest/nothing-like-this", data=b"x", headers=HL7).status_code == 404
    data = (FIXTURES / "csv-tracking" / "tracking-sheet.csv").read_bytes()
    response = client.post("/ingest/hl7v2-adt", data=data, headers={"Content-Type": "text/csv"})
    assert response.status_code == 415
    assert response.get_json()["resourceType"] == "OperationOutcome"


def test_ingest_needs_a_token_and_engineers_only_dry_run(app) -> None:  # type: ignore[no-untyped-def]
    client = app.test_client()
    data = (FIXTURES / "hl7v2-adt" / "a01-ins-utf8.hl7").read_bytes()
    assert client.post("/ingest/hl7v2-adt", data=data, headers=HL7).status_code == 401
    engineer = dict(HL7, Authorization=bearer_for(app, "mapper", "engineer", "system/*.cruds"))
    assert client.post("/ingest/hl7v2-adt?dry-run=true", data=data, headers=engineer).status_code == 200
    assert client.post("/ingest/hl7v2-adt", data=data, headers=engineer).status_code == 403
