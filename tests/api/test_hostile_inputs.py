"""Hostile and malformed inputs found by fuzzing the REST API: each one used to answer 500 (on SQLite,
on PostgreSQL or on both) and now gets a 4xx OperationOutcome that names the parameter or element.

Every test runs on SQLite and on PostgreSQL (the `client` fixture is parametrised over both); the NUL
cases only ever failed on PostgreSQL, whose text cannot hold that character.
"""

from __future__ import annotations

import base64
import json

import pytest

from adapter.fhirio.jsonio import dump_json
from adapter.fhirio.xml import parse_xml
from tests import fixtures
from tests.api.helpers import created as _create

FHIR_JSON = "application/fhir+json"
FHIR_XML = "application/fhir+xml"
JSON_PATCH = "application/json-patch+json"


def _issue(response, status: int) -> dict:  # type: ignore[no-untyped-def]
    """The first issue of the OperationOutcome a response carries, after checking its status."""
    assert response.status_code == status, response.get_data(as_text=True)
    if response.mimetype == FHIR_XML:
        outcome = parse_xml(response.data)
    else:
        outcome = response.get_json()
    assert outcome["resourceType"] == "OperationOutcome", outcome
    return outcome["issue"][0]


def _names(issue: dict, name: str) -> bool:
    return name in issue.get("expression", []) or name in issue.get("diagnostics", "")


def _cursor(*parts: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(parts)).encode()).decode().rstrip("=")


# -- search and read parameters ----------------------------------------------------------------------

HUGE = 99999999999999999999999  # beyond the 64-bit integers the database stores

BAD_QUERIES = [
    # isdigit() accepts "²" (superscript two), which int() refuses
    ("/fhir/Task?_count=%C2%B2", 400, "_count"),
    ("/fhir/Patient/_history?_count=%C2%B2", 400, "_count"),
    ("/fhir/_history?_count=%C2%B2", 400, "_count"),
    ("/fhir/AuditEvent?_count=%C2%B2", 400, "_count"),
    # exponents beyond the decimal context overflowed while computing the value's precision
    ("/fhir/Observation?value-quantity=1e999999999", 400, "value-quantity"),
    ("/fhir/Observation?value-quantity=ap1e-999999999", 400, "value-quantity"),
    ("/fhir/Observation?code-value-quantity=http://loinc.org|731-0$1e-999999999", 400, "code-value-quantity"),
    ("/fhir/RiskAssessment?probability=1e999999999", 400, "probability"),
    # PostgreSQL refuses NUL in a text parameter
    ("/fhir/Patient?name=a%00b", 400, "name"),
    ("/fhir/Patient?identifier=%00", 400, "identifier"),
    ("/fhir/Task?_id=%00", 400, "_id"),
    ("/fhir/Observation?code:not=%00", 400, "code:not"),
    ("/fhir/Observation?subject:Patient.name=%00", 400, "subject:Patient.name"),
    ("/fhir/Patient?_has:ServiceRequest:subject:code=%00", 400, "_has:ServiceRequest:subject:code"),
    ("/fhir/AuditEvent?entity=%00", 400, "entity"),
    # forged paging cursors: numbers beyond 64 bits, true as a snapshot, a NUL in a text position
    (f"/fhir/Task?_page={_cursor(2, HUGE, [1])}", 400, "_page"),
    (f"/fhir/Task?_page={_cursor(2, True, [1])}", 400, "_page"),
    (f"/fhir/Task?_sort=authored-on&_page={_cursor(2, 1, [HUGE, 1])}", 400, "_page"),
    (f"/fhir/_history?_page={_cursor(2, 1, [HUGE])}", 400, "_page"),
    (f"/fhir/Patient/_history?_page={_cursor(2, 1, [-HUGE])}", 400, "_page"),
    (f"/fhir/AuditEvent?_page={_cursor(2, 1, [HUGE])}", 400, "_page"),
    # ids and versions that cannot exist: a NUL, a version beyond 64 bits or written with "²"
    ("/fhir/Patient/%00", 404, "Patient"),
    ("/fhir/Patient/%00/_history", 404, "Patient"),
    ("/fhir/AuditEvent/%00", 404, "AuditEvent"),
    ("/fhir/Patient/x/_history/99999999999999999999", 404, "_history/99999999999999999999"),
    # version ids are 32-bit integers: PostgreSQL refused a larger one cast to the column's type (500)
    ("/fhir/Patient/x/_history/2147483648", 404, "_history/2147483648"),
    ("/fhir/Patient/x/_history/9223372036854775807", 404, "_history/9223372036854775807"),
    ("/fhir/Patient/x/_history/%C2%B2", 404, "_history/²"),
]


