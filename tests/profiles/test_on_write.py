"""The CAR-T profiles enforced on write: examples posted to the server are accepted or refused (422).

These tests need the server to load profiles/package at start-up (gate.configure with the package);
without that wiring a resource's meta.profile is unknown, only warned about, and the invalid examples
are accepted.
"""

from __future__ import annotations

import pytest

from adapter.fhirio.jsonio import dump_json
from tests.profiles.support import EXAMPLES, bundle_entry, example, example_id, examples, expected, read

FHIR_JSON = "application/fhir+json"


def _post(client, url: str, resource: dict):  # type: ignore[no-untyped-def]
    return client.post(
        url, data=dump_json(resource), headers={"Content-Type": FHIR_JSON, "Accept": FHIR_JSON}
    )


def _expressions(outcome: dict) -> set[str]:
    return {
        e
        for issue in outcome.get("issue", [])
        if issue["severity"] in ("error", "fatal")
        for e in issue.get("expression", [])
    }


@pytest.mark.parametrize("entry", examples(valid=True), ids=example_id)
def test_valid_example_is_created(client, entry: dict) -> None:  # type: ignore[no-untyped-def]
    resource = example(entry)
    response = _post(client, f"/fhir/{resource['resourceType']}", resource)
    assert response.status_code == 201, response.get_data(as_text=True)


@pytest.mark.parametrize("entry", examples(valid=False), ids=example_id)
def test_invalid_example_is_refused_naming_its_violation(client, entry: dict) -> None:  # type: ignore[no-untyped-def]
    resource = example(entry)
    response = _post(client, f"/fhir/{resource['resourceType']}", resource)
    assert response.status_code == 422, response.get_data(as_text=True)
    outcome = response.get_json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert {expression for expression, _ in expected(entry)} <= _expressions(outcome), outcome


def test_pathway_transaction_is_accepted(client) -> None:  # type: ignore[no-untyped-def]
    bundle = read(EXAMPLES / bundle_entry(valid=True)["file"])
    response = _post(client, "/fhir", bundle)
    assert response.status_code == 200, response.get_data(as_text=True)
    statuses = [e["response"]["status"] for e in response.get_json()["entry"]]
    assert statuses == ["201 Created"] * len(bundle["entry"])


def test_invalid_pathway_transaction_is_refused_naming_every_violation(client) -> None:  # type: ignore[no-untyped-def]
    entry = bundle_entry(valid=False)
    response = _post(client, "/fhir", read(EXAMPLES / entry["file"]))
    assert response.status_code == 422, response.get_data(as_text=True)
    named = _expressions(response.get_json())
    missing = {expression for expression, _ in expected(entry)} - named
    assert missing == set(), f"not reported: {sorted(missing)}"
    # Nothing of the refused transaction was stored.
    search = client.get(
        "/fhir/Patient?identifier=urn:oid:1.2.250.1.213.1.4.8|271069912345678", headers={"Accept": FHIR_JSON}
    )
    assert search.status_code == 200
    assert search.get_json().get("total", 0) == 0


@pytest.mark.parametrize("entry", examples(valid=True) + examples(valid=False), ids=example_id)
def test_validate_operation_judges_each_example_like_the_write(client, entry: dict) -> None:  # type: ignore[no-untyped-def]
    resource = example(entry)
    response = _post(client, f"/fhir/{resource['resourceType']}/$validate", resource)
    assert response.status_code == 200
    errors = _expressions(response.get_json())
    if entry["valid"]:
        assert errors == set()
    else:
        assert errors, f"{entry['file']} should be refused by its profile"
