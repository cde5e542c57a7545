"""Hostile input is refused with 4xx, stores nothing, and the service keeps answering."""

from __future__ import annotations

import logging

import pytest
import requests

from tests.conftest import bearer_for

XML = {"Content-Type": "application/fhir+xml"}
JSON = {"Content-Type": "application/fhir+json"}

ATTACKS = {
    "xxe": (
        b'<?xml version="1.0"?><!DOCTYPE Patient [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
        b'<Patient xmlns="http://hl7.org/fhir"><gender value="&xxe;"/></Patient>',
        XML,
    ),
    "billion-laughs": (
        b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
        b'<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">'
        b'<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>'
        b'<Patient xmlns="http://hl7.org/fhir"><gender value="&lol3;"/></Patient>',
        XML,
    ),
    "external-dtd": (
        b'<?xml version="1.0"?><!DOCTYPE Patient SYSTEM "http://127.0.0.1:9/evil.dtd">'
        b'<Patient xmlns="http://hl7.org/fhir"><gender value="female"/></Patient>',
        XML,
    ),
    "parameter-entity": (
        b'<?xml version="1.0"?><!DOCTYPE p [<!ENTITY % r SYSTEM "http://127.0.0.1:9/x">%r;]>'
        b'<Patient xmlns="http://hl7.org/fhir"/>',
        XML,
    ),
    "deep-json": (b'{"resourceType":"Patient","extension":' + b"[" * 100000 + b"]" * 100000 + b"}", JSON),
    "deep-objects": (b'{"resourceType":"Patient","a":' + b'{"a":' * 5000 + b"1" + b"}" * 5000 + b"}", JSON),
    "invalid-utf8": (b'{"resourceType":"Patient","name":[{"family":"Lef\xe8vre"}]}', JSON),
    "invalid-utf8-xml": (
        b'<Patient xmlns="http://hl7.org/fhir"><name><family value="Lef\xe8vre"/></name></Patient>',
        XML,
    ),
}


def _count(client) -> int:  # type: ignore[no-untyped-def]
    return client.get("/fhir/Patient?_summary=count").get_json()["total"]


@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_hostile_bodies_are_refused_and_nothing_is_stored(client, attack: str) -> None:
    body, headers = ATTACKS[attack]
    for method, url in (("POST", "/fhir/Patient"), ("PUT", "/fhir/Patient/p1"), ("POST", "/fhir")):
        response = client.open(url, method=method, data=body, headers=headers)
        assert 400 <= response.status_code < 500, (attack, method, url, response.status_code)
        assert response.get_json()["resourceType"] == "OperationOutcome"
    assert _count(client) == 0
    assert client.get("/fhir/metadata").status_code == 200


def test_fifty_megabytes_over_a_real_socket_is_413_and_the_server_still_answers(live_server) -> None:  # type: ignore[no-untyped-def]
    session = live_server.session()
    body = (
        b'{"resourceType":"Patient","text":{"status":"generated","div":"' + b"x" * (50 * 1024 * 1024) + b'"}}'
    )
    try:
        response = session.post(f"{live_server.base}/Patient", data=body, headers=JSON, timeout=60)
        assert response.status_code == 413
        assert response.json()["resourceType"] == "OperationOutcome"
    except requests.ConnectionError:
        # The server may close the connection once it has refused the body; that is a refusal too.
        pass
    after = session.get(f"{live_server.base}/Patient?_summary=count", timeout=10)
    assert after.status_code == 200
    assert after.json()["total"] == 0


def test_security_headers_and_no_cors_by_default(client) -> None:
    response = client.get("/fhir/metadata", headers={"Origin": "https://evil.example.com"})
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert "default-src 'none'" in response.headers["Content-Security-Policy"]
    assert "Access-Control-Allow-Origin" not in response.headers


def test_an_unexpected_error_is_a_500_outcome_and_its_log_line_names_the_request_id_not_free_text(
    app, caplog
) -> None:  # type: ignore[no-untyped-def]
    # Built at run time: the log line's stack quotes source lines, and this one must not hold the name.
    name, given = "Lef" + "evre", "Hel" + "ene"

    def boom() -> None:
        raise RuntimeError(f"Mme {given} {name}")  # a message quoting patient data never reaches the log

    app.add_url_rule("/fhir-test/boom", "boom", boom)
    client = app.test_client()
    authorization = bearer_for(app, "ops")
    with caplog.at_level(logging.ERROR, logger="adapter.api.errors"):
        plain = client.get(
            "/fhir-test/boom", headers={"Authorization": authorization, "X-Request-Id": "ehr-42"}
        )
        free = client.get(
            "/fhir-test/boom",
            headers={"Authorization": authorization, "X-Request-Id": f"{name} {given} 1975"},
        )
    assert plain.status_code == free.status_code == 500
    assert plain.get_json()["issue"][0]["diagnostics"].startswith("internal error; quote incident ")
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "(X-Request-Id ehr-42): RuntimeError" in logged
    assert name not in logged and given not in logged, logged
    assert "(X-Request-Id (free text: see the audit record)): RuntimeError" in logged
    assert free.headers["X-Request-Id"] == f"{name} {given} 1975"
