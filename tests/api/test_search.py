"""FHIR search over the REST API (GET and POST [type]/_search), searchset Bundles and paging.

Every test runs on SQLite and on PostgreSQL (the `client` fixture is parametrised over both).
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from adapter.fhirio.jsonio import dump_json
from adapter.services.paging import encode_cursor
from tests import fixtures
from tests.api.helpers import created as _create

FHIR_JSON = "application/fhir+json"
ORDER_SYSTEM = "https://cart-adapter.example.org/order"
MILESTONE_SYSTEM = "https://cart-adapter.example.org/CodeSystem/order-milestone"
LOINC = "http://loinc.org"


# -- helpers ---------------------------------------------------------------------------------------


def _update(client, resource: dict) -> dict:  # type: ignore[no-untyped-def]
    response = client.put(
        f"/fhir/{resource['resourceType']}/{resource['id']}",
        data=dump_json(resource),
        headers={"Content-Type": FHIR_JSON, "Accept": FHIR_JSON},
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def _get(client, url: str, params: list[tuple[str, str]] | None = None, **headers: str):  # type: ignore[no-untyped-def]
    if params:
        url = f"{url}?{urlencode(params)}"
    return client.get(url, headers={"Accept": FHIR_JSON, **headers})


def _search(client, res_type: str, params: list[tuple[str, str]] | None = None) -> dict:  # type: ignore[no-untyped-def]
    response = _get(client, f"/fhir/{res_type}", params)
    assert response.status_code == 200, response.get_data(as_text=True)
    bundle = response.get_json()
    assert bundle["resourceType"] == "Bundle"
    assert bundle["type"] == "searchset"
    return bundle


def _matches(bundle: dict) -> list[dict]:
    return [e for e in bundle.get("entry", []) if e.get("search", {}).get("mode") == "match"]


def _ids(bundle: dict) -> list[str]:
    return [e["resource"]["id"] for e in _matches(bundle)]


def _found(client, res_type: str, params: list[tuple[str, str]]) -> set[str]:  # type: ignore[no-untyped-def]
    return set(_ids(_search(client, res_type, params)))


def _link(bundle: dict, relation: str) -> str | None:
    for link in bundle.get("link", []):
        if link["relation"] == relation:
            return link["url"]
    return None


def _local(url: str) -> str:
    """The path and query of an absolute link, to replay it with the test client."""
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}" if parts.query else parts.path


def _task(order: str, **changes: object) -> dict:
    resource = fixtures.task(order=order)
    resource.update(changes)
    return resource


def _observation(
    subject: str | None = None, code: str = "731-0", effective: str | None = None, status: str = "final"
) -> dict:
    resource = fixtures.observation()
    resource["status"] = status
    resource["code"] = {"coding": [{"system": LOINC, "code": code}]}
    if subject:
        resource["subject"] = {"reference": subject}
    if effective:
        resource["effectiveDateTime"] = effective
    return resource


def _all_pages(client, first_url: str, between_pages=None) -> tuple[list[str], list[int]]:  # type: ignore[no-untyped-def]
    """Follow `next` links from `first_url`; returns the ids in order and the total of every page."""
    ids: list[str] = []
    totals: list[int] = []
    url: str | None = first_url
    pages = 0
    while url:
        response = client.get(url, headers={"Accept": FHIR_JSON})
        assert response.status_code == 200, response.get_data(as_text=True)
        bundle = response.get_json()
        ids.extend(_ids(bundle))
        totals.append(bundle.get("total"))
        next_link = _link(bundle, "next")
        url = _local(next_link) if next_link else None
        pages += 1
        assert pages < 100, "paging does not end"
        if url and between_pages:
            between_pages()
    return ids, totals


# -- Bundle shape ----------------------------------------------------------------------------------


def test_searchset_bundle_has_total_self_link_and_match_entries_with_full_urls(client):
    created = _create(client, fixtures.patient())
    _create(client, fixtures.patient(ins="1850575000001", family="Dupont", given="Jean"))

    bundle = _search(client, "Patient", [("family", "lefevre")])

    assert bundle["total"] == 1
    self_link = _link(bundle, "self")
    assert self_link is not None
    assert urlsplit(self_link).path == "/fhir/Patient"
    assert parse_qs(urlsplit(self_link).query) == {"family": ["lefevre"]}
    assert len(bundle["entry"]) == 1
    entry = bundle["entry"][0]
    assert entry["search"] == {"mode": "match"}
    assert entry["fullUrl"] == f"http://localhost/fhir/Patient/{created['id']}"
    assert entry["resource"]["id"] == created["id"]
    assert entry["resource"]["name"][0]["family"] == "Lefèvre"
    assert _link(bundle, "next") is None


def test_search_without_matches_returns_empty_searchset_with_zero_total(client):
    _create(client, fixtures.patient())

    bundle = _search(client, "Patient", [("family", "martin")])

    assert bundle["total"] == 0
    assert _matches(bundle) == []


# -- _id, _lastUpdated, _count, _sort, _summary ----------------------------------------------------


def test_id_parameter_selects_resources_by_logical_id_with_comma_as_or(client):
    first = _create(client, fixtures.patient())
    second = _create(client, fixtures.patient(ins="1850575000001", family="Dupont"))
    _create(client, fixtures.patient(ins="1850575000002", family="Martin"))

    assert _found(client, "Patient", [("_id", first["id"])]) == {first["id"]}
    assert _found(client, "Patient", [("_id", f"{first['id']},{second['id']}")]) == {
        first["id"],
        second["id"],
    }
    assert _found(client, "Patient", [("_id", "no-such-patient")]) == set()


def test_last_updated_prefixes_compare_against_returned_meta_last_updated(client):
    a = _create(client, fixtures.patient(ins="1000000000001", family="Alpha"))
    b = _create(client, fixtures.patient(ins="1000000000002", family="Beta"))
    c = _create(client, fixtures.patient(ins="1000000000003", family="Gamma"))
    moment = b["meta"]["lastUpdated"]
    assert a["meta"]["lastUpdated"] < moment < c["meta"]["lastUpdated"]

    assert _found(client, "Patient", [("_lastUpdated", moment)]) == {b["id"]}
    assert _found(client, "Patient", [("_lastUpdated", f"eq{moment}")]) == {b["id"]}
    assert _found(client, "Patient", [("_lastUpdated", f"gt{moment}")]) == {c["id"]}
    assert _found(client, "Patient", [("_lastUpdated", f"ge{moment}")]) == {b["id"], c["id"]}
    assert _found(client, "Patient", [("_lastUpdated", f"lt{moment}")]) == {a["id"]}
    assert _found(client, "Patient", [("_lastUpdated", f"le{moment}")]) == {a["id"], b["id"]}
    # A range with both ends: after a, up to and including c.
    assert _found(
        client,
        "Patient",
        [("_lastUpdated", f"gt{a['meta']['lastUpdated']}"), ("_lastUpdated", f"le{moment}")],
    ) == {b["id"]}


def test_last_updated_by_day_matches_everything_written_today_and_nothing_in_another_year(client):
    created = _create(client, fixtures.patient())
    day = created["meta"]["lastUpdated"][:10]
    year = int(day[:4])

    assert _found(client, "Patient", [("_lastUpdated", day)]) == {created["id"]}
    assert _found(client, "Patient", [("_lastUpdated", str(year - 1))]) == set()
    assert _found(client, "Patient", [("_lastUpdated", f"gt{year - 1}")]) == {created["id"]}


def test_count_limits_the_page_but_total_counts_every_match(client):
    for n in range(7):
        _create(client, fixtures.patient(ins=f"20000000000{n:02d}"))

    bundle = _search(client, "Patient", [("_count", "3")])

    assert len(_matches(bundle)) == 3
    assert bundle["total"] == 7
    assert _link(bundle, "next") is not None
    assert parse_qs(urlsplit(_link(bundle, "self")).query)["_count"] == ["3"]


def test_count_equal_to_the_number_of_matches_gives_no_next_link(client):
    for n in range(3):
        _create(client, fixtures.patient(ins=f"30000000000{n:02d}"))

    bundle = _search(client, "Patient", [("_count", "3")])

    assert len(_matches(bundle)) == 3
    assert bundle["total"] == 3
    assert _link(bundle, "next") is None


def test_non_numeric_count_is_rejected_with_400(client):
    response = _get(client, "/fhir/Patient", [("_count", "many")])

    assert response.status_code == 400
    assert response.get_json()["resourceType"] == "OperationOutcome"


def test_sort_by_last_updated_follows_the_latest_write_not_creation(client):
    a = _create(client, fixtures.patient(ins="1000000000001", family="Alpha"))
    b = _create(client, fixtures.patient(ins="1000000000002", family="Beta"))
    c = _create(client, fixtures.patient(ins="1000000000003", family="Gamma"))
    a["birthDate"] = "1975-03-13"
    _update(client, a)

    ascending = _ids(_search(client, "Patient", [("_sort", "_lastUpdated")]))
    descending = _ids(_search(client, "Patient", [("_sort", "-_lastUpdated")]))

    assert ascending == [b["id"], c["id"], a["id"]]
    assert descending == [a["id"], c["id"], b["id"]]


def test_sort_by_last_updated_entries_carry_non_decreasing_last_updated(client):
    for n in range(5):
        _create(client, fixtures.patient(ins=f"40000000000{n:02d}"))

    ascending = _matches(_search(client, "Patient", [("_sort", "_lastUpdated")]))
    descending = _matches(_search(client, "Patient", [("_sort", "-_lastUpdated")]))

    stamps = [e["resource"]["meta"]["lastUpdated"] for e in ascending]
    assert len(stamps) == 5
    assert stamps == sorted(stamps)
    assert [e["resource"]["meta"]["lastUpdated"] for e in descending] == sorted(stamps, reverse=True)


def test_summary_count_returns_the_total_without_entries(client):
    for n in range(4):
        _create(client, fixtures.patient(ins=f"50000000000{n:02d}"))
    _create(client, fixtures.organization())

    bundle = _search(client, "Patient", [("_summary", "count")])

    assert bundle["total"] == 4
    assert _matches(bundle) == []


def test_summary_count_applies_the_other_parameters(client):
    _create(client, fixtures.patient())
    _create(client, fixtures.patient(ins="1850575000001", family="Dupont", given="Jean"))

    bundle = _search(client, "Patient", [("family", "dupont"), ("_summary", "count")])

    assert bundle["total"] == 1
    assert _matches(bundle) == []


# -- token parameters ------------------------------------------------------------------------------


def test_identifier_matches_system_and_value_value_alone_or_system_alone(client):
    ins = _create(client, fixtures.patient(ins="2750399123456"))
    other_ins = _create(client, fixtures.patient(ins="1850575000001", family="Dupont"))
    local = fixtures.patient(family="Martin")
    local["identifier"] = [{"system": "https://chu-lyon.example.org/ipp", "value": "2750399123456"}]
    local_created = _create(client, local)

    assert _found(client, "Patient", [("identifier", f"{fixtures.INS_NIR}|2750399123456")]) == {ins["id"]}
    assert _found(client, "Patient", [("identifier", "2750399123456")]) == {ins["id"], local_created["id"]}
    assert _found(client, "Patient", [("identifier", f"{fixtures.INS_NIR}|")]) == {ins["id"], other_ins["id"]}
    assert (
        _found(client, "Patient", [("identifier", "https://chu-lyon.example.org/ipp|1850575000001")]) == set()
    )


def test_identifier_with_empty_system_matches_only_identifiers_without_system(client):
    with_system = _create(client, fixtures.patient(ins="2750399123456"))
    bare = fixtures.patient(family="Martin")
    bare["identifier"] = [{"value": "2750399123456"}]
    bare_created = _create(client, bare)

    assert _found(client, "Patient", [("identifier", "|2750399123456")]) == {bare_created["id"]}
    assert with_system["id"] not in _found(client, "Patient", [("identifier", "|2750399123456")])


def test_status_token_selects_tasks_by_status(client):
    requested = _create(client, fixtures.task(order="ORD-1", status="requested"))
    completed = _create(client, fixtures.task(order="ORD-2", status="completed", business="infused"))

    assert _found(client, "Task", [("status", "requested")]) == {requested["id"]}
    assert _found(client, "Task", [("status", "completed")]) == {completed["id"]}
    assert _found(client, "Task", [("status", "requested,completed")]) == {requested["id"], completed["id"]}
    assert _found(client, "Task", [("status", "cancelled")]) == set()


def test_code_with_system_and_code_selects_observations(client):
    platelets = _create(client, _observation(code="731-0"))
    leukocytes = _create(client, _observation(code="26464-8"))

    assert _found(client, "Observation", [("code", f"{LOINC}|731-0")]) == {platelets["id"]}
    assert _found(client, "Observation", [("code", "26464-8")]) == {leukocytes["id"]}
    assert _found(client, "Observation", [("code", "http://snomed.info/sct|731-0")]) == set()
    assert _found(client, "Observation", [("code", f"{LOINC}|731-0,{LOINC}|26464-8")]) == {
        platelets["id"],
        leukocytes["id"],
    }


def test_token_not_modifier_excludes_matching_resources(client):
    requested = _create(client, fixtures.task(order="ORD-1", status="requested"))
    completed = _create(client, fixtures.task(order="ORD-2", status="completed"))
    cancelled = _create(client, fixtures.task(order="ORD-3", status="cancelled"))

    assert _found(client, "Task", [("status:not", "completed")]) == {requested["id"], cancelled["id"]}
    assert _found(client, "Task", [("status:not", "completed,cancelled")]) == {requested["id"]}
    assert completed["id"] in _found(client, "Task", [("status:not", "requested")])


def test_token_not_modifier_includes_resources_without_the_element(client):
    coded = _create(client, _observation(code="731-0"))
    uncoded = _observation(code="26464-8")
    uncoded["category"] = [
        {
            "coding": [
                {"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "laboratory"}
            ]
        }
    ]
    with_category = _create(client, uncoded)

    # The first Observation has no category at all: :not keeps it (FHIR: "not" includes missing values).
    assert _found(client, "Observation", [("category:not", "laboratory")]) == {coded["id"]}
    assert _found(client, "Observation", [("category", "laboratory")]) == {with_category["id"]}


# -- reference parameters --------------------------------------------------------------------------


def test_subject_and_patient_accept_typed_reference_and_bare_id(client):
    helene = _create(client, fixtures.patient())
    jean = _create(client, fixtures.patient(ins="1850575000001", family="Dupont", given="Jean"))
    obs_helene = _create(client, _observation(subject=f"Patient/{helene['id']}"))
    obs_jean = _create(client, _observation(subject=f"Patient/{jean['id']}"))

    assert _found(client, "Observation", [("subject", f"Patient/{helene['id']}")]) == {obs_helene["id"]}
    assert _found(client, "Observation", [("subject", helene["id"])]) == {obs_helene["id"]}
    assert _found(client, "Observation", [("patient", f"Patient/{jean['id']}")]) == {obs_jean["id"]}
    assert _found(client, "Observation", [("patient", jean["id"])]) == {obs_jean["id"]}
    assert _found(client, "Observation", [("subject", f"Group/{helene['id']}")]) == set()
    both = f"Patient/{helene['id']},Patient/{jean['id']}"
    assert _found(client, "Observation", [("subject", both)]) == {obs_helene["id"], obs_jean["id"]}


def test_patient_parameter_on_task_searches_the_for_element(client):
    helene = _create(client, fixtures.patient())
    for_helene = _create(client, _task("ORD-1", **{"for": {"reference": f"Patient/{helene['id']}"}}))
    _create(client, _task("ORD-2", **{"for": {"reference": "Patient/someone-else"}}))

    assert _found(client, "Task", [("patient", helene["id"])]) == {for_helene["id"]}
    assert _found(client, "Task", [("subject", f"Patient/{helene['id']}")]) == {for_helene["id"]}


def test_malformed_reference_value_is_rejected_with_400(client):
    # Not a literal reference (a type starts with a capital letter) and not a bare id either.
    response = _get(client, "/fhir/Observation", [("subject", "patient/123")])

    assert response.status_code == 400
    outcome = response.get_json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert "subject" in outcome["issue"][0]["expression"]


def test_task_owner_focus_based_on_and_business_status(client):
    kite = _create(
        client,
        _task(
            "ORD-1",
            owner={"reference": "Organization/kite-eu"},
            focus={"reference": "ServiceRequest/sr-1"},
            basedOn=[{"reference": "ServiceRequest/sr-1"}],
            businessStatus={"coding": [{"system": MILESTONE_SYSTEM, "code": "manufacturing"}]},
        ),
    )
    novartis = _create(
        client,
        _task(
            "ORD-2",
            owner={"reference": "Organization/novartis-fr"},
            focus={"reference": "ServiceRequest/sr-2"},
            basedOn=[{"reference": "ServiceRequest/sr-2"}, {"reference": "CarePlan/cp-9"}],
            businessStatus={"coding": [{"system": MILESTONE_SYSTEM, "code": "shipped"}]},
        ),
    )

    assert _found(client, "Task", [("owner", "Organization/kite-eu")]) == {kite["id"]}
    assert _found(client, "Task", [("owner", "novartis-fr")]) == {novartis["id"]}
    assert _found(client, "Task", [("owner", "Practitioner/kite-eu")]) == set()
    assert _found(client, "Task", [("focus", "ServiceRequest/sr-1")]) == {kite["id"]}
    assert _found(client, "Task", [("focus", "ServiceRequest/sr-3")]) == set()
    assert _found(client, "Task", [("based-on", "ServiceRequest/sr-2")]) == {novartis["id"]}
    assert _found(client, "Task", [("based-on", "CarePlan/cp-9")]) == {novartis["id"]}
    assert _found(client, "Task", [("business-status", f"{MILESTONE_SYSTEM}|manufacturing")]) == {kite["id"]}
    assert _found(client, "Task", [("business-status", "shipped")]) == {novartis["id"]}
    assert _found(client, "Task", [("business-status", "http://other.example.org|shipped")]) == set()
    assert (
        _found(client, "Task", [("owner", "Organization/kite-eu"), ("business-status", "shipped")]) == set()
    )


def test_canonical_references_are_searched_by_their_url_or_type_and_id(client):
    checklist = fixtures.CHECKLIST
    response = fixtures.questionnaire_response

    versioned = _create(client, response(f"{checklist}|1.2"))["id"]
    plain = _create(client, response(checklist))["id"]
    _create(client, response("https://cart-adapter.example.org/fhir/Questionnaire/other"))
    plan = {
        "resourceType": "CarePlan",
        "status": "active",
        "intent": "plan",
        "subject": {"reference": "Patient/p1"},
        "instantiatesCanonical": ["https://cart-adapter.example.org/fhir/PlanDefinition/cart-pathway"],
    }
    plan_id = _create(client, plan)["id"]

    assert _found(client, "QuestionnaireResponse", [("questionnaire", checklist)]) == {versioned, plain}
    by_id = [("questionnaire", "Questionnaire/cart-infusion-checklist")]
    assert _found(client, "QuestionnaireResponse", by_id) == {versioned, plain}
    assert _found(client, "QuestionnaireResponse", [("questionnaire", "Questionnaire/nothing")]) == set()
    found = _found(client, "CarePlan", [("instantiates-canonical", "PlanDefinition/cart-pathway")])
    assert found == {plan_id}


def test_missing_modifier_separates_resources_with_and_without_the_element(client):
    with_focus = _create(client, _task("ORD-1", focus={"reference": "ServiceRequest/sr-1"}))
    without_focus = _create(client, _task("ORD-2"))

    assert _found(client, "Task", [("focus:missing", "true")]) == {without_focus["id"]}
    assert _found(client, "Task", [("focus:missing", "false")]) == {with_focus["id"]}


def test_missing_modifier_with_a_value_other_than_true_or_false_is_rejected(client):
    response = _get(client, "/fhir/Task", [("focus:missing", "maybe")])

    assert response.status_code == 400
    assert response.get_json()["resourceType"] == "OperationOutcome"


# -- date parameters -------------------------------------------------------------------------------


@pytest.fixture
def two_observations(client):  # type: ignore[no-untyped-def]
    march = _create(client, _observation(effective="2026-03-05T10:15:00+01:00"))  # 09:15:00Z
    april = _create(client, _observation(effective="2026-04-10T08:00:00Z"))
    return march["id"], april["id"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026", {"march", "april"}),
        ("2026-03", {"march"}),
        ("eq2026-03", {"march"}),
        ("2026-03-05", {"march"}),
        ("2026-03-06", set()),
        ("2026-05", set()),
        ("ne2026-03", {"april"}),
        ("gt2026-03-31", {"april"}),
        ("gt2026-04-10T08:00:00Z", set()),
        ("lt2026-03-06", {"march"}),
        ("lt2026-03-05T09:15:00Z", set()),
        ("ge2026-03-05T09:15:00Z", {"march", "april"}),
        ("ge2026-03-05T09:15:01Z", {"april"}),
        ("le2026-03-05T09:15:00Z", {"march"}),
        ("le2026-04-10", {"march", "april"}),
        ("eq2026-03-05T10:15:00+01:00", {"march"}),
        ("2026-03-05T09:15:00Z", {"march"}),
        ("sa2026-03-31", {"april"}),
        ("eb2026-04", {"march"}),
    ],
)
def test_date_prefixes_on_observation_effective(client, two_observations, value, expected):
    march, april = two_observations
    names = {march: "march", april: "april"}

    found = _found(client, "Observation", [("date", value)])

    assert {names[i] for i in found} == expected


def test_date_comma_is_or_and_repeated_date_is_a_range(client, two_observations):
    march, april = two_observations

    assert _found(client, "Observation", [("date", "2026-03,2026-04")]) == {march, april}
    assert _found(client, "Observation", [("date", "ge2026-03-01"), ("date", "lt2026-04-01")]) == {march}
    assert _found(client, "Observation", [("date", "ge2026-04-01"), ("date", "lt2026-03-01")]) == set()


@pytest.mark.parametrize(
    ("name", "value"),
    [("date", "2026-13-45"), ("date", "last-week"), ("date", "gt2026-3-5"), ("_lastUpdated", "yesterday")],
)
def test_malformed_date_is_rejected_with_outcome_naming_the_parameter(client, name, value):
    response = _get(client, "/fhir/Observation", [(name, value)])

    assert response.status_code == 400
    outcome = response.get_json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["severity"] in ("error", "fatal")
    assert name in outcome["issue"][0]["expression"]


# -- string parameters -----------------------------------------------------------------------------


@pytest.fixture
def three_patients(client):  # type: ignore[no-untyped-def]
    helene = _create(client, fixtures.patient(ins="2750399123456", family="Lefèvre", given="Hélène"))
    helena = _create(client, fixtures.patient(ins="2750399123457", family="Martin", given="Helena"))
    jean = _create(client, fixtures.patient(ins="1850575000001", family="Dupont", given="Jean"))
    return {"helene": helene["id"], "helena": helena["id"], "jean": jean["id"]}


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ([("name", "helene")], {"helene"}),
        ([("name", "Hélène")], {"helene"}),
        ([("name", "HELENE")], {"helene"}),
        ([("name", "hel")], {"helene", "helena"}),
        ([("name", "lefevre")], {"helene"}),
        ([("family", "LEFÈVRE")], {"helene"}),
        ([("family", "lef")], {"helene"}),
        ([("family", "evre")], set()),  # prefix match, not contains
        ([("family", "helene")], set()),  # a given name is not a family name
        ([("given", "jean")], {"jean"}),
        ([("family", "lefevre,dupont")], {"helene", "jean"}),  # comma: OR
        ([("name", "marie"), ("name", "dupont")], {"jean"}),  # repeated: AND
        ([("name", "helene"), ("family", "martin")], set()),
        ([("name", "hel"), ("family", "martin")], {"helena"}),
    ],
)
def test_string_search_is_accent_and_case_insensitive_prefix_match(client, three_patients, params, expected):
    names = {v: k for k, v in three_patients.items()}

    found = _found(client, "Patient", params)

    assert {names[i] for i in found} == expected


def test_string_contains_modifier_matches_inside_the_value(client, three_patients):
    assert _found(client, "Patient", [("family:contains", "evre")]) == {three_patients["helene"]}


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ([("family:exact", "Lefèvre")], {"helene"}),
        ([("family:exact", "Lefevre")], set()),  # the accent counts
        ([("family:exact", "lefèvre")], set()),  # and the case
        ([("family:exact", "Lef")], set()),  # the whole value, not a prefix
        ([("given:exact", "Helena")], {"helena"}),
        ([("name:exact", "Hélène")], {"helene"}),  # any part of the name, as written
        ([("family:exact", "Dupont,Martin")], {"jean", "helena"}),
        ([("family:exact", "Martin"), ("given", "hel")], {"helena"}),
    ],
)
def test_string_exact_modifier_matches_the_whole_value_as_written(client, three_patients, params, expected):
    names = {v: k for k, v in three_patients.items()}

    found = _found(client, "Patient", params)

    assert {names[i] for i in found} == expected


FR_CORE_ID_TYPES = "https://hl7.fr/ig/fhir/core/CodeSystem/fr-core-cs-v2-0203"
INS_NIR = "urn:oid:1.2.250.1.213.1.4.8"


def test_deceased_is_true_for_a_death_date_or_true_and_false_otherwise(client):
    kinds = {"alive": {}, "not": {"deceasedBoolean": False}, "dead": {"deceasedBoolean": True}}
    kinds["dated"] = {"deceasedDateTime": "2026-11-02T08:00:00+01:00"}
    ids = {}
    for n, (name, extra) in enumerate(kinds.items()):
        ids[_create(client, {**fixtures.patient(ins=f"275039912345{n}"), **extra})["id"]] = name

    def found(value: str) -> set[str]:
        return {ids[i] for i in _found(client, "Patient", [("deceased", value)])}

    assert found("true") == {"dead", "dated"}
    assert found("false") == {"alive", "not"}
    assert found("true,false") == set(kinds)


def test_identifier_of_type_matches_the_type_and_the_value_together(client):
    typed = fixtures.patient(ins="2750399123456")
    typed["identifier"][0]["type"] = {"coding": [{"system": FR_CORE_ID_TYPES, "code": "INS-NIR"}]}
    untyped = fixtures.patient(ins="1850575000001")
    ids = {_create(client, typed)["id"]: "typed", _create(client, untyped)["id"]: "untyped"}

    def found(value: str) -> set[str]:
        return {ids[i] for i in _found(client, "Patient", [("identifier:of-type", value)])}

    assert found(f"{FR_CORE_ID_TYPES}|INS-NIR|2750399123456") == {"typed"}
    assert found(f"{FR_CORE_ID_TYPES}|INS-NIA|2750399123456") == set()  # another type
    assert found(f"{FR_CORE_ID_TYPES}|INS-NIR|1850575000001") == set()  # that one has no type
    assert found(f"{FR_CORE_ID_TYPES}|INS-NIR|1,{FR_CORE_ID_TYPES}|INS-NIR|2750399123456") == {"typed"}
    response = client.get(f"/fhir/Patient?identifier:of-type={FR_CORE_ID_TYPES}|2750399123456")
    assert response.status_code == 400
    assert response.get_json()["issue"][0]["expression"] == ["identifier:of-type"]


def test_reference_identifier_modifier_matches_logical_references(client):
    task = fixtures.task()
    task["for"] = {"type": "Patient", "identifier": {"system": INS_NIR, "value": "2750399123456"}}
    logical = _create(client, task)["id"]
    other = fixtures.task()
    other["for"] = {"type": "Group", "identifier": {"system": INS_NIR, "value": "2750399123456"}}
    group = _create(client, other)["id"]

    assert _found(client, "Task", [("patient:identifier", f"{INS_NIR}|2750399123456")]) == {logical}
    assert _found(client, "Task", [("patient:identifier", "2750399123456")]) == {logical}
    assert _found(client, "Task", [("patient:identifier", "urn:other|2750399123456")]) == set()
    # `subject` takes any type; `patient` only references typed Patient (or untyped)
    assert _found(client, "Task", [("subject:identifier", f"{INS_NIR}|2750399123456")]) == {logical, group}
    # a literal reference is not matched by its identifier, nor the other way round
    assert _found(client, "Task", [("patient", "Patient/2750399123456")]) == set()


def test_string_search_treats_like_wildcards_literally(client, three_patients):
    assert _found(client, "Patient", [("family", "%")]) == set()
    assert _found(client, "Patient", [("family", "_upont")]) == set()


# -- unknown parameters, unknown types -------------------------------------------------------------


def test_unknown_parameter_is_ignored_with_a_warning_outcome_entry(client):
    created = _create(client, fixtures.patient())

    bundle = _search(client, "Patient", [("shoe-size", "42")])

    assert _ids(bundle) == [created["id"]]
    assert bundle["total"] == 1
    outcomes = [e for e in bundle["entry"] if e["search"]["mode"] == "outcome"]
    assert len(outcomes) == 1
    outcome = outcomes[0]["resource"]
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["severity"] == "warning"
    assert "shoe-size" in outcome["issue"][0]["diagnostics"]
    # The ignored parameter is not in the self link: the link shows the search that was performed.
    assert "shoe-size" not in _link(bundle, "self")


def test_unknown_parameter_under_strict_handling_is_rejected_with_400(client):
    _create(client, fixtures.patient())

    response = _get(client, "/fhir/Patient", [("shoe-size", "42")], Prefer="handling=strict")

    assert response.status_code == 400
    outcome = response.get_json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["severity"] == "error"
    assert "shoe-size" in outcome["issue"][0]["diagnostics"]


def test_known_parameters_under_strict_handling_still_search(client):
    created = _create(client, fixtures.patient())

    response = _get(client, "/fhir/Patient", [("family", "lefevre")], Prefer="handling=strict")

    assert response.status_code == 200
    assert _ids(response.get_json()) == [created["id"]]


def test_search_on_an_unknown_type_is_404(client):
    response = _get(client, "/fhir/CarTCell", [("status", "active")])

    assert response.status_code == 404
    assert response.get_json()["resourceType"] == "OperationOutcome"


def test_post_search_on_an_unknown_type_is_404(client):
    response = client.post("/fhir/CarTCell/_search", data={"status": "active"})

    assert response.status_code == 404
    assert response.get_json()["resourceType"] == "OperationOutcome"


# -- writes seen by search -------------------------------------------------------------------------


def test_deleted_resources_do_not_appear_in_searches_or_totals(client):
    kept = _create(client, fixtures.patient(ins="2750399123456"))
    gone = _create(client, fixtures.patient(ins="2750399123457"))
    assert client.delete(f"/fhir/Patient/{gone['id']}").status_code == 204

    bundle = _search(client, "Patient")
    assert _ids(bundle) == [kept["id"]]
    assert bundle["total"] == 1
    assert _found(client, "Patient", [("_id", gone["id"])]) == set()
    assert _found(client, "Patient", [("identifier", f"{fixtures.INS_NIR}|2750399123457")]) == set()
    assert _found(client, "Patient", [("family", "lefevre")]) == {kept["id"]}
    assert _search(client, "Patient", [("_summary", "count")])["total"] == 1


def test_updated_resource_matches_its_new_values_only(client):
    created = _create(client, fixtures.task(order="ORD-1", status="requested", business="requested"))
    created["status"] = "in-progress"
    created["businessStatus"] = {"coding": [{"system": MILESTONE_SYSTEM, "code": "manufacturing"}]}
    created["owner"] = {"reference": "Organization/novartis-fr"}
    _update(client, created)

    assert _found(client, "Task", [("status", "requested")]) == set()
    assert _found(client, "Task", [("business-status", "requested")]) == set()
    assert _found(client, "Task", [("owner", "Organization/kite-eu")]) == set()
    assert _found(client, "Task", [("status", "in-progress")]) == {created["id"]}
    assert _found(client, "Task", [("business-status", "manufacturing")]) == {created["id"]}
    assert _found(client, "Task", [("owner", "Organization/novartis-fr")]) == {created["id"]}
    assert _search(client, "Task")["total"] == 1


# -- POST [type]/_search ---------------------------------------------------------------------------


def test_post_search_with_form_parameters_returns_the_same_matches_as_get(client, three_patients):
    params = [("name", "hel"), ("_sort", "-_lastUpdated")]
    got = _search(client, "Patient", params)

    response = client.post(
        "/fhir/Patient/_search",
        data=urlencode(params),
        headers={"Content-Type": "application/x-www-form-urlencoded", "Accept": FHIR_JSON},
    )

    assert response.status_code == 200, response.get_data(as_text=True)
    posted = response.get_json()
    assert posted["type"] == "searchset"
    assert _ids(posted) == _ids(got)
    assert set(_ids(posted)) == {three_patients["helene"], three_patients["helena"]}
    assert posted["total"] == got["total"] == 2


def test_post_search_combines_url_and_form_parameters_with_and(client, three_patients):
    response = client.post(
        "/fhir/Patient/_search?name=hel",
        data={"family": "martin"},
        headers={"Accept": FHIR_JSON},
    )

    assert response.status_code == 200
    assert _ids(response.get_json()) == [three_patients["helena"]]


# -- paging ----------------------------------------------------------------------------------------


def test_following_next_links_returns_every_task_once_with_a_stable_total(client):
    created = {_create(client, fixtures.task(order=f"ORD-{n:03d}"))["id"] for n in range(23)}

    ids, totals = _all_pages(client, "/fhir/Task?_count=5")

    assert len(ids) == 23
    assert set(ids) == created
    assert totals == [23] * 5


def test_a_later_pages_self_link_is_that_page(client):
    for n in range(5):
        _create(client, fixtures.task(order=f"ORD-{n:03d}"))
    first = _search(client, "Task", [("_count", "2")])
    assert "_page" not in parse_qs(urlsplit(_link(first, "self")).query)
    following = _link(first, "next")
    second = client.get(following[following.index("/fhir/") :]).get_json()
    # http.html paging: the self link names the page it came from, so reading it again gives that page.
    assert _link(second, "self") == following
    again = client.get(following[following.index("/fhir/") :]).get_json()
    assert _ids(again) == _ids(second)


def test_next_links_keep_the_search_parameters(client):
    wanted = {
        _create(client, fixtures.task(order=f"ORD-{n:03d}", status="requested"))["id"] for n in range(7)
    }
    for n in range(4):
        _create(client, fixtures.task(order=f"ORD-X{n}", status="completed"))

    first = _search(client, "Task", [("status", "requested"), ("_count", "3")])
    next_query = parse_qs(urlsplit(_link(first, "next")).query)
    assert next_query["status"] == ["requested"]
    assert next_query["_count"] == ["3"]

    ids, totals = _all_pages(client, "/fhir/Task?status=requested&_count=3")
    assert sorted(ids) == sorted(wanted)
    assert set(totals) == {7}


@pytest.mark.parametrize("sort", [None, "_lastUpdated", "-_lastUpdated"])
def test_paging_while_tasks_are_inserted_returns_each_existing_task_once(client, sort):
    existing = [_create(client, fixtures.task(order=f"ORD-{n:03d}"))["id"] for n in range(17)]
    inserted: list[str] = []

    def insert_two() -> None:
        for _ in range(2):
            inserted.append(_create(client, fixtures.task(order=f"NEW-{len(inserted):03d}"))["id"])

    first = "/fhir/Task?_count=5" + (f"&_sort={sort}" if sort else "")
    ids, totals = _all_pages(client, first, between_pages=insert_two)

    assert inserted, "no Task was inserted between pages"
    assert len(ids) == len(set(ids)), f"duplicates across pages: {[i for i in ids if ids.count(i) > 1]}"
    assert [i for i in ids if i in set(existing)] == [i for i in ids if i not in set(inserted)]
    assert sorted(i for i in ids if i in set(existing)) == sorted(existing)
    assert len(set(totals)) == 1, f"total changed while paging: {totals}"
    if sort == "_lastUpdated" or sort is None:
        assert [i for i in ids if i in set(existing)] == existing
    else:
        assert [i for i in ids if i in set(existing)] == existing[::-1]


def test_paging_in_default_order_while_tasks_are_updated_returns_each_task_once(client):
    tasks = [_create(client, fixtures.task(order=f"ORD-{n:03d}")) for n in range(12)]
    pending = list(tasks)

    def update_one() -> None:
        resource = pending.pop(0)
        resource["status"] = "in-progress"
        _update(client, resource)

    ids, totals = _all_pages(client, "/fhir/Task?_count=4", between_pages=update_one)

    assert sorted(ids) == sorted(t["id"] for t in tasks)
    assert totals == [12] * 3


def test_paging_while_tasks_are_deleted_never_repeats_a_task(client):
    tasks = [_create(client, fixtures.task(order=f"ORD-{n:03d}"))["id"] for n in range(12)]
    victims = [tasks[0], tasks[11]]

    def delete_one() -> None:
        if victims:
            assert client.delete(f"/fhir/Task/{victims.pop()}").status_code == 204

    ids, _ = _all_pages(client, "/fhir/Task?_count=4", between_pages=delete_one)

    assert len(ids) == len(set(ids))
    assert tasks[11] not in ids
    assert set(tasks[1:11]) <= set(ids)


@pytest.mark.parametrize("tamper", ["garbage", "truncate", "not-base64"])
def test_tampered_page_cursor_is_rejected_with_400(client, tamper):
    for n in range(6):
        _create(client, fixtures.task(order=f"ORD-{n:03d}"))
    next_link = _link(_search(client, "Task", [("_count", "2")]), "next")
    assert next_link is not None
    parts = urlsplit(next_link)
    query = parse_qs(parts.query)
    cursor = query["_page"][0]
    replacement = {
        "garbage": "eyJub3QiOiJhIGN1cnNvciJ9",
        "truncate": cursor[: len(cursor) // 2],
        "not-base64": "%%%",
    }[tamper]
    query["_page"] = [replacement]

    response = _get(client, parts.path, [(k, v) for k, vs in query.items() for v in vs])

    assert response.status_code == 400
    outcome = response.get_json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert "_page" in outcome["issue"][0].get("expression", [])


def test_include_adds_the_referenced_resources_once(client):
    from tests.api.helpers import send

    patient = send(client, "POST", "/fhir/Patient", fixtures.patient()).get_json()
    request = send(client, "POST", "/fhir/ServiceRequest", fixtures.service_request(patient["id"])).get_json()
    for order in ("ORD-I1", "ORD-I2"):
        task = fixtures.task(order=order)
        task["focus"] = {"reference": f"ServiceRequest/{request['id']}"}
        task["for"] = {"reference": f"Patient/{patient['id']}"}
        send(client, "POST", "/fhir/Task", task)
    bundle = client.get("/fhir/Task?_include=Task:focus&_include=Task:patient").get_json()
    modes = [(e["search"]["mode"], e["resource"]["resourceType"]) for e in bundle["entry"]]
    assert modes.count(("match", "Task")) == 2
    assert modes.count(("include", "ServiceRequest")) == 1
    assert modes.count(("include", "Patient")) == 1
    assert bundle["total"] == 2
    only_requests = client.get("/fhir/Task?_include=Task:focus:Patient").get_json()
    assert [e["search"]["mode"] for e in only_requests["entry"]] == ["match", "match"]


def test_revinclude_adds_the_resources_that_point_at_the_matches(client):
    from tests.api.helpers import send

    patient = send(client, "POST", "/fhir/Patient", fixtures.patient()).get_json()
    requests = []
    for _ in range(2):
        body = fixtures.service_request(patient["id"])
        requests.append(send(client, "POST", "/fhir/ServiceRequest", body).get_json())
    tasks = {}
    for n, request in enumerate(requests * 2):
        task = fixtures.task(order=f"ORD-R{n}")
        task["focus"] = {"reference": f"ServiceRequest/{request['id']}"}
        task["basedOn"] = [{"reference": f"ServiceRequest/{request['id']}"}]
        tasks[send(client, "POST", "/fhir/Task", task).get_json()["id"]] = request["id"]
    deleted = next(iter(tasks))
    assert client.delete(f"/fhir/Task/{deleted}").status_code == 204
    del tasks[deleted]
    url = f"/fhir/ServiceRequest?_id={requests[0]['id']}&_revinclude=Task:focus&_revinclude=Task:based-on"
    bundle = client.get(url).get_json()
    modes = [(e["search"]["mode"], e["resource"]["id"]) for e in bundle["entry"]]
    assert [m for m in modes if m[0] == "match"] == [("match", requests[0]["id"])]
    # Each Task once although two of its parameters point at the request; the deleted one not at all.
    expected = {t for t, r in tasks.items() if r == requests[0]["id"]}
    assert sorted(i for mode, i in modes if mode == "include") == sorted(expected)
    assert bundle["total"] == 1
    # Through the patient: ServiceRequest:subject; a target type that is not the searched one adds nothing.
    by_patient = client.get("/fhir/Patient?_revinclude=ServiceRequest:subject").get_json()
    assert {e["resource"]["id"] for e in by_patient["entry"] if e["search"]["mode"] == "include"} == {
        r["id"] for r in requests
    }
    other_target = client.get("/fhir/Patient?_revinclude=ServiceRequest:subject:Group").get_json()
    assert [e["search"]["mode"] for e in other_target["entry"]] == ["match"]
    capability = client.get("/fhir/metadata").get_json()
    service_request = next(r for r in capability["rest"][0]["resource"] if r["type"] == "ServiceRequest")
    assert "Task:focus" in service_request["searchRevInclude"]


def test_revinclude_beyond_its_limit_is_cut_with_a_warning(client, monkeypatch):
    from adapter.services import searching
    from tests.api.helpers import send

    monkeypatch.setattr(searching, "REVINCLUDE_LIMIT", 2)
    patient = send(client, "POST", "/fhir/Patient", fixtures.patient()).get_json()
    request = send(client, "POST", "/fhir/ServiceRequest", fixtures.service_request(patient["id"])).get_json()
    for n in range(3):
        task = fixtures.task(order=f"ORD-L{n}")
        task["focus"] = {"reference": f"ServiceRequest/{request['id']}"}
        send(client, "POST", "/fhir/Task", task)
    bundle = client.get("/fhir/ServiceRequest?_revinclude=Task:focus").get_json()
    modes = [e["search"]["mode"] for e in bundle["entry"]]
    assert modes.count("include") == 2 and modes.count("match") == 1
    outcome = next(e["resource"] for e in bundle["entry"] if e["search"]["mode"] == "outcome")
    assert outcome["issue"][0]["code"] == "too-costly"


def test_revinclude_of_an_unknown_or_impossible_parameter_is_400(client):
    for value in ("Task:nothing", "Nothing:focus", "Task", "Task:status", "Observation:patient"):
        response = client.get(f"/fhir/ServiceRequest?_revinclude={value}")
        assert response.status_code == 400, value
        assert response.get_json()["issue"][0]["expression"] == ["_revinclude"]


def test_include_iterate_follows_references_from_what_was_included(client, monkeypatch):
    from adapter.services import searching
    from tests.api.helpers import send

    organization = send(client, "POST", "/fhir/Organization", fixtures.organization()).get_json()
    patient = fixtures.patient()
    patient["managingOrganization"] = {"reference": f"Organization/{organization['id']}"}
    patient = send(client, "POST", "/fhir/Patient", patient).get_json()
    request = send(client, "POST", "/fhir/ServiceRequest", fixtures.service_request(patient["id"])).get_json()
    task = fixtures.task(order="ORD-IT")
    task["focus"] = {"reference": f"ServiceRequest/{request['id']}"}
    send(client, "POST", "/fhir/Task", task)

    def included(url: str) -> list[str]:
        bundle = client.get(url).get_json()
        return sorted(
            e["resource"]["resourceType"] for e in bundle["entry"] if e["search"]["mode"] == "include"
        )

    # The Task's request; then the request's patient; then the patient's organisation.
    assert included("/fhir/Task?_include=Task:focus") == ["ServiceRequest"]
    assert included("/fhir/Task?_include=Task:focus&_include:iterate=ServiceRequest:subject") == [
        "Patient",
        "ServiceRequest",
    ]
    assert included(
        "/fhir/Task?_include=Task:focus&_include:iterate=ServiceRequest:subject"
        "&_include:iterate=Patient:organization"
    ) == ["Organization", "Patient", "ServiceRequest"]
    # Iterated includes also start from the matches themselves, and each resource comes once.
    assert included("/fhir/Task?_include:iterate=Task:focus&_include:iterate=ServiceRequest:subject") == [
        "Patient",
        "ServiceRequest",
    ]
    # A walk cut short by the step limit says so.
    monkeypatch.setattr(searching, "ITERATE_ROUNDS", 1)
    cut = client.get(
        "/fhir/Task?_include:iterate=Task:focus&_include:iterate=ServiceRequest:subject"
    ).get_json()
    assert [e["resource"]["resourceType"] for e in cut["entry"] if e["search"]["mode"] == "include"] == [
        "ServiceRequest"
    ]
    outcome = next(e["resource"] for e in cut["entry"] if e["search"]["mode"] == "outcome")
    assert "stop after 1 steps" in outcome["issue"][0]["diagnostics"]
    monkeypatch.setattr(searching, "ITERATE_ROUNDS", 4)
    done = client.get(
        "/fhir/Task?_include:iterate=Task:focus&_include:iterate=ServiceRequest:subject"
    ).get_json()
    assert not any(e["search"]["mode"] == "outcome" for e in done["entry"])
    assert client.get("/fhir/Task?_include:iterate=Nothing:focus").status_code == 400
    assert client.get("/fhir/Task?_include:iterate=ServiceRequest:nothing").status_code == 400


def test_revinclude_iterate_follows_what_points_at_the_matches_and_at_what_came_in(client, monkeypatch):
    """A patient, the orders about them, the Tasks of those orders: a coordinator's view of one pathway."""
    from adapter.services import searching
    from tests.api.helpers import send

    patient = send(client, "POST", "/fhir/Patient", fixtures.patient()).get_json()["id"]
    other = send(client, "POST", "/fhir/Patient", fixtures.patient(ins="2750399123499")).get_json()["id"]
    tasks = []
    for n, about in enumerate((patient, patient, other)):
        request = send(client, "POST", "/fhir/ServiceRequest", fixtures.service_request(about)).get_json()
        task = fixtures.task(order=f"ORD-RI{n}")
        task["focus"] = {"reference": f"ServiceRequest/{request['id']}"}
        tasks.append(send(client, "POST", "/fhir/Task", task).get_json()["id"])

    def included(url: str) -> list[str]:
        bundle = client.get(url).get_json()
        return sorted(
            e["resource"]["resourceType"] for e in bundle["entry"] if e["search"]["mode"] == "include"
        )

    url = f"/fhir/Patient?_id={patient}&_revinclude:iterate=ServiceRequest:subject"
    assert included(url) == ["ServiceRequest", "ServiceRequest"]
    walk = included(f"{url}&_revinclude:iterate=Task:focus")
    assert walk == ["ServiceRequest", "ServiceRequest", "Task", "Task"]
    bundle = client.get(f"{url}&_revinclude:iterate=Task:focus").get_json()
    assert tasks[2] not in {e["resource"]["id"] for e in bundle["entry"]}  # the other patient's order
    # With a target type named, only references to that type count.
    assert included(f"{url}&_revinclude:iterate=Task:focus:Patient") == ["ServiceRequest", "ServiceRequest"]
    # Mixed with _include:iterate: from the Tasks back to their requests (already there, so once).
    assert included(f"{url}&_revinclude:iterate=Task:focus&_include:iterate=Task:focus") == walk
    # More referring resources than the limit: cut, and said so.
    monkeypatch.setattr(searching, "REVINCLUDE_LIMIT", 1)
    cut = client.get(url).get_json()
    outcome = next(e["resource"] for e in cut["entry"] if e["search"]["mode"] == "outcome")
    assert "more than 1 resources" in outcome["issue"][0]["diagnostics"]
    for value in ("Task:nothing", "Nothing:focus", "Task", "Task:focus:Nothing"):
        response = client.get(f"/fhir/Patient?_revinclude:iterate={value}")
        assert response.status_code == 400, value
        assert response.get_json()["issue"][0]["expression"] == ["_revinclude"]