@pytest.mark.parametrize(("url", "status", "named"), BAD_QUERIES)
def test_bad_search_and_read_parameters_are_refused(client, url: str, status: int, named: str) -> None:  # type: ignore[no-untyped-def]
    issue = _issue(client.get(url, headers={"Accept": FHIR_JSON}), status)
    assert _names(issue, named), issue


def test_forged_cursor_with_a_nul_in_its_text_position_is_refused(client) -> None:  # type: ignore[no-untyped-def]
    _create(client, fixtures.task(status="requested", order="ORD-1"))
    _create(client, fixtures.task(status="accepted", order="ORD-2"))
    first = client.get("/fhir/Task?_sort=status&_count=1", headers={"Accept": FHIR_JSON}).get_json()
    token = next(link["url"] for link in first["link"] if link["relation"] == "next").split("_page=")[1]
    version, snapshot, position = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    assert any(isinstance(value, str) for value in position)
    forged = [value + "\x00" if isinstance(value, str) else value for value in position]
    response = client.get(
        f"/fhir/Task?_sort=status&_count=1&_page={_cursor(version, snapshot, forged)}",
        headers={"Accept": FHIR_JSON},
    )
    assert _issue(response, 400)["expression"] == ["_page"]


def test_audit_trail_search_with_count_zero_is_an_empty_page(client) -> None:  # type: ignore[no-untyped-def]
    # With records to list, the next link was built from the last of none of them: 500 on both databases
    assert client.get("/fhir/Patient", headers={"Accept": FHIR_JSON}).status_code == 200
    response = client.get("/fhir/AuditEvent?_count=0", headers={"Accept": FHIR_JSON})
    assert response.status_code == 200, response.get_data(as_text=True)
    bundle = response.get_json()
    assert bundle.get("entry", []) == []
    assert [link["relation"] for link in bundle["link"]] == ["self"]
    one = client.get("/fhir/AuditEvent?_count=1", headers={"Accept": FHIR_JSON}).get_json()
    assert len(one["entry"]) == 1


def test_bad_values_in_a_form_search_are_refused(client) -> None:  # type: ignore[no-untyped-def]
    for form, named in (("status=req%00uested", "status"), ("_count=%C2%B2", "_count")):
        response = client.post(
            "/fhir/Task/_search",
            data=form,
            content_type="application/x-www-form-urlencoded",
            headers={"Accept": FHIR_JSON},
        )
        assert _issue(response, 400)["expression"] == [named], form


def test_a_form_search_body_of_raw_bytes_that_are_not_utf8_is_refused(client) -> None:  # type: ignore[no-untyped-def]
    # werkzeug dropped the whole form it could not decode: the search ran without its filters and
    # answered every Patient
    _create(client, fixtures.patient())
    response = client.post(
        "/fhir/Patient/_search",
        data=b"name=\xff\xfe&_count=1",
        content_type="application/x-www-form-urlencoded",
        headers={"Accept": FHIR_JSON},
    )
    assert "UTF-8" in _issue(response, 400)["diagnostics"]
    response = client.post(
        "/fhir/Patient/_search",
        data="name=Ren%C3%A9e",
        content_type="application/x-www-form-urlencoded",
        headers={"Accept": FHIR_JSON},
    )
    assert response.status_code == 200 and response.get_json()["total"] == 0


