"""Inputs found by a seeded fuzzer (mutated samples, Bundles, searches, headers and hospital files sent
in process as an administrator, a hospital and a manufacturer) that answered 500 or wrote what the client
was told had failed. Each now gets a 4xx OperationOutcome and leaves the store as it was.

Every test runs on SQLite and on PostgreSQL (the `client` fixture is parametrised over both).
"""

from __future__ import annotations

import base64

import pytest

from adapter.fhirio.jsonio import dump_json
from tests import fixtures
from tests.api.helpers import created as _create
from tests.api.helpers import issue_of as _issue

FHIR_JSON = "application/fhir+json"
FHIR_XML = "application/fhir+xml"
JSON_PATCH = "application/json-patch+json"


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


# -- an Accept the server cannot answer in, on a write -------------------------------------------------


def test_write_with_an_accept_the_server_cannot_answer_in_is_406_and_stores_nothing(client) -> None:  # type: ignore[no-untyped-def]
    # The 406 came from rendering the response, after the write was committed: the client, told that
    # its request failed, would send it again and duplicate what it created.
    patient = _create(client, fixtures.patient())
    before = _history_total(client)
    refused = {"Accept": "text/html"}
    entry = {"request": {"method": "POST", "url": "Patient"}, "resource": fixtures.patient()}
    requests = [
        ("POST", "/fhir/Patient", dump_json(fixtures.patient()), FHIR_JSON),
        ("PUT", f"/fhir/Patient/{patient['id']}", dump_json(dict(patient, gender="male")), FHIR_JSON),
        ("PUT", "/fhir/Patient/new-one", dump_json(dict(fixtures.patient(), id="new-one")), FHIR_JSON),
        ("PUT", "/fhir/Patient?identifier=urn:s|new", dump_json(fixtures.patient()), FHIR_JSON),
        ("PATCH", f"/fhir/Patient/{patient['id']}", '[{"op":"remove","path":"/gender"}]', JSON_PATCH),
        ("DELETE", f"/fhir/Patient/{patient['id']}", None, FHIR_JSON),
        ("DELETE", f"/fhir/Patient?_id={patient['id']}", None, FHIR_JSON),
        (
            "POST",
            "/fhir",
            dump_json({"resourceType": "Bundle", "type": "transaction", "entry": [entry]}),
            FHIR_JSON,
        ),
    ]
    for method, url, body, content_type in requests:
        for negotiation, query in ((refused, ""), ({"Accept": FHIR_JSON}, "_format=html")):
            target = f"{url}{'&' if '?' in url else '?'}{query}" if query else url
            response = client.open(
                target, method=method, data=body, headers={"Content-Type": content_type, **negotiation}
            )
            assert response.status_code == 406, (method, target, response.get_data(as_text=True))
            assert _history_total(client) == before, (method, target)
    stored = client.get(f"/fhir/Patient/{patient['id']}", headers={"Accept": FHIR_JSON}).get_json()
    assert stored["meta"]["versionId"] == patient["meta"]["versionId"]


def test_ingest_with_an_accept_the_server_cannot_answer_in_is_406_and_stores_nothing(client) -> None:  # type: ignore[no-untyped-def]
    from pathlib import Path

    source = Path(__file__).parents[2] / "mappings/fixtures/csv-tracking/tracking-sheet.csv"
    before = _history_total(client)
    response = client.post(
        "/ingest/csv-tracking",
        data=source.read_bytes(),
        headers={"Content-Type": "text/csv", "Accept": "text/html"},
    )
    assert response.status_code == 406, response.get_data(as_text=True)
    assert _history_total(client) == before


# -- a number whose exponent Decimal cannot hold --------------------------------------------------------

HUGE_EXPONENT = "1e9999999999999999999"  # beyond Decimal's exponent limit (999999999999999999)


def test_json_number_with_an_exponent_beyond_decimal_limits_is_400(client) -> None:  # type: ignore[no-untyped-def]
    # json.loads handed the literal to Decimal, whose InvalidOperation (an ArithmeticError, not a
    # ValueError) went through the parser's handlers: a create, a JSON Patch and a Bundle answered 500.
    before = _history_total(client)
    observation = dump_json(dict(fixtures.observation(), valueQuantity={"value": "__N__"}))
    body = observation.replace('"__N__"', HUGE_EXPONENT)
    response = client.post("/fhir/Observation", data=body, headers={"Content-Type": FHIR_JSON})
    diagnostics = _issue(response, 400)["diagnostics"]
    assert HUGE_EXPONENT in diagnostics and "line 1 column" in diagnostics, diagnostics

    patient = _create(client, fixtures.patient())
    response = client.patch(
        f"/fhir/Patient/{patient['id']}",
        data=f'[{{"op":"add","path":"/multipleBirthInteger","value":{HUGE_EXPONENT}}}]',
        headers={"Content-Type": JSON_PATCH},
    )
    assert HUGE_EXPONENT in _issue(response, 400)["diagnostics"]

    entry = {"request": {"method": "POST", "url": "Observation"}, "resource": "__R__"}
    bundle = dump_json({"resourceType": "Bundle", "type": "transaction", "entry": [entry]})
    response = client.post("/fhir", data=bundle.replace('"__R__"', body), headers={"Content-Type": FHIR_JSON})
    assert HUGE_EXPONENT in _issue(response, 400)["diagnostics"]

    patch = base64.b64encode(f'[{{"op":"add","path":"/gender","value":{HUGE_EXPONENT}}}]'.encode()).decode()
    binary = {"resourceType": "Binary", "contentType": JSON_PATCH, "data": patch}
    entry = {"request": {"method": "PATCH", "url": f"Patient/{patient['id']}"}, "resource": binary}
    response = client.post(
        "/fhir",
        data=dump_json({"resourceType": "Bundle", "type": "transaction", "entry": [entry]}),
        headers={"Content-Type": FHIR_JSON},
    )
    assert HUGE_EXPONENT in _issue(response, 400)["diagnostics"]
    assert _history_total(client) == before + 1  # the patient only


def test_xml_decimal_with_an_exponent_beyond_decimal_limits_is_400_naming_the_element(client) -> None:  # type: ignore[no-untyped-def]
    body = (
        "<Observation xmlns='http://hl7.org/fhir'><status value='final'/><code><text value='x'/></code>"
        f"<valueQuantity><value value='{HUGE_EXPONENT}'/></valueQuantity></Observation>"
    )
    response = client.post("/fhir/Observation", data=body, headers={"Content-Type": FHIR_XML})
    assert _issue(response, 400)["expression"] == ["Observation.valueQuantity.value"]
    assert _total(client, "/fhir/Observation") == 0


def test_json_source_with_an_exponent_beyond_decimal_limits_is_refused_and_stores_nothing(client) -> None:  # type: ignore[no-untyped-def]
    from pathlib import Path

    source = Path(__file__).parents[2] / "mappings/fixtures/json-export/export.json"
    before = _history_total(client)
    data = source.read_bytes().rstrip()
    assert data.endswith(b"}")
    data = data[:-1] + f',"x":{HUGE_EXPONENT}}}'.encode()
    response = client.post("/ingest/json-export", data=data, headers={"Content-Type": "application/json"})
    assert response.status_code < 500, response.get_data(as_text=True)
    assert HUGE_EXPONENT in response.get_data(as_text=True)
    assert _history_total(client) == before
