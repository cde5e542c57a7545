"""FHIR R4 REST conformance (http.html): status codes, headers and Bundle rules, on SQLite and PostgreSQL."""

from __future__ import annotations

from tests import fixtures
from tests.api.helpers import created, json_patch_binary, send


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


def test_a_transaction_whose_conditional_delete_or_patch_resolves_to_another_entrys_resource_fails(client):
    """http.html transaction rules: if identities overlap across the DELETE, POST and PUT/PATCH steps,
    including identities resolved from a conditional update or delete, the transaction SHALL fail."""
    send(client, "PUT", "/fhir/Organization/hcl", dict(fixtures.organization(), id="hcl"))
    put = {
        "resource": dict(fixtures.organization(), id="hcl", name="HCL renamed"),
        "request": {"method": "PUT", "url": "Organization/hcl"},
    }
    conditional_delete = {"request": {"method": "DELETE", "url": "Organization?_id=hcl"}}
    rename = json_patch_binary(b'[{"op": "replace", "path": "/name", "value": "patched"}]')
    conditional_patch = {"resource": rename, "request": {"method": "PATCH", "url": "Organization?_id=hcl"}}
    for other in (conditional_delete, conditional_patch):
        response = send(client, "POST", "/fhir", _bundle("transaction", other, put))
        assert response.status_code == 400, response.get_data(as_text=True)
        assert response.get_json()["resourceType"] == "OperationOutcome"
    both = send(client, "POST", "/fhir", _bundle("transaction", conditional_delete, conditional_patch))
    assert both.status_code == 400
    stored = client.get("/fhir/Organization/hcl").get_json()
    assert stored["meta"]["versionId"] == "1" and stored["name"] == "Hospices Civils de Lyon"
    # Each alone still works, and a conditional delete that matches nothing takes no identity.
    alone = send(client, "POST", "/fhir", _bundle("transaction", conditional_patch))
    assert alone.status_code == 200, alone.get_data(as_text=True)
    nothing = {"request": {"method": "DELETE", "url": "Organization?_id=nothing"}}
    assert send(client, "POST", "/fhir", _bundle("transaction", nothing, put)).status_code == 200
    assert send(client, "POST", "/fhir", _bundle("transaction", conditional_delete)).status_code == 200
    assert client.get("/fhir/Organization/hcl").status_code == 410


def test_prefer_return_in_a_batch_or_transaction_applies_to_each_write_entry(client):
    """http.html: in a batch or transaction response the Prefer header decides, entry by entry, whether
    the resource is returned; return=OperationOutcome asks for an OperationOutcome instead of it. A read
    or a search entry answers with what it read whatever the preference."""
    send(client, "PUT", "/fhir/Organization/hcl", dict(fixtures.organization(), id="hcl"))
    for kind in ("transaction", "batch"):
        bundle = _bundle(
            kind,
            {"resource": fixtures.patient(), "request": {"method": "POST", "url": "Patient"}},
            {"request": {"method": "GET", "url": "Organization/hcl"}},
            {"request": {"method": "GET", "url": "Organization?_id=hcl"}},
        )
        outcome = send(client, "POST", "/fhir", bundle, Prefer="return=OperationOutcome").get_json()
        write, read, search = outcome["entry"]
        assert "resource" not in write
        assert write["response"]["status"].startswith("201")
        assert write["response"]["outcome"]["resourceType"] == "OperationOutcome"
        assert read["resource"]["id"] == "hcl"
        assert search["resource"]["type"] == "searchset"
        minimal = send(client, "POST", "/fhir", bundle, Prefer="return=minimal").get_json()
        write, read, search = minimal["entry"]
        assert "resource" not in write and write["response"]["location"]
        assert read["resource"]["id"] == "hcl"
        assert search["resource"]["type"] == "searchset"
        full = send(client, "POST", "/fhir", bundle).get_json()
        assert full["entry"][0]["resource"]["resourceType"] == "Patient"


def test_the_capability_statement_claims_for_audit_event_only_what_the_audit_trail_does(client):
    """AuditEvent is the server's audit trail: read and search only; a CapabilityStatement states what
    the server really supports (capabilitystatement.html)."""
    statement = client.get("/fhir/metadata").get_json()
    audit = next(r for r in statement["rest"][0]["resource"] if r["type"] == "AuditEvent")
    assert {i["code"] for i in audit["interaction"]} == {"read", "search-type"}
    assert {p["name"] for p in audit["searchParam"]} == {"agent-name", "entity", "date"}
    for claim in ("updateCreate", "conditionalCreate", "conditionalUpdate", "readHistory"):
        assert not audit.get(claim), claim
    assert audit.get("conditionalDelete", "not-supported") == "not-supported"
    assert not audit.get("searchInclude") and not audit.get("searchRevInclude")
    # What it no longer claims is indeed refused.
    event = {"resourceType": "AuditEvent"}
    assert send(client, "POST", "/fhir/AuditEvent", event).status_code == 403
    assert client.get("/fhir/AuditEvent?outcome=0").status_code == 400


