"""FHIR R4 search semantics checked against the specification (search.html), case by case.

Every test runs on SQLite and on PostgreSQL (the `client` fixture is parametrised over both).
"""

from __future__ import annotations

from urllib.parse import urlencode

from tests import fixtures
from tests.api.helpers import created as _create

FHIR_JSON = "application/fhir+json"


def _get(client, res_type: str, params: list[tuple[str, str]]):  # type: ignore[no-untyped-def]
    return client.get(f"/fhir/{res_type}?{urlencode(params)}", headers={"Accept": FHIR_JSON})


def _found(client, res_type: str, params: list[tuple[str, str]]) -> set[str]:  # type: ignore[no-untyped-def]
    response = _get(client, res_type, params)
    assert response.status_code == 200, response.get_data(as_text=True)
    entries = response.get_json().get("entry", [])
    return {e["resource"]["id"] for e in entries if e["search"]["mode"] == "match"}


def _patient(system: str, value: str, family: str | None = None) -> dict:
    resource: dict = {"resourceType": "Patient", "identifier": [{"system": system, "value": value}]}
    if family:
        resource["name"] = [{"family": family}]
    return resource


def test_escaped_comma_pipe_dollar_and_backslash_are_part_of_the_value(client):
    # R4 search.html, "Escaping search parameters": `,` `|` and `$` separate values, systems and
    # composite components; preceded by a backslash they stand for themselves, and `\\` is a backslash.
    comma = _create(client, _patient("urn:s", "A,B", family="Smith, Jr"))["id"]
    pipe = _create(client, _patient("urn:s", "A|B"))["id"]
    backslash = _create(client, _patient("urn:s", "A\\B"))["id"]
    a = _create(client, _patient("urn:s", "A"))["id"]
    b = _create(client, _patient("urn:s", "B"))["id"]

    assert _found(client, "Patient", [("identifier", "urn:s|A\\,B")]) == {comma}
    assert _found(client, "Patient", [("identifier", "A\\,B")]) == {comma}
    assert _found(client, "Patient", [("identifier", "urn:s|A\\|B")]) == {pipe}
    assert _found(client, "Patient", [("identifier", "urn:s|A\\\\B")]) == {backslash}
    assert _found(client, "Patient", [("identifier", "urn:s|A\\,B,urn:s|B")]) == {comma, b}
    assert _found(client, "Patient", [("identifier", "urn:s|A,urn:s|B")]) == {a, b}
    assert _found(client, "Patient", [("family", "Smith\\, Jr")]) == {comma}
    assert _found(client, "Patient", [("family:exact", "Smith\\, Jr")]) == {comma}
    observation = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8251-1"}]},
        "valueString": "fee $5",
    }
    with_dollar = _create(client, observation)["id"]
    assert _found(client, "Observation", [("code-value-string", "http://loinc.org|8251-1$fee \\$5")]) == {
        with_dollar
    }


def test_id_not_excludes_the_ids_and_unsupported_modifiers_on_id_and_last_updated_are_refused(client):
    # R4 search.html: _id is a token parameter, so :not applies (every resource but those ids); a
    # modifier the server does not support must be refused, not ignored (the old answer to
    # _id:not=x was resource x itself).
    first = _create(client, _patient("urn:s", "1"))["id"]
    second = _create(client, _patient("urn:s", "2"))["id"]
    third = _create(client, _patient("urn:s", "3"))["id"]

    assert _found(client, "Patient", [("_id:not", first)]) == {second, third}
    assert _found(client, "Patient", [("_id:not", f"{first},{second}")]) == {third}
    assert _found(client, "Patient", [("_id:not", first), ("identifier", "urn:s|2")]) == {second}
    for name, value in (("_id:exact", first), ("_id:missing", "true"), ("_lastUpdated:exact", "2026")):
        response = _get(client, "Patient", [(name, value)])
        assert response.status_code == 400, name
        assert response.get_json()["resourceType"] == "OperationOutcome"


def test_reference_type_modifier_restricts_the_target_type(client):
    # R4 search.html, reference parameters: subject:Patient=23 is the same search as subject=Patient/23
    # (the :[type] modifier names the target type); it was refused with 400.
    def observation(subject: str) -> dict:
        return {
            "resourceType": "Observation",
            "status": "final",
            "code": {"text": "ferritin"},
            "subject": {"reference": subject},
        }

    of_patient = _create(client, observation("Patient/p23"))["id"]
    of_group = _create(client, observation("Group/p23"))["id"]

    assert _found(client, "Observation", [("subject", "p23")]) == {of_patient, of_group}
    assert _found(client, "Observation", [("subject:Patient", "p23")]) == {of_patient}
    assert _found(client, "Observation", [("subject:Group", "p23")]) == {of_group}
    assert _found(client, "Observation", [("subject:Patient", "p23,p24")]) == {of_patient}
    assert _found(client, "Observation", [("subject:Patient", "Patient/p23")]) == {of_patient}
    # Observation.subject never points at a Practitioner; a value of another type contradicts the type.
    for name, value in (("subject:Practitioner", "p23"), ("subject:Patient", "Group/p23")):
        response = _get(client, "Observation", [(name, value)])
        assert response.status_code == 400, (name, value)


def test_a_canonical_searched_with_a_version_finds_the_references_to_that_version(client):
    # R4 search.html, references to canonical URLs: the value may carry |version, and then matches
    # references to that version of the resource; without it, every version. <url>|1.2 found nothing.
    checklist = fixtures.CHECKLIST
    response = fixtures.questionnaire_response

    v12 = _create(client, response(f"{checklist}|1.2"))["id"]
    v13 = _create(client, response(f"{checklist}|1.3"))["id"]
    plain = _create(client, response(checklist))["id"]

    assert _found(client, "QuestionnaireResponse", [("questionnaire", checklist)]) == {v12, v13, plain}
    assert _found(client, "QuestionnaireResponse", [("questionnaire", f"{checklist}|1.2")]) == {v12}
    by_id = [("questionnaire", "Questionnaire/cart-infusion-checklist|1.3")]
    assert _found(client, "QuestionnaireResponse", by_id) == {v13}
    assert _found(client, "QuestionnaireResponse", [("questionnaire", f"{checklist}|2.0")]) == set()
    # The version is not a resource: an _include still brings nothing but stored resources.
    response_ = _get(client, "QuestionnaireResponse", [("_include", "QuestionnaireResponse:questionnaire")])
    assert response_.status_code == 200


def test_include_and_revinclude_with_a_target_type_that_cannot_be_are_refused(client):
    # R4 search.html, _include: the optional third part is the target resource type, which the
    # reference parameter must be able to point at. Task:owner:Nonsense (no such type) and
    # Task:owner:Observation (owner never points there) were accepted and silently included nothing.
    organization = _create(client, {"resourceType": "Organization", "name": "Kite"})["id"]
    task = {
        "resourceType": "Task",
        "status": "requested",
        "intent": "order",
        "owner": {"reference": f"Organization/{organization}"},
    }
    _create(client, task)
    response = _get(client, "Task", [("_include", "Task:owner:Organization")])
    assert response.status_code == 200
    included = [e["resource"]["id"] for e in response.get_json()["entry"] if e["search"]["mode"] == "include"]
    assert included == [organization]
    for name, value in (
        ("_include", "Task:owner:Nonsense"),
        ("_include", "Task:owner:Observation"),
        ("_include:iterate", "Task:owner:Nonsense"),
        ("_revinclude", "Task:owner:Nonsense"),
    ):
        refused = _get(client, "Organization" if name == "_revinclude" else "Task", [(name, value)])
        assert refused.status_code == 400, (name, value)