def test_nul_in_a_conditional_write_query_is_refused(client) -> None:  # type: ignore[no-untyped-def]
    response = client.put(
        "/fhir/Patient?identifier=%00",
        data=dump_json(fixtures.patient()),
        headers={"Content-Type": FHIR_JSON, "Accept": FHIR_JSON},
    )
    assert _issue(response, 400)["expression"] == ["identifier"]
    response = client.post(
        "/fhir/Patient",
        data=dump_json(fixtures.patient()),
        headers={"Content-Type": FHIR_JSON, "Accept": FHIR_JSON, "If-None-Exist": "identifier=%00"},
    )
    assert _issue(response, 400)["expression"] == ["identifier"]


def test_huge_integer_json_number_is_indexed_like_a_huge_decimal(client) -> None:  # type: ignore[no-untyped-def]
    observation = fixtures.observation()
    observation["valueQuantity"] = {"value": 10**400, "code": "g", "system": "http://unitsofmeasure.org"}
    created = _create(client, observation)
    response = client.get("/fhir/Observation?value-quantity=gt1e300", headers={"Accept": FHIR_JSON})
    assert response.status_code == 200
    assert [e["resource"]["id"] for e in response.get_json()["entry"]] == [created["id"]]


LONG_SYSTEM = "urn:example:" + "s" * 300  # beyond the index's 255-character system column
LONG_VALUE = "v" * 600  # beyond its 512-character value column


def _ids(client, query: str) -> list[str]:  # type: ignore[no-untyped-def]
    response = client.get(query, headers={"Accept": FHIR_JSON})
    assert response.status_code == 200, response.get_data(as_text=True)
    return [e["resource"]["id"] for e in response.get_json().get("entry", [])]


def test_identifier_with_a_system_longer_than_its_index_column_is_stored_and_found(client) -> None:  # type: ignore[no-untyped-def]
    # PostgreSQL refused the index row (varchar(255)): a 500 for a valid resource
    patient = fixtures.patient()
    patient["identifier"] = [{"system": LONG_SYSTEM, "value": LONG_VALUE}]
    created = _create(client, patient)
    assert created["identifier"][0]["system"] == LONG_SYSTEM  # stored whole; only the index cuts
    assert _ids(client, f"/fhir/Patient?identifier={LONG_SYSTEM}|{LONG_VALUE}") == [created["id"]]
    assert _ids(client, f"/fhir/Patient?identifier={LONG_SYSTEM}|other") == []


def test_quantity_with_a_long_system_and_unit_is_stored_and_found(client) -> None:  # type: ignore[no-untyped-def]
    observation = fixtures.observation()
    observation["valueQuantity"] = {"value": 5, "system": LONG_SYSTEM, "code": LONG_VALUE}
    created = _create(client, observation)
    found = _ids(client, f"/fhir/Observation?value-quantity=5|{LONG_SYSTEM}|{LONG_VALUE}")
    assert found == [created["id"]]


def test_string_longer_than_its_index_column_is_found_by_its_whole_text(client) -> None:  # type: ignore[no-untyped-def]
    patient = fixtures.patient()
    patient["name"] = [{"family": "Martin" + "e" * 600}]
    created = _create(client, patient)
    assert _ids(client, "/fhir/Patient?family=Martin" + "e" * 600) == [created["id"]]


def test_relative_reference_with_an_id_no_resource_can_have_is_refused(client) -> None:  # type: ignore[no-untyped-def]
    # The owner of a Task becomes an access label (255 characters): PostgreSQL answered 500
    task = fixtures.task()
    task["owner"] = {"reference": "Organization/" + "x" * 300}
    response = client.post("/fhir/Task", data=dump_json(task), headers={"Content-Type": FHIR_JSON})
    assert _issue(response, 422)["expression"] == ["Task.owner.reference"]
    task["owner"] = {"reference": "Organization/a b"}
    response = client.post("/fhir/Task", data=dump_json(task), headers={"Content-Type": FHIR_JSON})
    assert _issue(response, 422)["expression"] == ["Task.owner.reference"]


