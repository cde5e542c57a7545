"""FHIR R4 search semantics checked against the specification (search.html), second round.

Every test runs on SQLite and on PostgreSQL (the `client` fixture is parametrised over both).
"""

from __future__ import annotations

from urllib.parse import urlencode

from tests.api.helpers import created as _create

FHIR_JSON = "application/fhir+json"
GENDER = "http://hl7.org/fhir/administrative-gender"


def _get(client, res_type: str, params: list[tuple[str, str]], **headers: str):  # type: ignore[no-untyped-def]
    return client.get(f"/fhir/{res_type}?{urlencode(params)}", headers={"Accept": FHIR_JSON, **headers})


def _found(client, res_type: str, params: list[tuple[str, str]]) -> set[str]:  # type: ignore[no-untyped-def]
    response = _get(client, res_type, params)
    assert response.status_code == 200, response.get_data(as_text=True)
    entries = response.get_json().get("entry", [])
    return {e["resource"]["id"] for e in entries if e["search"]["mode"] == "match"}


def test_a_code_element_is_searched_with_the_system_its_binding_implies(client):
    # R4 search.html, token: a `code` element's system is implicit, the one of the value set its
    # binding names (a boolean's is http://hl7.org/fhir/special-values). gender=<system>|female found
    # nothing, and |female (a value without a system) found the female patients.
    female = _create(client, {"resourceType": "Patient", "gender": "female", "active": True})["id"]
    male = _create(client, {"resourceType": "Patient", "gender": "male", "address": [{"use": "home"}]})["id"]

    assert _found(client, "Patient", [("gender", f"{GENDER}|female")]) == {female}
    assert _found(client, "Patient", [("gender", "female")]) == {female}
    assert _found(client, "Patient", [("gender", f"{GENDER}|")]) == {female, male}
    assert _found(client, "Patient", [("gender", "|female")]) == set()
    assert _found(client, "Patient", [("gender", "http://example.org/other|female")]) == set()
    assert _found(client, "Patient", [("gender:not", f"{GENDER}|female")]) == {male}
    assert _found(client, "Patient", [("active", "http://hl7.org/fhir/special-values|true")]) == {female}
    # Patient?deceased, computed (present and not false), is a boolean token like the others.
    assert _found(client, "Patient", [("deceased", "http://hl7.org/fhir/special-values|false")]) == {
        female,
        male,
    }
    assert _found(client, "Patient", [("deceased", "|false")]) == set()
    # A code inside a data type (Address.use), bound in the data type's definition.
    assert _found(client, "Patient", [("address-use", "http://hl7.org/fhir/address-use|home")]) == {male}
    # Task.intent's value set draws from two code systems: each code has the system that defines it.
    order = {"resourceType": "Task", "status": "requested", "intent": "order"}
    unknown = {"resourceType": "Task", "status": "requested", "intent": "unknown"}
    order_id, unknown_id = _create(client, order)["id"], _create(client, unknown)["id"]
    assert _found(client, "Task", [("intent", "http://hl7.org/fhir/request-intent|order")]) == {order_id}
    assert _found(client, "Task", [("intent", "http://hl7.org/fhir/task-intent|unknown")]) == {unknown_id}
    assert _found(client, "Task", [("intent", "http://hl7.org/fhir/task-intent|order")]) == set()
    assert _found(client, "Task", [("status", "http://hl7.org/fhir/task-status|requested")]) == {
        order_id,
        unknown_id,
    }


