"""The floor endpoints bench/ measures against: present only when configured, and doing what they say."""

from __future__ import annotations

import json

from adapter import create_app
from adapter.config import Settings
from bench.pathway_bundle import pathway_bundle
from tests.conftest import bearer_for

FHIR_JSON = "application/fhir+json"


def _app(tmp_path, enabled: bool):  # type: ignore[no-untyped-def]
    return create_app(Settings(instance_path=tmp_path, bench_endpoints=enabled))


def test_the_floors_answer_when_configured(tmp_path):
    app = _app(tmp_path, True)
    client = app.test_client()
    # Below Flask: no token needed, no audit record, the constant body.
    bare = client.get("/bench/wsgi")
    assert bare.status_code == 200 and bare.get_json()["resourceType"] == "OperationOutcome"
    # Through Flask: a token is needed like everywhere else.
    assert client.get("/bench/constant").status_code == 401
    headers = {"Authorization": bearer_for(app, "bench-hospital"), "Content-Type": FHIR_JSON}
    assert client.get("/bench/constant", headers=headers).get_data() == bare.get_data()
    body = json.dumps(pathway_bundle(7))
    assert client.post("/bench/parse", data=body, headers=headers).status_code == 200
    broken = json.dumps({"resourceType": "Bundle", "type": "transaction", "entry": "not a list"})
    refused = client.post("/bench/parse", data=broken, headers=headers)
    assert refused.status_code == 400 and refused.get_json()["resourceType"] == "OperationOutcome"
    # Nothing was stored by any of them.
    assert client.get("/fhir/Patient?_summary=count", headers=headers).get_json()["total"] == 0
    app.extensions["cart_adapter"].close()


def test_the_floors_do_not_exist_unless_configured(tmp_path):
    app = _app(tmp_path, False)
    client = app.test_client()
    headers = {"Authorization": bearer_for(app, "bench-hospital")}
    for path in ("/bench/wsgi", "/bench/constant"):
        assert client.get(path, headers=headers).status_code == 404, path
    assert client.post("/bench/parse", data="{}", headers=headers).status_code == 404
    app.extensions["cart_adapter"].close()
