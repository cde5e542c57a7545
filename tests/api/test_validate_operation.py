"""$validate and validation on write: one validator judges both."""

from __future__ import annotations

from click.testing import CliRunner

from adapter.cli import main
from adapter.fhirio.jsonio import dump_json
from tests import fixtures
from tests.api.helpers import send
from tests.conftest import bearer_for


def _issues(response) -> list[dict]:  # type: ignore[no-untyped-def]
    assert response.status_code == 200, response.data
    body = response.get_json()
    assert body["resourceType"] == "OperationOutcome"
    return body["issue"]


def test_validate_answers_200_for_valid_and_invalid(client) -> None:
    good = _issues(send(client, "POST", "/fhir/Patient/$validate", fixtures.patient()))
    assert not [i for i in good if i["severity"] in ("error", "fatal")]
    bad = dict(fixtures.patient(), gender="femme", birthDate="12/03/1975")
    errors = [
        i for i in _issues(send(client, "POST", "/fhir/Patient/$validate", bad)) if i["severity"] == "error"
    ]
    expressions = {e for i in errors for e in i.get("expression", [])}
    assert {"Patient.gender", "Patient.birthDate"} <= expressions


def test_validate_takes_parameters_with_resource_and_profile(client) -> None:
    parameters = {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "resource", "resource": dict(fixtures.observation(), status="bogus")},
            {"name": "profile", "valueUri": "http://hl7.org/fhir/StructureDefinition/vitalsigns"},
        ],
    }
    issues = _issues(send(client, "POST", "/fhir/$validate", parameters))
    assert any("Observation.status" in i.get("expression", []) for i in issues)
    # The vital signs profile requires a vital-signs category, which this observation lacks.
    assert any(i["severity"] == "error" and "category" in i["diagnostics"] for i in issues)


def test_validate_with_unknown_profile_says_not_found(client) -> None:
    response = send(
        client, "POST", "/fhir/Patient/$validate?profile=https://nowhere.example.org/sd", fixtures.patient()
    )
    assert any(i["code"] == "not-found" for i in _issues(response))


def test_validate_stores_nothing_and_is_open_to_interface_engineers(app, client) -> None:
    engineer = app.test_client()
    header = bearer_for(app, "mapper", "engineer", "system/*.rs")
    response = engineer.post(
        "/fhir/Patient/$validate",
        data=dump_json(fixtures.patient()),
        headers={"Authorization": header, "Content-Type": "application/fhir+json"},
    )
    assert response.status_code == 200
    assert client.get("/fhir/Patient?_summary=count").get_json()["total"] == 0


def test_write_is_judged_by_the_validator(client) -> None:
    bad = dict(fixtures.observation(), status="bogus")
    response = send(client, "POST", "/fhir/Observation", bad)
    assert response.status_code == 422
    assert "Observation.status" in {e for i in response.get_json()["issue"] for e in i.get("expression", [])}


def test_write_warnings_do_not_block_and_are_reported(client) -> None:
    patient = fixtures.patient()
    patient["extension"] = [{"url": "https://example.org/StructureDefinition/unknown", "valueString": "x"}]
    response = send(client, "POST", "/fhir/Patient", patient, Prefer="return=OperationOutcome")
    assert response.status_code == 201
    issues = response.get_json()["issue"]
    assert any(i["severity"] == "warning" for i in issues)


def test_cli_validate_exit_codes(tmp_path) -> None:
    good = tmp_path / "good.json"
    good.write_text(dump_json(fixtures.patient()), encoding="utf-8")
    bad = tmp_path / "bad.json"
    bad.write_text(dump_json(dict(fixtures.patient(), gender="femme")), encoding="utf-8")
    runner = CliRunner()
    assert runner.invoke(main, ["validate", str(good)]).exit_code == 0
    result = runner.invoke(main, ["validate", "--format", "json", str(bad)])
    assert result.exit_code == 1
    assert "Patient.gender" in result.output
    assert runner.invoke(main, ["validate", "--ig", str(tmp_path / "missing"), str(good)]).exit_code == 2


def test_capability_statement_lists_the_cart_profiles(client) -> None:
    statement = client.get("/fhir/metadata").get_json()
    task = next(r for r in statement["rest"][0]["resource"] if r["type"] == "Task")
    assert (
        "https://cart-adapter.example.org/fhir/StructureDefinition/cart-order-task"
        in task["supportedProfile"]
    )
    assert any(op["name"] == "validate" for op in statement["rest"][0]["operation"])


def test_a_deployment_can_require_the_cart_profile_per_type(settings) -> None:
    import json
    from pathlib import Path

    from adapter import create_app

    app = create_app(settings.with_overrides(required_profile_types=("CarePlan",)))
    try:
        client = app.test_client()
        client.environ_base["HTTP_AUTHORIZATION"] = bearer_for(app, "strict-admin")
        plain = {
            "resourceType": "CarePlan",
            "status": "active",
            "intent": "plan",
            "subject": {"reference": "Patient/p1"},
        }
        refused = send(client, "POST", "/fhir/CarePlan", plain)
        assert refused.status_code == 422
        assert refused.get_json()["issue"][0]["expression"] == ["CarePlan.meta.profile"]
        example = Path(__file__).resolve().parents[2] / "profiles/examples/valid/careplan-pathway.json"
        conforming = json.loads(example.read_text(encoding="utf-8"))
        assert send(client, "POST", "/fhir/CarePlan", conforming).status_code == 201
        # Other types stay open to plain resources.
        assert send(client, "POST", "/fhir/Patient", fixtures.patient()).status_code == 201
    finally:
        app.extensions["cart_adapter"].close()