def test_uri_below_and_above_compare_by_path_segments(client):
    # R4 search.html, uri: :below matches the URL and those whose path goes on below it, :above the URL
    # and its parents; both by path segment, and for URLs only (not URNs). url:below=http://a/b found
    # http://a/bc (a character prefix), and :above answered 400.
    def value_set(url: str) -> str:
        return _create(client, {"resourceType": "ValueSet", "status": "draft", "url": url})["id"]

    names = {
        value_set(url): url
        for url in ("http://a.example", "http://a.example/b", "http://a.example/b/", "http://a.example/bc")
    }
    names[value_set("http://a.example/b/d")] = "http://a.example/b/d"
    names[value_set("urn:oid:1.2.3")] = "urn:oid:1.2.3"

    def found(name: str, value: str) -> set[str]:
        return {names[i] for i in _found(client, "ValueSet", [(name, value)])}

    below_b = {"http://a.example/b", "http://a.example/b/", "http://a.example/b/d"}
    assert found("url:below", "http://a.example/b") == below_b
    assert found("url:below", "http://a.example/b/") == below_b
    assert found("url:below", "http://a.example") == set(names.values()) - {"urn:oid:1.2.3"}
    assert found("url:above", "http://a.example/b/d/e") == {"http://a.example"} | below_b
    assert found("url:above", "http://a.example/bc") == {"http://a.example", "http://a.example/bc"}
    assert found("url:above", "http://a.example/b?x=1") == {
        "http://a.example",
        "http://a.example/b",
        "http://a.example/b/",
    }
    for name in ("url:below", "url:above"):
        response = _get(client, "ValueSet", [(name, "urn:oid:1.2")])
        assert response.status_code == 400
        assert response.get_json()["issue"][0]["expression"] == [name]


def test_uri_below_is_case_sensitive_on_both_databases(client):
    # R4 search.html, uri: matches are precise (case-sensitive), as url= is. SQLite's LIKE ignores the
    # case of ASCII letters, PostgreSQL's does not: url:below=http://a.example/B found http://a.example/b/d
    # on SQLite only.
    lower = _create(client, {"resourceType": "ValueSet", "status": "draft", "url": "http://a.example/b/d"})
    upper = _create(client, {"resourceType": "ValueSet", "status": "draft", "url": "http://a.example/B/d"})
    assert _found(client, "ValueSet", [("url:below", "http://a.example/B")]) == {upper["id"]}
    assert _found(client, "ValueSet", [("url:below", "http://a.example/b")]) == {lower["id"]}
    assert _found(client, "ValueSet", [("url:below", "HTTP://A.EXAMPLE")]) == set()


def test_number_sa_and_eb_take_the_precision_of_the_value_searched(client):
    # R4 search.html, prefixes: sa is "the range of the search value does not overlap with the range of
    # the target value, and the range above the search value contains the range of the target value"
    # (eb the same below). 100 stands for [99.5, 100.5): sa100 found 100.4, eb100 found 99.5. gt and lt
    # compare with the number exactly ("greater than exactly 100"); eq with its precision.
    names = {}
    for value in ("99.4", "99.5", "100", "100.4", "100.5", "149", "150"):
        observation = {
            "resourceType": "Observation",
            "status": "final",
            "code": {"text": "ferritin"},
            "valueQuantity": {"value": float(value) if "." in value else int(value)},
        }
        names[_create(client, observation)["id"]] = value

    def found(value: str) -> set[str]:
        return {names[i] for i in _found(client, "Observation", [("value-quantity", value)])}

    assert found("sa100") == {"100.5", "149", "150"}
    assert found("eb100") == {"99.4"}
    assert found("gt100") == {"100.4", "100.5", "149", "150"}
    assert found("lt100") == {"99.4", "99.5"}
    assert found("100") == {"99.5", "100", "100.4"}
    assert found("100.0") == {"100"}
    # 1e2 has one significant figure: [50, 150).
    assert found("1e2") == set(names.values()) - {"150"}
    assert found("sa1e2") == {"150"}


def _observation_about(reference: str) -> dict:
    return {
        "resourceType": "Observation",
        "status": "final",
        "code": {"text": "ferritin"},
        "subject": {"reference": reference},
    }