def test_include_of_an_unknown_parameter_is_400(client):
    assert client.get("/fhir/Task?_include=Task:nothing").status_code == 400
    assert client.get("/fhir/Task?_include=Patient:organization").status_code == 400


def test_total_none_spares_the_count_and_paging_is_unchanged(client, monkeypatch):
    from adapter.store.resources import ResourceStore

    for n in range(5):
        _create(client, fixtures.task(order=f"ORD-T{n}"))
    counts: list[int] = []
    original = ResourceStore.count

    def counting(self, query, *, snapshot):  # type: ignore[no-untyped-def]
        counts.append(1)
        return original(self, query, snapshot=snapshot)

    monkeypatch.setattr(ResourceStore, "count", counting)
    ids, totals = _all_pages(client, "/fhir/Task?_count=2&_total=none")
    assert len(ids) == len(set(ids)) == 5
    # No page counts; without counting, a page of a longer result has no total.
    assert totals == [None, None, None] and counts == []
    ids_accurate, totals_accurate = _all_pages(client, "/fhir/Task?_count=2&_total=accurate")
    assert ids_accurate == ids and totals_accurate == [5, 5, 5] and len(counts) == 3
    # A single page knows its total without counting.
    assert _search(client, "Task", [("_total", "none")])["total"] == 5
    assert client.get("/fhir/Task?_total=maybe").status_code == 400


