"""Inputs found by a seeded fuzzer (mutated samples, Bundles, searches, headers and hospital files sent
in process as an administrator, a hospital and a manufacturer) that answered 500 or wrote what the client
was told had failed. Each now gets a 4xx OperationOutcome and leaves the store as it was.

Every test runs on SQLite and on PostgreSQL (the `client` fixture is parametrised over both).
"""

from __future__ import annotations

import pytest

from adapter.fhirio.jsonio import dump_json
from tests import fixtures

FHIR_JSON = "application/fhir+json"


def _issue(response, status: int) -> dict:  # type: ignore[no-untyped-def]
    assert response.status_code == status, response.get_data(as_text=True)
    outcome = response.get_json()
    assert outcome["resourceType"] == "OperationOutcome", outcome
    return outcome["issue"][0]


def _total(client, query: str) -> int:  # type: ignore[no-untyped-def]
    response = client.get(query, headers={"Accept": FHIR_JSON})
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()["total"]


def _history_total(client) -> int:  # type: ignore[no-untyped-def]
    """Every version the store holds, deletes included: a write of any kind adds one."""
    return _total(client, "/fhir/_history?_count=0")


# -- a Bundle entry whose resourceType is not a string ------------------------------------------------


@pytest.mark.parametrize("resource_type", [["Patient"], {"a": 1}])
def test_transaction_entry_whose_resource_type_is_not_a_string_is_422(client, resource_type) -> None:  # type: ignore[no-untyped-def]
    # The check for profiles a deployment requires looked the resourceType up in a set: a list or an
    # object is unhashable, and the TypeError answered 500 before the validator's findings were reported.
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"request": {"method": "POST", "url": "Patient"}, "resource": fixtures.patient()},
            {"request": {"method": "POST", "url": "Patient"}, "resource": {"resourceType": resource_type}},
        ],
    }
    response = client.post("/fhir", data=dump_json(bundle), headers={"Content-Type": FHIR_JSON})
    issue = _issue(response, 422)
    assert issue["expression"] == ["Bundle.entry[1].resource"], issue
    assert _total(client, "/fhir/Patient") == 0