def test_a_reference_to_another_server_does_not_match_a_local_id(client):
    # R4 search.html, reference: a relative value is a resource on this server; an absolute reference
    # whose base is another server's is not that resource, and is found by its URL. subject=Patient/p1
    # found the Observation about http://other.example/fhir/Patient/p1. With no public base configured,
    # the base the request came in at (here http://localhost/fhir) is this server's.
    other = "http://other.example/fhir/Patient/p1"
    names = {
        _create(client, _observation_about(reference))["id"]: reference
        for reference in ("Patient/p1", other, f"{other}/_history/3", "http://localhost/fhir/Patient/p1")
    }
    names[_create(client, _observation_about("Patient/p2"))["id"]] = "Patient/p2"

    def found(name: str, value: str) -> set[str]:
        return {names[i] for i in _found(client, "Observation", [(name, value)])}

    local = {"Patient/p1", "http://localhost/fhir/Patient/p1"}
    assert found("subject", "Patient/p1") == local
    assert found("subject:Patient", "p1") == local
    assert found("patient", "p1") == local
    assert found("subject", "http://localhost/fhir/Patient/p1") == local
    assert found("subject", other) == {other, f"{other}/_history/3"}
    assert found("subject:Patient", other) == {other, f"{other}/_history/3"}
    assert found("subject", "http://third.example/fhir/Patient/p1") == set()


def test_with_a_public_base_references_on_it_are_local_and_the_index_follows_the_base(settings):
    # CART_ADAPTER_PUBLIC_BASE_URL is the one base known when a resource is indexed: an absolute
    # reference on it is indexed by its id (a search, _include or chain takes it as local); any other
    # absolute reference, the request's host included, by its URL. Configuring the base rebuilds the
    # index at start-up.
    from adapter import create_app

    base = "https://cart.example.org/fhir"
    first = create_app(settings)
    client = first.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = _bearer(first, "http://localhost/fhir")
    patient = {"resourceType": "Patient", "id": "p1", "name": [{"family": "Martin"}]}
    assert (
        client.put("/fhir/Patient/p1", json=patient, headers={"Content-Type": FHIR_JSON}).status_code == 201
    )
    names = {
        _create(client, _observation_about(reference))["id"]: reference
        for reference in ("Patient/p1", f"{base}/Patient/p1/_history/1", "http://localhost/fhir/Patient/p1")
    }
    first.extensions["cart_adapter"].close()

    app = create_app(settings.with_overrides(public_base_url=base))
    try:
        client = app.test_client()
        client.environ_base["HTTP_AUTHORIZATION"] = _bearer(app, base)

        def found(params: list[tuple[str, str]]) -> set[str]:
            return {names[i] for i in _found(client, "Observation", params)}

        local = {"Patient/p1", f"{base}/Patient/p1/_history/1"}
        assert found([("subject", "Patient/p1")]) == local
        assert found([("subject", f"{base}/Patient/p1")]) == local
        assert found([("subject", "http://localhost/fhir/Patient/p1")]) == {
            "http://localhost/fhir/Patient/p1"
        }
        assert found([("subject:Patient.family", "martin")]) == local
        response = _get(client, "Observation", [("_include", "Observation:subject")])
        entries = response.get_json()["entry"]
        assert [e["resource"]["id"] for e in entries if e["search"]["mode"] == "include"] == ["p1"]
    finally:
        app.extensions["cart_adapter"].close()


def _bearer(app, audience: str) -> str:  # type: ignore[no-untyped-def]
    auth = app.extensions["cart_adapter"].auth
    if auth.registry.get("conformance-admin") is None:
        auth.register("conformance-admin", "admin", "system/*.cruds")
    token, _ = auth.tokens.issue("conformance-admin", "system/*.cruds", audience)
    return f"Bearer {token}"