@pytest.mark.parametrize("probe_limit", [1, 10_000])
def test_sort_by_a_date_parameter_pages_in_order_with_missing_values_last(client, monkeypatch, probe_limit):
    from adapter.store import search_sql

    monkeypatch.setattr(search_sql, "PROBE_LIMIT", probe_limit)
    search_sql._cache.clear()
    effective = {
        "d12": {"effectiveDateTime": "2026-03-12T08:00:00+01:00"},
        "d05": {"effectiveDateTime": "2026-03-05"},  # a whole day: starts at midnight
        "none": {},
        "p03-20": {"effectivePeriod": {"start": "2026-03-03", "end": "2026-03-20"}},
        "d10a": {"effectiveDateTime": "2026-03-10T10:00:00Z"},
        "d10b": {"effectiveDateTime": "2026-03-10T10:00:00Z"},
    }
    ids = {}
    for name, when in effective.items():
        observation = fixtures.observation()
        observation.pop("effectiveDateTime")
        observation.update(when)
        observation["code"]["text"] = name
        ids[_create(client, observation)["id"]] = name

    def names(url: str, between=None) -> list[str]:  # type: ignore[no-untyped-def]
        found, _ = _all_pages(client, url, between)
        return [ids.get(i, "new") for i in found]

    # Going up by the start of each value; going down by the end: the period ends last of all.
    assert names("/fhir/Observation?_sort=date&_count=2") == ["p03-20", "d05", "d10a", "d10b", "d12", "none"]
    assert names("/fhir/Observation?_sort=-date&_count=2") == ["p03-20", "d12", "d10b", "d10a", "d05", "none"]
    # With a filter, and a resource created while paging is not in this page sequence.
    late = fixtures.observation()
    late["effectiveDateTime"] = "2026-03-01"
    added = []
    between = lambda: added or added.append(_create(client, late)["id"])  # noqa: E731
    assert names(f"/fhir/Observation?code={LOINC}|731-0&_sort=date&_count=2", between) == [
        "p03-20",
        "d05",
        "d10a",
        "d10b",
        "d12",
        "none",
    ]
    assert names("/fhir/Observation?_sort=date&date=ge2026-03-10") == ["p03-20", "d10a", "d10b", "d12"]
    assert names("/fhir/Observation?_sort=-date&_count=1&_total=none")[:2] == ["p03-20", "d12"]
    # A key that is not a sortable parameter is ignored with a warning, or 400.
    lenient = _search(client, "Observation", [("_sort", "code-value-quantity")])
    assert any(e["search"]["mode"] == "outcome" for e in lenient["entry"])
    for sort in ("date,date", "--date", "-", "date,", "date,status,code,category,_id"):
        strict = client.get(f"/fhir/Observation?_sort={sort}", headers={"Prefer": "handling=strict"})
        assert strict.status_code == 400, sort