@pytest.mark.parametrize(
    "owner",
    [
        "Organization/a/" + "x" * 300,
        "Organization//" + "x" * 300,
        "Organization/a/_history/1/" + "x" * 300,
        "Organization/" + "x" * 60 + "/" + "y" * 250,
    ],
)
def test_relative_reference_with_more_path_segments_is_refused(client, owner: str) -> None:  # type: ignore[no-untyped-def]
    # [type]/[id]/<more> escaped the [type]/[id] check: the Task owner overflowed its access label
    # (500 on PostgreSQL), for a create, an update and a transaction or batch entry alike
    task = dict(fixtures.task(), id="t1", owner={"reference": owner})
    response = client.post("/fhir/Task", data=dump_json(task), headers={"Content-Type": FHIR_JSON})
    assert _issue(response, 422)["expression"] == ["Task.owner.reference"]
    response = client.put("/fhir/Task/t1", data=dump_json(task), headers={"Content-Type": FHIR_JSON})
    assert _issue(response, 422)["expression"] == ["Task.owner.reference"]
    entry = {"request": {"method": "POST", "url": "Task"}, "resource": task}
    assert _post_bundle(client, _bundle("transaction", entry)).status_code == 422
    batch = _post_bundle(client, _bundle("batch", entry))
    assert batch.status_code == 200, batch.get_data(as_text=True)
    assert batch.get_json()["entry"][0]["response"]["status"].startswith("422")
    assert _ids(client, "/fhir/Task") == []


def test_absolute_reference_with_a_long_type_segment_is_stored_and_found(client) -> None:  # type: ignore[no-untyped-def]
    # The segment before the id is indexed as the target type, in the 255-character system column
    target = "http://example.org/fhir/" + "P" * 300 + "/1"
    observation = fixtures.observation()
    observation["focus"] = [{"reference": target}]
    created = _create(client, observation)
    assert _ids(client, f"/fhir/Observation?focus={target}") == [created["id"]]


# -- characters XML cannot carry in an OperationOutcome ------------------------------------------------


@pytest.mark.parametrize(
    ("url", "status", "named", "headers"),
    [
        ("/fhir/Patient/%01", 404, "Patient/\\u0001", {}),
        ("/fhir/Pat%01ient", 404, "Pat\\u0001ient", {}),
        ("/fhir/Patient?_sort=%01", 400, "_sort=\\u0001", {"Prefer": "handling=strict"}),
    ],
)
def test_outcome_quoting_control_characters_renders_as_xml(  # type: ignore[no-untyped-def]
    client, url: str, status: int, named: str, headers: dict
) -> None:
    issue = _issue(client.get(url, headers={"Accept": FHIR_XML, **headers}), status)
    assert _names(issue, named), issue


def test_search_warning_quoting_control_characters_renders_as_xml(client) -> None:  # type: ignore[no-untyped-def]
    response = client.get("/fhir/Patient?_sort=%01", headers={"Accept": FHIR_XML})
    assert response.status_code == 200, response.get_data(as_text=True)
    bundle = parse_xml(response.data)
    warning = bundle["entry"][-1]["resource"]["issue"][0]
    assert warning["diagnostics"].startswith("_sort=\\u0001 is not supported")


def test_invalid_json_key_is_quoted_in_an_xml_outcome(client) -> None:  # type: ignore[no-untyped-def]
    response = client.post(
        "/fhir/Patient",
        data='{"resourceType":"Patient","\\u0001":1}',
        headers={"Content-Type": FHIR_JSON, "Accept": FHIR_XML},
    )
    assert _issue(response, 422)["expression"] == ["Patient.\\u0001"]


# -- request bodies ----------------------------------------------------------------------------------