def test_r4_parameters_without_an_index_are_not_advertised_and_are_refused_or_ignored_by_name(client):
    # Bundle?composition and ?message search the resource inside the Bundle's first entry, and
    # QuestionnaireResponse?item-subject needs a hasExtension() filter: neither form is indexed. They
    # must not be listed in the CapabilityStatement, and like any parameter the server cannot apply,
    # are 400 under Prefer: handling=strict and ignored with a warning otherwise (R4 search.html,
    # handling errors), the issue naming the parameter (the 400 had no expression, and the warning
    # called them unknown).
    statement = client.get("/fhir/metadata", headers={"Accept": FHIR_JSON}).get_json()
    advertised = {
        (r["type"], p["name"]) for r in statement["rest"][0]["resource"] for p in r.get("searchParam", [])
    }
    for res_type, name, value in (
        ("Bundle", "composition", "Composition/c1"),
        ("Bundle", "message", "MessageHeader/m1"),
        ("Bundle", "composition.subject", "Patient/p1"),
        ("QuestionnaireResponse", "item-subject", "Patient/p1"),
    ):
        assert (res_type, name) not in advertised
        refused = _get(client, res_type, [(name, value)], Prefer="handling=strict")
        assert refused.status_code == 400, name
        (issue,) = refused.get_json()["issue"]
        assert issue["expression"] == [name] and "not supported" in issue["diagnostics"]
        ignored = _get(client, res_type, [(name, value)])
        assert ignored.status_code == 200
        outcomes = [e["resource"] for e in ignored.get_json()["entry"] if e["search"]["mode"] == "outcome"]
        (warning,) = outcomes[0]["issue"]
        assert warning["severity"] == "warning" and warning["expression"] == [name]
        assert "not supported" in warning["diagnostics"] and "ignored" in warning["diagnostics"]
    unknown = _get(client, "Bundle", [("nonsense", "1")], Prefer="handling=strict")
    assert unknown.status_code == 400
    assert unknown.get_json()["issue"][0]["expression"] == ["nonsense"]


def test_chains_and_has_take_id_and_last_updated(client):
    # R4 search.html: _id and _lastUpdated are search parameters of every resource, so a chain or a
    # _has can end with them (Task?focus:ServiceRequest._lastUpdated=gt... : the orders whose request
    # changed). Both answered 400 "'_id' is not a search parameter of Patient".
    patient = _create(client, {"resourceType": "Patient", "name": [{"family": "Durand"}]})["id"]
    other = _create(client, {"resourceType": "Patient", "name": [{"family": "Martin"}]})["id"]
    about = _create(client, _observation_about(f"Patient/{patient}"))["id"]
    _create(client, _observation_about(f"Patient/{other}"))

    assert _found(client, "Observation", [("subject:Patient._id", patient)]) == {about}
    assert _found(client, "Observation", [("subject._id", f"{patient},nobody")]) == {about}
    assert _found(client, "Observation", [("patient._lastUpdated", "gt2000-01-01")]) == _found(
        client, "Observation", []
    )
    assert _found(client, "Observation", [("subject:Patient._lastUpdated", "lt2000-01-01")]) == set()
    assert _found(client, "Patient", [("_has:Observation:subject:_id", about)]) == {patient}
    assert _found(client, "Patient", [("_has:Observation:subject:_lastUpdated", "gt2000")]) == {
        patient,
        other,
    }
    for name in ("subject:Patient._id:not", "subject:Patient._lastUpdated:exact"):
        assert _get(client, "Observation", [(name, patient)]).status_code == 400, name


def test_an_empty_id_is_refused_like_any_parameter_without_a_value(client):
    # name= (no value) is 400 naming the parameter; _id= matched nothing, silently (an empty list of ids).
    _create(client, {"resourceType": "Patient", "name": [{"family": "Durand"}]})
    for params in ([("_id", "")], [("_id", ",")], [("_id:not", "")], [("name", "")]):
        response = _get(client, "Patient", params)
        assert response.status_code == 400, params
        assert response.get_json()["issue"][0]["expression"] == [params[0][0].partition(":")[0]]