@pytest.mark.parametrize("probe_limit", [1, 10_000])
def test_sort_by_several_keys_and_by_text_parameters(client, monkeypatch, probe_limit):
    """String and token parameters sort by their indexed (case- and accent-folded) text, missing values
    last either way; several keys, comma-separated or in repeated _sort, each with its direction; ties
    in creation order (reversed when the last key is descending); pages bound to the first one."""
    from adapter.store import search_sql

    monkeypatch.setattr(search_sql, "PROBE_LIMIT", probe_limit)
    search_sql._cache.clear()
    people = [("zola", "Zola", "female"), ("adam", "adam", "male"), ("ebert", "Ébert", "female")]
    people += [("none", None, "male"), ("martin", "Martin", "female")]
    ids = {}
    for name, family, gender in people:
        patient = fixtures.patient(ins=f"27503991234{len(ids):02d}")
        patient["gender"] = gender
        if family is None:
            patient.pop("name")
        else:
            patient["name"][0]["family"] = family
        ids[_create(client, patient)["id"]] = name

    def names(query: str, between=None) -> list[str]:  # type: ignore[no-untyped-def]
        found, totals = _all_pages(client, f"/fhir/Patient?{query}&_count=2", between)
        assert totals[0] == len(found)
        return [ids.get(i, "new") for i in found]

    assert names("_sort=family") == ["adam", "ebert", "martin", "zola", "none"]
    assert names("_sort=-family") == ["zola", "martin", "ebert", "adam", "none"]
    assert names("_sort=gender,-family") == ["zola", "martin", "ebert", "adam", "none"]
    assert names("_sort=gender&_sort=family") == ["ebert", "martin", "zola", "adam", "none"]
    assert names("_sort=gender") == ["zola", "ebert", "martin", "adam", "none"]
    assert names("_sort=-gender") == ["none", "adam", "martin", "ebert", "zola"]
    assert names("_sort=-_id") == [ids[i] for i in sorted(ids, reverse=True)]
    # _lastUpdated as a later key: an update moves a patient to the end of its group.
    martin = next(i for i, name in ids.items() if name == "martin")
    _update(client, {**client.get(f"/fhir/Patient/{martin}").get_json(), "active": True})
    assert names("_sort=-gender,_lastUpdated") == ["adam", "none", "zola", "ebert", "martin"]
    # A patient created while paging sorts first but is not part of this page sequence.
    added: list[str] = []
    first = fixtures.patient(ins="2750399123499", family="Aaron")
    between = lambda: added or added.append(_create(client, first)["id"])  # noqa: E731
    assert names("_sort=family,gender", between) == ["adam", "ebert", "martin", "zola", "none"]
    assert names("_sort=family")[0] == "new"
    # A paging link only fits the order it was made for; a forged one is refused, not run.
    page = _search(client, "Patient", [("_sort", "_lastUpdated"), ("_count", "1")])
    cursor = parse_qs(urlsplit(_link(page, "next")).query)["_page"][0]
    assert client.get(f"/fhir/Patient?_sort=family&_page={cursor}").status_code == 400
    forged = encode_cursor(10**6, (1, 2, 3))  # an int where the family text goes
    assert client.get(f"/fhir/Patient?_sort=family&_page={forged}").status_code == 400
    assert (
        client.get(f"/fhir/Patient?_sort=family&_page={encode_cursor(10**6, (1, 'a', 3))}").status_code == 200
    )


