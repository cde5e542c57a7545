"""Index rows a resource contributes to search."""

from __future__ import annotations

import json
from pathlib import Path

from adapter.search.dates import date_range
from adapter.search.extract import IndexRow, index_rows, normalise_text, split_reference
from tests import fixtures

SAMPLES = Path(__file__).resolve().parents[2] / "samples"


def _rows(resource: dict, param: str) -> set[IndexRow]:
    return {row for row in index_rows(resource) if row.param == param}


def test_identifier_and_names() -> None:
    patient = dict(fixtures.patient(), id="p1")
    assert _rows(patient, "identifier") == {IndexRow("identifier", fixtures.INS_NIR, "2750399123456")}
    family = {row.value for row in _rows(patient, "family")}
    assert family == {"lefevre"}
    assert {"helene", "marie"} <= {row.value for row in _rows(patient, "given")}


def test_task_owner_business_status_and_references() -> None:
    task = fixtures.task(owner="Organization/kite-eu", business="in-manufacturing")
    task["focus"] = {"reference": "ServiceRequest/sr-1"}
    task["basedOn"] = [{"reference": "https://other.example.org/fhir/ServiceRequest/sr-9/_history/2"}]
    assert _rows(task, "owner") == {IndexRow("owner", "Organization", "kite-eu")}
    assert _rows(task, "focus") == {IndexRow("focus", "ServiceRequest", "sr-1")}
    # Another server's resource: by its URL (without the version), never by the id it ends with.
    other = "https://other.example.org/fhir/ServiceRequest/sr-9"
    assert _rows(task, "based-on") == {IndexRow("based-on", "ServiceRequest", other)}
    (status,) = _rows(task, "business-status")
    assert status.value == "in-manufacturing"


def test_observation_date_from_choice_element() -> None:
    observation = fixtures.observation()
    (row,) = _rows(observation, "date")
    assert (row.lo_us, row.hi_us) == date_range("2026-03-05T10:15:00+01:00")


def test_period_open_end_is_unbounded() -> None:
    procedure = {
        "resourceType": "Procedure",
        "status": "in-progress",
        "subject": {"reference": "Patient/p1"},
        "performedPeriod": {"start": "2026-03-01"},
    }
    (row,) = _rows(procedure, "date")
    assert row.lo_us == date_range("2026-03-01")[0]
    assert row.hi_us > date_range("9999")[0]
    assert _rows(procedure, "patient") == {IndexRow("patient", "Patient", "p1")}


def test_reference_forms() -> None:
    assert split_reference("Patient/123") == ("Patient", "123")
    assert split_reference("http://x/fhir/Patient/123/_history/4") == ("Patient", "123")
    assert split_reference("urn:uuid:0d6e2c1b-8d0f-4a4e-b7a5-5e2f7b9f3c22") is None
    assert split_reference("#contained") is None
    assert split_reference("Patient?identifier=x") is None


def test_normalise_text_folds_case_accents_and_spaces() -> None:
    assert normalise_text("  Hélène  LEFÈVRE ") == "helene lefevre"
    assert normalise_text("Œuvre straße") == "œuvre strasse"


def test_skipping_parameters_without_their_elements_loses_no_row() -> None:
    """index_rows skips the parameters whose paths start at elements the resource lacks; walking every
    parameter of the type gives the same rows, for each sample and for a pathway Bundle's resources."""
    from adapter.search.extract import _add_rows
    from adapter.search.params import params_for
    from bench.pathway_bundle import pathway_bundle

    samples = [json.loads(path.read_text()) for path in sorted(SAMPLES.glob("*.json"))]
    samples += [entry["resource"] for entry in pathway_bundle(7)["entry"]]
    total = 0
    for resource in samples:
        every: dict = {}
        for param in params_for(resource["resourceType"]).values():
            _add_rows(param, resource, every)
        assert set(index_rows(resource)) == set(every), resource["resourceType"]
        total += len(every)
    assert total > 150