def test_if_none_match_on_read_takes_a_list_of_etags(client):
    """Conditional read (http.html cread) uses HTTP's If-None-Match, whose value may list several ETags:
    any one of them equal to the current version gives 304."""
    patient = created(client, fixtures.patient())
    url = f"/fhir/Patient/{patient['id']}"
    assert client.get(url, headers={"If-None-Match": 'W/"7", W/"1"'}).status_code == 304
    assert client.get(url, headers={"If-None-Match": 'W/"7", W/"8"'}).status_code == 200
    assert client.get(url, headers={"If-None-Match": 'W/"11"'}).status_code == 200


def test_conditional_create_that_finds_a_match_does_not_report_an_update(client):
    """If-None-Exist with one match: the server ignores the POST and answers 200 (http.html ccreate);
    the OperationOutcome asked for with Prefer must not say the resource was updated."""
    patient = created(client, fixtures.patient())
    response = send(
        client,
        "POST",
        "/fhir/Patient",
        fixtures.patient(),
        If_None_Exist=f"_id={patient['id']}",
        Prefer="return=OperationOutcome",
    )
    assert response.status_code == 200
    text = response.get_json()["issue"][0]["diagnostics"]
    assert "updated" not in text and "version 1" in text
    assert client.get(f"/fhir/Patient/{patient['id']}").get_json()["meta"]["versionId"] == "1"


def test_a_response_without_a_body_announces_no_content_type(client):
    """A 204, a 304 and a write answered with Prefer: return=minimal have no body to describe; Flask's
    default Content-Type (text/html) would claim one."""
    created = send(client, "POST", "/fhir/Patient", fixtures.patient(), Prefer="return=minimal")
    assert created.status_code == 201 and created.data == b""
    assert "Content-Type" not in created.headers
    url = created.headers["Location"].split("/_history")[0].removeprefix("http://localhost")
    etag = client.get(url).headers["ETag"]
    not_modified = client.get(url, headers={"If-None-Match": etag})
    assert not_modified.status_code == 304 and "Content-Type" not in not_modified.headers
    deleted = client.delete(url)
    assert deleted.status_code == 204 and "Content-Type" not in deleted.headers
    assert client.get(url).headers["Content-Type"].startswith("application/fhir+json")  # 410 outcome


def test_a_bundle_entry_on_another_server_is_refused_by_its_url(client):
    entry = {"request": {"method": "GET", "url": "https://other.example.org/fhir/Patient/1"}}
    bundle = {"resourceType": "Bundle", "type": "batch", "entry": [entry]}
    response = send(client, "POST", "/fhir", bundle)
    assert response.status_code == 200
    result = response.get_json()["entry"][0]["response"]
    assert result["status"].startswith("400")
    issue = result["outcome"]["issue"][0]
    assert (
        issue["expression"] == ["Bundle.entry[0].request.url"]
        and "not on this server" in issue["diagnostics"]
    )
    own = {"request": {"method": "GET", "url": "http://localhost/fhir/Patient?_summary=count"}}
    response = send(client, "POST", "/fhir", dict(bundle, entry=[own]))
    assert response.get_json()["entry"][0]["response"]["status"].startswith("200")


def test_put_with_if_none_match_star_creates_only(client):
    """HTTP If-None-Match: * on a PUT: only when the target has no current representation (412 else);
    a client creating with its own id is sure not to overwrite."""
    url = "/fhir/Organization/clb-lyon"
    organization = dict(fixtures.organization("690781810"), id="clb-lyon")
    assert send(client, "PUT", url, organization, If_None_Match="*").status_code == 201
    again = send(client, "PUT", url, dict(organization, name="Autre"), If_None_Match="*")
    assert again.status_code == 412
    assert client.get(url).get_json()["meta"]["versionId"] == "1"
    assert send(client, "PUT", url, dict(organization, name="Autre")).status_code == 200  # without it
    assert client.delete(url).status_code == 204
    assert send(client, "PUT", url, organization, If_None_Match="*").status_code == 201  # deleted: absent