def test_every_type_is_searchable_by_the_tags_profiles_security_labels_and_source_of_its_meta(client):
    workflow, confidentiality = (
        "https://hospital.example.org/tags",
        "http://terminology.hl7.org/CodeSystem/v3-Confidentiality",
    )
    task = fixtures.task()
    task["meta"] = {
        "tag": [{"system": workflow, "code": "urgent"}],
        "security": [{"system": confidentiality, "code": "R"}],
        "source": "urn:oid:1.2.250.1.71.4.2.1#dpi",
    }
    tagged = _create(client, task)["id"]
    plain = _create(client, fixtures.task(order="ORD-0002"))["id"]
    lab = "https://hospital.example.org/fhir/StructureDefinition/lab-result"
    observation = fixtures.observation()
    observation["meta"] = {"profile": [f"{lab}|2.0", lab]}
    profiled = _create(client, observation)["id"]
    _create(client, fixtures.observation())

    assert _found(client, "Task", [("_tag", f"{workflow}|urgent")]) == {tagged}
    assert _found(client, "Task", [("_tag", "urgent")]) == {tagged}
    assert _found(client, "Task", [("_tag:not", f"{workflow}|urgent")]) == {plain}
    assert _found(client, "Task", [("_security", f"{confidentiality}|R")]) == {tagged}
    assert _found(client, "Task", [("_source", "urn:oid:1.2.250.1.71.4.2.1#dpi")]) == {tagged}
    assert _found(client, "Task", [("_tag:missing", "true")]) == {plain}
    assert _found(client, "Observation", [("_profile", lab)]) == {profiled}
    assert _found(client, "Observation", [("_profile:below", "https://hospital.example.org/fhir/")]) == {
        profiled
    }
    assert _found(client, "Task", [("_profile", lab)]) == set()
    # The CapabilityStatement lists them for every type but the audit trail's (only three parameters).
    statement = client.get("/fhir/metadata").get_json()
    for resource in statement["rest"][0]["resource"]:
        if resource["type"] == "AuditEvent":
            continue
        names = {p["name"] for p in resource.get("searchParam", [])}
        assert {"_tag", "_profile", "_security", "_source"} <= names, resource["type"]