def test_date_ap_means_within_a_tenth_of_the_gap_between_now_and_the_date(client):
    # R4 search.html, ap: "the recommended value for the approximation is ... for a date, 10% of the
    # gap between now and the date". ap matched only what overlapped the day searched, as eq does.
    # 2016-01-01 is about ten years back: about a year either side.
    names = {}
    for when in ("2016-01-01", "2016-07-01", "2015-06-01", "2019-06-01", "2012-01-01"):
        names[_create(client, dict(_observation_about("Patient/p1"), effectiveDateTime=when))["id"]] = when

    def found(value: str) -> set[str]:
        return {names[i] for i in _found(client, "Observation", [("date", value)])}

    assert found("ap2016-01-01") == {"2016-01-01", "2016-07-01", "2015-06-01"}
    assert found("eq2016-01-01") == {"2016-01-01"}
    assert found("ap2016-01-01,ap2012") == {"2016-01-01", "2016-07-01", "2015-06-01", "2012-01-01"}


def test_a_quantity_is_found_by_its_unit_code_or_its_unit_as_written(client):
    # R4 search.html, quantity: value-quantity=5.4||mg matches "where the unit - either the code (code)
    # or the stated human unit (unit) - are mg". Only the code was indexed when there was one.
    observation = dict(
        _observation_about("Patient/p1"),
        valueQuantity={"value": 5.4, "unit": "µg/L", "system": "http://unitsofmeasure.org", "code": "ug/L"},
    )
    found = _create(client, observation)["id"]

    assert _found(client, "Observation", [("value-quantity", "5.4||µg/L")]) == {found}
    assert _found(client, "Observation", [("value-quantity", "5.4||ug/L")]) == {found}
    assert _found(client, "Observation", [("value-quantity", "5.4|http://unitsofmeasure.org|ug/L")]) == {
        found
    }
    # The unit as written is no code of the system.
    assert _found(client, "Observation", [("value-quantity", "5.4|http://unitsofmeasure.org|µg/L")]) == set()
    assert _found(client, "Observation", [("value-quantity", "ne5.4||µg/L")]) == set()


def test_missing_applies_to_composite_parameters(client):
    # R4 search.html, :missing is defined for every parameter type; on a composite it answered 400
    # "modifier :missing is not supported". A resource has a composite value when one node has all
    # its components (here a code and a value quantity).
    with_value = dict(
        _observation_about("Patient/p1"),
        code={"coding": [{"system": "http://loinc.org", "code": "2276-4"}]},
        valueQuantity={"value": 850, "code": "ug/L", "system": "http://unitsofmeasure.org"},
    )
    valued = _create(client, with_value)["id"]
    plain = _create(client, _observation_about("Patient/p1"))["id"]

    assert _found(client, "Observation", [("code-value-quantity:missing", "false")]) == {valued}
    assert _found(client, "Observation", [("code-value-quantity:missing", "true")]) == {plain}
    assert _get(client, "Observation", [("code-value-quantity:exact", "x$1")]).status_code == 400


def test_a_profile_claimed_with_a_version_is_found_by_its_url(client):
    # meta.profile is a canonical, which may carry |version; R4 search.html (canonical references):
    # a search by the URL alone matches every version, with |version only that one. _profile=<url>
    # missed a resource claiming <url>|2.0, and so did _profile:below.
    lab = "https://hospital.example.org/fhir/StructureDefinition/lab-result"
    versioned = _create(client, dict(_observation_about("Patient/p1"), meta={"profile": [f"{lab}|2.0"]}))[
        "id"
    ]
    plain = _create(client, dict(_observation_about("Patient/p1"), meta={"profile": [lab]}))["id"]

    assert _found(client, "Observation", [("_profile", lab)]) == {versioned, plain}
    assert _found(client, "Observation", [("_profile", f"{lab}|2.0")]) == {versioned}
    assert _found(client, "Observation", [("_profile", f"{lab}|3.0")]) == set()
    assert _found(client, "Observation", [("_profile:below", "https://hospital.example.org/fhir")]) == {
        versioned,
        plain,
    }