def test_unpaired_surrogate_escape_in_json_is_refused(client) -> None:  # type: ignore[no-untyped-def]
    body = '{"resourceType":"Patient","gender":"\\ud800"}'
    for method, url in (("POST", "/fhir/Patient"), ("PUT", "/fhir/Patient/p1"), ("POST", "/fhir/$validate")):
        response = client.open(
            url, method=method, data=body, headers={"Content-Type": FHIR_JSON, "Accept": FHIR_JSON}
        )
        assert "surrogate" in _issue(response, 400)["diagnostics"]
    # A well-formed pair is one character and stays accepted.
    patient = client.post(
        "/fhir/Patient",
        data='{"resourceType":"Patient","name":[{"family":"\\ud83d\\ude00"}]}',
        headers={"Content-Type": FHIR_JSON, "Accept": FHIR_JSON},
    )
    assert patient.status_code == 201
    assert patient.get_json()["name"][0]["family"] == "\U0001f600"


def test_json_integer_with_too_many_digits_is_refused(client) -> None:  # type: ignore[no-untyped-def]
    patient = _create(client, fixtures.patient())
    response = client.patch(
        f"/fhir/Patient/{patient['id']}",
        data='[{"op":"add","path":"/multipleBirthInteger","value":' + "9" * 5000 + "}]",
        headers={"Content-Type": JSON_PATCH, "Accept": FHIR_JSON},
    )
    assert "digits" in _issue(response, 400)["diagnostics"]


def test_xml_integer_with_too_many_digits_is_out_of_range(client) -> None:  # type: ignore[no-untyped-def]
    body = f"<Patient xmlns='http://hl7.org/fhir'><multipleBirthInteger value='{'9' * 5000}'/></Patient>"
    response = client.post(
        "/fhir/Patient", data=body, headers={"Content-Type": FHIR_XML, "Accept": FHIR_JSON}
    )
    assert _issue(response, 400)["expression"] == ["Patient.multipleBirthInteger"]


def test_tiny_decimal_is_written_to_xml_in_exponent_form(client) -> None:  # type: ignore[no-untyped-def]
    # Fixed-point notation would write one zero per unit of exponent: 1e-999999999 is a valid FHIR
    # decimal, and its XML rendering would take gigabytes.
    observation = dict(fixtures.observation(), id="tiny")
    observation["valueQuantity"] = {"value": "__TINY__"}
    body = dump_json(observation).replace('"__TINY__"', "1e-1000")
    response = client.put(
        "/fhir/Observation/tiny", data=body, headers={"Content-Type": FHIR_JSON, "Accept": FHIR_JSON}
    )
    assert response.status_code == 201, response.get_data(as_text=True)
    xml = client.get("/fhir/Observation/tiny", headers={"Accept": FHIR_XML})
    assert xml.status_code == 200
    assert b'<value value="1E-1000"/>' in xml.data
    assert str(parse_xml(xml.data)["valueQuantity"]["value"]) == "1E-1000"


# -- PATCH ---------------------------------------------------------------------------------------------


def _operation(*parts: dict) -> dict:
    return {"name": "operation", "part": list(parts)}


@pytest.mark.parametrize(
    ("document", "named"),
    [
        ({"resourceType": "Parameters", "parameter": 5}, "'operation' parameters"),
        ({"resourceType": "Parameters", "parameter": [{"name": "operation", "part": 5}]}, "part"),
        (
            {
                "resourceType": "Parameters",
                "parameter": [
                    _operation(
                        {"name": "type", "valueCode": ["delete"]},
                        {"name": "path", "valueString": "Patient.gender"},
                    )
                ],
            },
            "type must be one of",
        ),
        (
            {
                "resourceType": "Parameters",
                "parameter": [
                    _operation(
                        {"name": "type", "valueCode": {"a": 1}},
                        {"name": "path", "valueString": "Patient.gender"},
                    )
                ],
            },
            "type must be one of",
        ),
    ],
)
def test_malformed_fhirpath_patch_is_refused(client, document: dict, named: str) -> None:  # type: ignore[no-untyped-def]
    patient = _create(client, fixtures.patient())
    response = client.patch(
        f"/fhir/Patient/{patient['id']}",
        data=dump_json(document),
        headers={"Content-Type": FHIR_JSON, "Accept": FHIR_JSON},
    )
    assert named in _issue(response, 400)["diagnostics"]


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE"])
def test_if_match_with_non_ascii_digits_is_refused(client, method: str) -> None:  # type: ignore[no-untyped-def]
    patient = _create(client, fixtures.patient())
    body = {
        "PUT": (dump_json(patient), FHIR_JSON),
        "PATCH": ('[{"op":"replace","path":"/gender","value":"male"}]', JSON_PATCH),
        "DELETE": ("", FHIR_JSON),
    }[method]
    response = client.open(
        f"/fhir/Patient/{patient['id']}",
        method=method,
        data=body[0],
        headers={"Content-Type": body[1], "Accept": FHIR_JSON, "If-Match": 'W/"²"'},
    )
    assert "If-Match" in _issue(response, 400)["diagnostics"]