def test_the_standard_parameters_of_every_type_are_searchable(client):
    """Not only the few parameters polls use: the R4 parameters of each type (here those a cell-therapy
    unit looks things up by: the apheresis bag, the machine, the infusion time, an order's period)."""
    patient = _create(client, fixtures.patient())["id"]
    bag = {
        "resourceType": "Specimen",
        "subject": {"reference": f"Patient/{patient}"},
        "collection": {"collectedDateTime": "2026-03-02T08:30:00+01:00"},
        "container": [{"identifier": [{"system": "urn:oid:1.2.250.1.999.1", "value": "BAG-0042"}]}],
    }
    specimen = _create(client, bag)["id"]
    machine = {
        "resourceType": "Device",
        "udiCarrier": [{"deviceIdentifier": "00844588003288"}],
        "manufacturer": "Terumo BCT",
        "deviceName": [{"name": "Spectra Optia", "type": "manufacturer-name"}],
        "modelNumber": "10310",
    }
    device = _create(client, machine)["id"]
    # Others beside them, so that a filter that did nothing would show.
    _create(
        client,
        {**bag, "collection": {"collectedDateTime": "2026-02-01"}, "container": [{"description": "x"}]},
    )
    _create(client, {"resourceType": "Device", "manufacturer": "Fresenius", "modelNumber": "COM.TEC"})
    urgent = fixtures.task(order="ORD-0042")
    urgent.update(priority="urgent", executionPeriod={"start": "2026-03-10", "end": "2026-03-20"})
    task = _create(client, urgent)["id"]
    _create(client, fixtures.task(order="ORD-0043"))
    infusion = {
        "resourceType": "MedicationAdministration",
        "status": "completed",
        "medicationCodeableConcept": {"text": "tisagenlecleucel"},
        "subject": {"reference": f"Patient/{patient}"},
        "effectivePeriod": {"start": "2026-04-08T09:00:00+02:00", "end": "2026-04-08T09:30:00+02:00"},
    }
    administration = _create(client, infusion)["id"]

    assert _found(client, "Specimen", [("container-id", "BAG-0042")]) == {specimen}
    assert _found(client, "Specimen", [("collected", "2026-03-02")]) == {specimen}
    assert _found(client, "Specimen", [("collected", "2026-03-03")]) == set()
    assert _found(client, "Device", [("udi-di", "00844588003288")]) == {device}
    assert _found(client, "Device", [("manufacturer", "terumo"), ("device-name", "spectra")]) == {device}
    assert _found(client, "Task", [("priority", "urgent")]) == {task}
    assert _found(client, "Task", [("period", "ge2026-03-15")]) == {task}
    assert _ids(_search(client, "Task", [("_sort", "period")]))[0] == task
    assert _found(client, "MedicationAdministration", [("effective-time", "2026-04-08")]) == {administration}
    assert _found(client, "MedicationAdministration", [("effective-time", "lt2026-04-01")]) == set()


def test_parameters_whose_expressions_filter_or_read_extensions_are_searchable(client):
    """`Patient.telecom.where(system='email')`, `(Observation.value as CodeableConcept).text`,
    `Patient.extension('...mothersMaidenName')`: the filter applies (a phone number is no email)."""
    maiden = "http://hl7.org/fhir/StructureDefinition/patient-extensions-Patient-mothersMaidenName"
    reached = fixtures.patient()
    reached["telecom"] = [
        {"system": "phone", "value": "0478000000"},
        {"system": "email", "value": "sophie.martin@example.org"},
    ]
    reached["extension"] = [{"url": maiden, "valueString": "Durand"}]
    patient = _create(client, reached)["id"]
    other = fixtures.patient()
    other["telecom"] = [
        {"system": "email", "value": "0478000000"},
        {"system": "phone", "value": "0611111111"},
    ]
    other["extension"] = [{"url": "https://example.org/other", "valueString": "Durand"}]
    other_id = _create(client, other)["id"]
    assert _found(client, "Patient", [("phone", "0478000000")]) == {patient}
    assert _found(client, "Patient", [("email", "sophie.martin@example.org")]) == {patient}
    assert _found(client, "Patient", [("email", "0478000000")]) == {other_id}
    assert _found(client, "Patient", [("telecom", "0478000000")]) == {patient, other_id}
    assert _found(client, "Patient", [("mothersMaidenName", "durand")]) == {patient}
    cells = fixtures.observation()
    cells["valueCodeableConcept"] = {"text": "Viable CD3+ cells"}
    cells.pop("valueQuantity", None)
    observation = _create(client, cells)["id"]
    _create(client, fixtures.observation())
    assert _found(client, "Observation", [("value-string", "viable")]) == {observation}