# -- Bundles -------------------------------------------------------------------------------------------


def _bundle(kind: str, *entries: dict) -> dict:
    return {"resourceType": "Bundle", "type": kind, "entry": list(entries)}


def _post_bundle(client, bundle: dict):  # type: ignore[no-untyped-def]
    return client.post(
        "/fhir", data=dump_json(bundle), headers={"Content-Type": FHIR_JSON, "Accept": FHIR_JSON}
    )


@pytest.mark.parametrize(
    ("request_part", "with_resource", "named"),
    [
        ({"method": "POST", "url": "Patient", "ifNoneExist": 5}, True, "Bundle.entry[1].request.ifNoneExist"),
        (
            {"method": "POST", "url": "Patient", "ifNoneExist": ["x"]},
            True,
            "Bundle.entry[1].request.ifNoneExist",
        ),
        ({"method": "PUT", "url": "Patient/p1", "ifMatch": 3}, True, "Bundle.entry[1].request.ifMatch"),
        (
            {"method": "DELETE", "url": "Patient/p1", "ifMatch": ["x"]},
            False,
            "Bundle.entry[1].request.ifMatch",
        ),
        ({"method": "DELETE", "url": "Patient/p1", "ifMatch": 'W/"²"'}, False, "If-Match"),
        ({"method": "GET", "url": "Patient?_count=²"}, False, "_count"),
        ({"method": "GET", "url": "Patient/p1/_history/²"}, False, "_history/²"),
        ({"method": "GET", "url": "Patient/p1/_history/99999999999999999999"}, False, "_history/"),
        ({"method": "GET", "url": "Patient/p1/_history/2147483648"}, False, "_history/2147483648"),
        ({"method": "GET", "url": "Patient?name=%00"}, False, "name"),
        ({"method": "DELETE", "url": "Patient?identifier=%00"}, False, "identifier"),
    ],
)
def test_bad_bundle_entry_fails_the_transaction_and_its_batch_entry(  # type: ignore[no-untyped-def]
    client, request_part: dict, with_resource: bool, named: str
) -> None:
    client.put(
        "/fhir/Patient/p1",
        data=dump_json(dict(fixtures.patient(), id="p1")),
        headers={"Content-Type": FHIR_JSON, "Accept": FHIR_JSON},
    )
    first = {
        "request": {"method": "POST", "url": "Patient"},
        "resource": fixtures.patient(ins="2550275111222", family="Bernard"),
    }
    entry: dict = {"request": request_part}
    if with_resource:
        entry["resource"] = dict(fixtures.patient(), id="p1")

    transaction = _post_bundle(client, _bundle("transaction", first, entry))
    issue = _issue(transaction, 400 if "_history" not in named else 404)
    assert _names(issue, named), issue
    # Nothing of the transaction was written: the first entry's Patient is not there.
    found = client.get("/fhir/Patient?family=Bernard", headers={"Accept": FHIR_JSON}).get_json()
    assert found["total"] == 0

    batch = _post_bundle(client, _bundle("batch", entry))
    assert batch.status_code == 200, batch.get_data(as_text=True)
    response = batch.get_json()["entry"][0]["response"]
    assert response["status"].startswith("400" if "_history" not in named else "404"), response
    assert _names(response["outcome"]["issue"][0], named.replace("entry[1]", "entry[0]")), response