def test_number_and_quantity_parameters_compare_with_prefixes_precision_and_units(client):
    """Lab values a CAR-T unit watches (ferritin for cytokine release syndrome) found by threshold."""
    ucum = "http://unitsofmeasure.org"
    ferritin = {}
    for value, unit in (("1200", "ug/L"), ("850", "ug/L"), ("40.0", "ug/L"), ("1.5", "mg/L")):
        observation = fixtures.observation(value)
        observation["code"] = {"coding": [{"system": LOINC, "code": "2276-4"}]}
        observation["valueQuantity"].update(unit=unit, code=unit)
        ferritin[f"{value} {unit}"] = _create(client, observation)["id"]
    text = fixtures.observation()
    text.pop("valueQuantity")
    text["valueString"] = "haemolysed sample"
    _create(client, text)
    ids = {v: k for k, v in ferritin.items()}

    def found(value: str) -> set[str]:
        return {ids[i] for i in _found(client, "Observation", [("value-quantity", value)])}

    assert found("gt1000") == {"1200 ug/L"}
    assert found("lt1000") == {"850 ug/L", "40.0 ug/L", "1.5 mg/L"}
    assert found("lt1000||ug/L") == {"850 ug/L", "40.0 ug/L"}
    assert found(f"ge850|{ucum}|ug/L") == {"1200 ug/L", "850 ug/L"}
    assert found("le40") == {"40.0 ug/L", "1.5 mg/L"}
    # eq and ne by the precision of the number searched: 1.2e3 is [1150, 1250), 40 is [39.5, 40.5).
    assert found("1200") == found("1.2e3") == found("eq1200") == {"1200 ug/L"}
    assert found("40") == {"40.0 ug/L"} and found("40.6") == set()
    assert found("ne1200") == {"850 ug/L", "40.0 ug/L", "1.5 mg/L"}
    assert found("ap1100") == {"1200 ug/L"}  # within 10%
    assert found("gt2000,lt2") == {"1.5 mg/L"}

    # Sorted by value (whatever the unit), those without one last; paging keeps the order.
    def by_value(sort: str) -> list[str]:
        ordered, _ = _all_pages(client, f"/fhir/Observation?code={LOINC}|2276-4&_sort={sort}&_count=2")
        return [ids.get(i, "text") for i in ordered]

    text["code"] = {"coding": [{"system": LOINC, "code": "2276-4"}]}
    _create(client, text)
    assert by_value("value-quantity") == ["1.5 mg/L", "40.0 ug/L", "850 ug/L", "1200 ug/L", "text"]
    assert by_value("-value-quantity") == ["1200 ug/L", "850 ug/L", "40.0 ug/L", "1.5 mg/L", "text"]
    with_code = [("code", f"{LOINC}|2276-4"), ("value-quantity", "gt500")]
    assert {ids[i] for i in _found(client, "Observation", with_code)} == {"1200 ug/L", "850 ug/L"}
    assert {ids[i] for i in _found(client, "Observation", [("value-quantity:missing", "false")])} == set(
        ferritin
    )
    for bad in ("abc", "gt", "5|x", "1|2|3|4", "NaN"):
        response = client.get(f"/fhir/Observation?value-quantity={bad}")
        assert response.status_code == 400, bad
        assert response.get_json()["issue"][0]["expression"] == ["value-quantity"]
    # A number parameter: a risk's probability.
    risk = {
        "resourceType": "RiskAssessment",
        "status": "final",
        "subject": {"reference": f"Patient/{_create(client, fixtures.patient())['id']}"},
        "prediction": [
            {"outcome": {"text": "grade 3 cytokine release syndrome"}, "probabilityDecimal": 0.35}
        ],
    }
    assessed = _create(client, risk)["id"]
    assert _found(client, "RiskAssessment", [("probability", "gt0.3")]) == {assessed}
    assert _found(client, "RiskAssessment", [("probability", "gt0.4")]) == set()


def test_composite_parameters_match_code_and_value_of_the_same_observation_or_component(client):
    """Separate parameters match anywhere in a resource; a composite pairs a code with the value beside it."""
    ucum, loinc = "http://unitsofmeasure.org", LOINC

    def observation(code: str, value: str, unit: str, components=()) -> str:  # type: ignore[no-untyped-def]
        created = fixtures.observation(value)
        created["code"] = {"coding": [{"system": loinc, "code": code}]}
        created["valueQuantity"].update(unit=unit, code=unit)
        if components:
            created.pop("valueQuantity")
            created["component"] = [
                {
                    "code": {"coding": [{"system": loinc, "code": c}]},
                    "valueQuantity": {"value": v, "system": ucum, "code": "mm[Hg]"},
                }
                for c, v in components
            ]
        return _create(client, created)["id"]

    ferritin = observation("2276-4", "1200", "ug/L")
    crp = observation("1988-5", "150", "mg/L")
    pressure = observation("85354-9", "0", "mm[Hg]", components=(("8480-6", 85), ("8462-4", 50)))

    def found(name: str, value: str) -> set[str]:
        return _found(client, "Observation", [(name, value)])

    assert found("code-value-quantity", f"{loinc}|2276-4$gt1000") == {ferritin}
    assert found("code-value-quantity", f"{loinc}|1988-5$gt1000") == set()
    assert found("code-value-quantity", f"{loinc}|2276-4$gt1000,{loinc}|1988-5$gt100") == {ferritin, crp}
    assert found("code-value-quantity", f"2276-4$1200|{ucum}|ug/L") == {ferritin}
    # Systolic 85, diastolic 50: the separate parameters match "systolic below 60", the composite not.
    separate = [("component-code", f"{loinc}|8480-6"), ("component-value-quantity", "lt60")]
    assert _found(client, "Observation", separate) == {pressure}
    assert found("component-code-value-quantity", f"{loinc}|8480-6$lt60") == set()
    assert found("component-code-value-quantity", f"{loinc}|8462-4$lt60") == {pressure}
    # combo-: the Observation's own code and value, or a component's.
    assert found("combo-code-value-quantity", f"{loinc}|8480-6$gt80") == {pressure}
    assert found("combo-code-value-quantity", f"{loinc}|2276-4$gt1000") == {ferritin}
    for bad in (f"{loinc}|2276-4", "$gt1000", f"{loinc}|2276-4$gt1000$x", f"{loinc}|2276-4$abc"):
        response = client.get("/fhir/Observation", query_string={"code-value-quantity": bad})
        assert response.status_code == 400, bad
        assert response.get_json()["issue"][0]["expression"] == ["code-value-quantity"]
    # Modifiers other than :missing (tests/api/test_search_conformance2.py) are refused.
    assert client.get("/fhir/Observation?code-value-quantity:exact=x").status_code == 400


# -- chained parameters ------------------------------------------------------------------------------

INS = "urn:oid:1.2.250.1.213.1.4.8"


@pytest.mark.parametrize("probe_limit", [1, 3, 10_000])
def test_a_chained_parameter_finds_resources_by_what_they_point_at(client, monkeypatch, probe_limit):
    """Orders found by the INS of their patient, without reading the patient first; the same results
    whichever filter drives the search."""
    from adapter.store import search_sql

    monkeypatch.setattr(search_sql, "PROBE_LIMIT", probe_limit)
    search_sql._cache.clear()
    helene = _create(client, fixtures.patient())
    luc = _create(client, fixtures.patient(ins="1720769654321", family="Bernard", given="Luc"))
    gone = _create(client, fixtures.patient(ins="1550169000111", family="Morel", given="Anne"))
    tasks = {}
    for n, (patient, owner) in enumerate(
        [(helene, "kite-eu"), (luc, "kite-eu"), (helene, "novartis"), (gone, "kite-eu"), (helene, "kite-eu")]
    ):
        task = fixtures.task(owner=f"Organization/{owner}", order=f"ORD-C{n}")
        task["for"] = {"reference": f"Patient/{patient['id']}"}
        tasks[n] = _create(client, task)["id"]
    assert client.delete(f"/fhir/Patient/{gone['id']}").status_code == 204

    def found(params: list[tuple[str, str]]) -> list[str]:
        return _ids(_search(client, "Task", params))

    assert found([("patient.identifier", f"{INS}|2750399123456")]) == [tasks[0], tasks[2], tasks[4]]
    assert found([("subject:Patient.identifier", "2750399123456")]) == [tasks[0], tasks[2], tasks[4]]
    assert found(
        [("patient.identifier", f"{INS}|2750399123456"), ("owner", "Organization/kite-eu"), ("_count", "1")]
    ) == [tasks[0]]
    # OR inside the chain, string and date parameters of the target.
    assert found(
        [("patient.identifier", "2750399123456,1720769654321"), ("owner", "Organization/kite-eu")]
    ) == [
        tasks[0],
        tasks[1],
        tasks[4],
    ]
    assert found([("patient.family", "bern")]) == [tasks[1]]
    assert found([("patient.birthdate", "ge1975-01-01"), ("owner", "Organization/novartis")]) == [tasks[2]]
    # A deleted target matches nothing any more.
    assert found([("patient.identifier", "1550169000111")]) == []
    bundle = _search(client, "Task", [("patient.identifier", "1720769654321")])
    assert "patient.identifier=1720769654321" in _link(bundle, "self")
    # A reference that may point at several types looks at each type that has the parameter:
    # Task.owner may be an Organization or a Patient (among others), both have `identifier`.
    kite = _create(
        client, {**fixtures.organization(), "identifier": [{"system": "urn:mfr", "value": "kite"}]}
    )
    kite_task = fixtures.task(owner=f"Organization/{kite['id']}", order="ORD-OWN")
    owned = _create(client, kite_task)["id"]
    assert found([("owner.identifier", "urn:mfr|kite")]) == [owned]
    assert found([("owner:Organization.identifier", "kite")]) == [owned]
    assert found([("owner:Patient.identifier", "kite")]) == []


def test_chained_parameters_that_cannot_be_answered(client):
    for query, needle in (
        ("focus.type=x", "name the type"),  # a token on some of focus's targets, a uri on others
        ("patient.shoe=42", "shoe"),
        ("status.code=x", "not a reference"),
        ("patient:Device.identifier=x", "never points at a Device"),
        ("patient.identifier:missing=true", ":missing"),
        # Each link of a longer chain is checked like the first.
        ("focus:ServiceRequest.subject.shoe=42", "shoe"),
        ("focus:ServiceRequest.status.code=x", "not a reference"),
        ("focus:ServiceRequest.subject:Patient.identifier:missing=true", ":missing"),
    ):
        response = client.get(f"/fhir/Task?{query}")
        assert response.status_code == 400, query
        assert needle in response.get_json()["issue"][0]["diagnostics"], query
    assert client.get("/fhir/Task?owner:Organization.name=kite").status_code == 200
    assert client.get("/fhir/Task?focus:ServiceRequest.identifier=x").status_code == 200
    # Chains longer than three links: ignored with a warning, or 400 under strict handling.
    too_long = "focus:ServiceRequest.subject:Patient.organization.partof.name"
    lenient = _search(client, "Task", [(too_long, "HCL")])
    outcomes = [e for e in lenient.get("entry", []) if e["search"]["mode"] == "outcome"]
    assert "more than 3 links" in outcomes[0]["resource"]["issue"][0]["diagnostics"]
    strict = client.get(f"/fhir/Task?{too_long}=HCL", headers={"Prefer": "handling=strict"})
    assert strict.status_code == 400


@pytest.mark.parametrize("probe_limit", [1, 10_000])
def test_chains_of_several_links_follow_every_reference(client, monkeypatch, probe_limit):
    """Tasks found through their order's patient, and through that patient's organisation."""
    from adapter.store import search_sql

    monkeypatch.setattr(search_sql, "PROBE_LIMIT", probe_limit)
    search_sql._cache.clear()
    hospitals = [_create(client, fixtures.organization(finess=f))["id"] for f in ("690781810", "130786049")]
    tasks = []
    for n, (ins, hospital) in enumerate((("2750399123456", 0), ("2750399123457", 1))):
        patient = fixtures.patient(ins=ins)
        patient["managingOrganization"] = {"reference": f"Organization/{hospitals[hospital]}"}
        patient_id = _create(client, patient)["id"]
        request = _create(client, fixtures.service_request(patient_id))
        task = fixtures.task(order=f"ORD-CH{n}")
        task["focus"] = {"reference": f"ServiceRequest/{request['id']}"}
        tasks.append(_create(client, task)["id"])
    _create(client, fixtures.task(order="ORD-NOFOCUS"))

    def found(name: str, value: str) -> set[str]:
        return _found(client, "Task", [(name, value)])

    ins = fixtures.INS_NIR
    assert found("focus:ServiceRequest.subject:Patient.identifier", f"{ins}|2750399123457") == {tasks[1]}
    assert found("focus:ServiceRequest.subject.identifier", f"{ins}|2750399123456") == {tasks[0]}
    assert found("focus:ServiceRequest.subject:Patient.organization.identifier", "130786049") == {tasks[1]}
    assert found("focus:ServiceRequest.subject:Patient.organization.identifier", "999") == set()


def test_has_finds_resources_by_what_refers_to_them(client):
    """Reverse chaining: the patients with an order in manufacturing, the requests whose Task is done."""
    helene = _create(client, fixtures.patient())
    luc = _create(client, fixtures.patient(ins="1720769654321", family="Bernard", given="Luc"))
    anne = _create(client, fixtures.patient(ins="1550169000111", family="Morel", given="Anne"))
    for patient, business in (
        (helene, "manufacturing"),
        (luc, "requested"),
        (helene, "requested"),
        (anne, "x"),
    ):
        task = fixtures.task(business=business, order=f"ORD-H-{patient['id'][:8]}-{business}")
        task["for"] = {"reference": f"Patient/{patient['id']}"}
        created = _create(client, task)
        if patient is anne:
            assert client.delete(f"/fhir/Task/{created['id']}").status_code == 204
    making = f"{MILESTONE_SYSTEM}|manufacturing"
    requested = f"{MILESTONE_SYSTEM}|requested"
    assert _found(client, "Patient", [("_has:Task:patient:business-status", making)]) == {helene["id"]}
    assert _found(client, "Patient", [("_has:Task:patient:business-status", requested)]) == {
        helene["id"],
        luc["id"],
    }
    # Two _has are ANDed; each matches on its own Task.
    both = [("_has:Task:patient:business-status", making), ("_has:Task:patient:business-status", requested)]
    assert _found(client, "Patient", both) == {helene["id"]}
    # With another filter on the patient itself; and a deleted Task refers to nothing any more.
    assert _found(
        client, "Patient", [("_has:Task:patient:business-status", requested), ("family", "bernard")]
    ) == {luc["id"]}
    assert (
        _found(client, "Patient", [("_has:Task:patient:business-status", f"{MILESTONE_SYSTEM}|x")]) == set()
    )
    for name in (
        "_has:Task:patient",
        "_has:Nothing:patient:status",
        "_has:Task:status:status",
        "_has:Task:patient:shoe",
    ):
        response = client.get(f"/fhir/Patient?{name}=1")
        assert response.status_code == 400, name
        assert response.get_json()["issue"][0]["expression"] == [name]
    # Nested: the patients with an order (ServiceRequest) whose Task is in manufacturing.
    for patient, business in ((luc, "manufacturing"), (helene, "requested")):
        request = _create(client, fixtures.service_request(patient["id"]))
        task = fixtures.task(business=business, order=f"ORD-N-{patient['id'][:8]}")
        task["focus"] = {"reference": f"ServiceRequest/{request['id']}"}
        _create(client, task)
    nested = "_has:ServiceRequest:subject:_has:Task:focus:business-status"
    assert _found(client, "Patient", [(nested, making)]) == {luc["id"]}
    assert _found(client, "Patient", [(nested, requested)]) == {helene["id"]}
    assert (
        client.get("/fhir/Patient?_has:Task:patient:_has:Observation:based-on:status=final").status_code
        == 400
    )
    too_deep = "_has:Task:patient:_has:Provenance:target:_has:Provenance:target:_has:Provenance:target:agent"
    lenient = _search(client, "Patient", [(too_deep, "x")])
    assert any(e["search"]["mode"] == "outcome" for e in lenient["entry"])


@pytest.mark.parametrize("probe_limit", [1, 3, 10_000])
def test_results_do_not_depend_on_which_filter_drives_the_search(client, monkeypatch, probe_limit):
    """With a probe limit of 1 every search walks the sort order probing each filter; with 3 the
    small sets drive and the large ones are probed; with 10,000 the smallest set always drives."""
    from adapter.store import search_sql

    monkeypatch.setattr(search_sql, "PROBE_LIMIT", probe_limit)
    search_sql._cache.clear()  # statements embed the limit
    plan = [
        ("Organization/kite-eu", "requested"),
        ("Organization/kite-eu", "manufacturing"),
        ("Organization/kite-eu", "manufacturing"),
        ("Organization/kite-eu", "manufacturing"),
        ("Organization/kite-eu", "manufacturing"),
        ("Organization/novartis", "requested"),
        ("Organization/novartis", "manufacturing"),
    ]
    ids = [
        _create(client, fixtures.task(owner=o, business=b, order=f"ORD-{n:03d}"))["id"]
        for n, (o, b) in enumerate(plan)
    ]
    middle = _search(client, "Task", [("_id", ids[3])])["entry"][0]["resource"]["meta"]["lastUpdated"]

    def found(params: list[tuple[str, str]]) -> list[str]:
        return [e["resource"]["id"] for e in _matches(_search(client, "Task", params))]

    kite_making = found(
        [
            ("owner", "Organization/kite-eu"),
            ("business-status", f"{MILESTONE_SYSTEM}|manufacturing"),
            ("_sort", "_lastUpdated"),
        ]
    )
    assert kite_making == ids[1:5]
    assert found(
        [("owner", "Organization/kite-eu"), ("_lastUpdated", f"gt{middle}"), ("_sort", "-_lastUpdated")]
    ) == [ids[4]]
    assert found(
        [("owner", "Organization/novartis"), ("business-status", f"{MILESTONE_SYSTEM}|requested")]
    ) == [ids[5]]
    assert found(
        [("business-status:not", f"{MILESTONE_SYSTEM}|manufacturing"), ("_sort", "_lastUpdated")]
    ) == [
        ids[0],
        ids[5],
    ]
    # Paging over a driven search: each Task once, in order.
    pages, totals = _all_pages(
        client, f"/fhir/Task?business-status={MILESTONE_SYSTEM}|manufacturing&_sort=_lastUpdated&_count=2"
    )
    assert pages == [ids[1], ids[2], ids[3], ids[4], ids[6]]
    assert set(totals) == {5}


def test_a_repeated_poll_reuses_the_counts_of_the_last_probe(app, client):
    """The probe that picks the driving filter runs once for a poll repeated within seconds, and again
    once its counts have expired; the results are the same either way."""
    from sqlalchemy import event

    from adapter.store import selectivity

    for n, owner in enumerate(["Organization/kite-eu"] * 3 + ["Organization/novartis"]):
        _create(client, fixtures.task(owner=owner, order=f"ORD-P{n}"))
    engine = app.extensions["cart_adapter"].engine
    probes: list[str] = []

    def count_probes(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        if statement.lstrip().startswith("SELECT (SELECT count(*)"):
            probes.append(statement)

    event.listen(engine, "before_cursor_execute", count_probes)
    try:
        since = "2000-01-01T00:00:00Z"
        poll = [("owner", "Organization/kite-eu"), ("_lastUpdated", f"gt{since}"), ("_sort", "_lastUpdated")]
        first = [e["resource"]["id"] for e in _matches(_search(client, "Task", poll))]
        assert len(first) == 3 and len(probes) == 1
        again = [e["resource"]["id"] for e in _matches(_search(client, "Task", poll))]
        assert again == first and len(probes) == 1
        selectivity.for_engine(engine).clear()  # what expiry does after a few seconds
        assert [e["resource"]["id"] for e in _matches(_search(client, "Task", poll))] == first
        assert len(probes) == 2
        # A later bound matches no more rows than the one counted: few enough to drive, no probe.
        later = [("owner", "Organization/novartis"), ("_lastUpdated", "gt2001-01-01T00:00:00Z")]
        assert len(_matches(_search(client, "Task", later))) == 1
        assert len(probes) == 2
        # Another owner with an earlier bound: neither count is known, both are counted.
        earlier = [("owner", "Organization/novartis"), ("_lastUpdated", "gt1990-01-01T00:00:00Z")]
        assert len(_matches(_search(client, "Task", earlier))) == 1
        assert len(probes) == 3
    finally:
        event.remove(engine, "before_cursor_execute", count_probes)
