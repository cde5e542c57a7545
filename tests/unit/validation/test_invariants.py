"""Invariants: ele-1 natively, the DomainResource dom-* rules, datatype and resource constraints."""

from __future__ import annotations

from adapter.validation.dates import compare_dates
from adapter.validation.fhirpath_support import compile_path
from adapter.validation.invariants import native_check
from adapter.validation.registry import ProfileRegistry
from adapter.validation.validator import Validator

from .helpers import EX, code_system, element, errors, observation, patient, profile, value_set, where


def _keys(issues: list) -> list[str]:
    return [i.diagnostics.split("constraint ")[1].split(" ")[0] for i in issues if i.code == "invariant"]


def test_ele_1_every_element_needs_a_value_or_children(core_validator: Validator) -> None:
    issues = errors(core_validator.validate(patient(name=[{}], maritalStatus={"id": "m"})))
    assert where(issues) == ["Patient.name[0]", "Patient.maritalStatus"]
    assert _keys(issues) == ["ele-1", "ele-1"]


def test_dom_2_4_5_on_contained_resources(core_validator: Validator) -> None:
    inner = [{"resourceType": "Location", "id": "l", "name": "Ward"}]
    nested = {"resourceType": "Organization", "id": "o", "name": "Acme", "contained": inner}
    nested["endpoint"] = [{"reference": "#l"}]  # keeps the inner one referenced (dom-3)
    meta = {
        "resourceType": "Organization",
        "id": "o",
        "name": "Acme",
        "meta": {"versionId": "1", "security": [{"code": "R"}]},
    }
    for contained, expected in ((nested, "dom-2"), (meta, "dom-4"), (meta, "dom-5")):
        resource = patient(contained=[contained], managingOrganization={"reference": "#o"})
        assert expected in _keys(errors(core_validator.validate(resource)))


def test_dom_3_contained_resources_must_be_referenced(core_validator: Validator) -> None:
    contained = [{"resourceType": "Organization", "id": "o", "name": "Acme"}]
    unreferenced = patient(contained=contained)
    assert _keys(errors(core_validator.validate(unreferenced))) == ["dom-3"]
    referenced = patient(contained=contained, managingOrganization={"reference": "#o"})
    assert errors(core_validator.validate(referenced)) == []
    back = [
        {
            "resourceType": "Provenance",
            "id": "p",
            "target": [{"reference": "#"}],
            "recorded": "2024-01-01T00:00:00Z",
            "agent": [{"who": {"display": "clerk"}}],
        }
    ]
    assert errors(core_validator.validate(patient(contained=back))) == []


def test_dom_6_missing_narrative_is_a_warning(core_validator: Validator) -> None:
    issues = core_validator.validate({"resourceType": "Patient"})
    assert [(i.severity, i.code) for i in issues] == [("warning", "invariant")]
    assert _keys(issues) == ["dom-6"]


def test_ext_1_value_or_extensions_not_both(core_validator: Validator) -> None:
    both = {
        "url": "http://example.org/x",
        "valueString": "a",
        "extension": [{"url": "y", "valueString": "b"}],
    }
    neither = {"url": "http://example.org/z"}
    issues = errors(core_validator.validate(patient(extension=[both, neither])))
    assert _keys(issues) == ["ext-1", "ext-1"]
    assert where(issues) == ["Patient.extension[0]", "Patient.extension[1]"]


def test_ref_1_local_references_need_a_contained_target(core_validator: Validator) -> None:
    resource = patient(managingOrganization={"reference": "#missing"})
    assert _keys(errors(core_validator.validate(resource))) == ["ref-1"]


def test_per_1_period_start_before_end(core_validator: Validator) -> None:
    late = observation(effectivePeriod={"start": "2021-01-02", "end": "2021-01-01"})
    assert where(errors(core_validator.validate(late))) == ["Observation.effectivePeriod"]
    fine = observation(effectivePeriod={"start": "2021-01-01T10:00:00+01:00", "end": "2021-01-01"})
    assert errors(core_validator.validate(fine)) == []


def test_compare_dates_respects_precision_and_time_zones() -> None:
    assert compare_dates("2021-01-01", "2021-01-02") == -1
    assert compare_dates("2021-01-01T10:00:00+02:00", "2021-01-01T09:00:00Z") == -1
    assert compare_dates("2021", "2021-05") is None
    assert compare_dates("2021-01-01", "2021-01-01") == 0


def test_obs_6_and_obs_7_through_fhirpath(core_validator: Validator) -> None:
    absent = observation(valueString="x", dataAbsentReason={"text": "lost"})
    assert _keys(errors(core_validator.validate(absent))) == ["obs-6"]
    same_code = observation(
        valueString="x",
        component=[
            {"code": {"coding": [{"system": "http://loinc.org", "code": "718-7"}]}, "valueString": "y"}
        ],
    )
    assert _keys(errors(core_validator.validate(same_code))) == ["obs-7"]


def test_pat_1_contact_details(core_validator: Validator) -> None:
    resource = patient(contact=[{"gender": "female"}])
    issues = errors(core_validator.validate(resource))
    assert _keys(issues) == ["pat-1"]
    assert where(issues) == ["Patient.contact[0]"]


def test_task_inv_1_last_modified_after_authored_on(core_validator: Validator) -> None:
    task = {
        "resourceType": "Task",
        "text": {"status": "generated", "div": '<div xmlns="http://www.w3.org/1999/xhtml">t</div>'},
        "status": "requested",
        "intent": "order",
        "authoredOn": "2024-03-02T09:30:00+01:00",
        "lastModified": "2024-03-01T09:30:00+01:00",
    }
    assert _keys(errors(core_validator.validate(task))) == ["inv-1"]
    task["lastModified"] = "2024-03-03T09:30:00+01:00"
    assert errors(core_validator.validate(task)) == []


def test_bundle_invariants(core_validator: Validator) -> None:
    bundle = {"resourceType": "Bundle", "type": "collection", "total": 1}
    assert _keys(errors(core_validator.validate(bundle))) == ["bdl-1"]


def test_profile_constraints_warning_severity_and_unevaluable_expressions() -> None:
    registry = ProfileRegistry()
    rules = [
        {"key": "tst-w", "severity": "warning", "human": "should have a name", "expression": "name.exists()"},
        {
            "key": "tst-e",
            "severity": "error",
            "human": "born after 1900",
            "expression": "birthDate > @1900-01-01",
        },
        {"key": "tst-x", "severity": "error", "human": "broken", "expression": "name.noSuchFunction()"},
        {"key": "tst-p", "severity": "error", "human": "unparsable", "expression": "name.where("},
    ]
    registry.add(profile("InvariantPatient", "Patient", [element("Patient", constraint=rules)]))
    validator = Validator(registry)
    issues = validator.validate(patient(birthDate="1890-01-01"), [f"{registry.added_structures()[0]}"])
    by_key = {
        i.diagnostics.split("constraint ")[1].split(" ")[0]: i
        for i in issues
        if "constraint" in i.diagnostics
    }
    assert by_key["tst-w"].severity == "warning"
    assert by_key["tst-e"].severity == "error"
    assert by_key["tst-x"].severity == "information" and by_key["tst-x"].code == "processing"
    assert by_key["tst-p"].severity == "information"


def test_expressions_are_compiled_once_and_natives_match_exact_text() -> None:
    assert compile_path("name.exists()") is compile_path("name.exists()")
    assert native_check("per-1", "start.hasValue().not() or end.hasValue().not() or (start <= end)")
    assert native_check("per-1", "start.exists()") is None


def test_fhir_functions_missing_from_fhirpathpy_are_provided() -> None:
    registry = ProfileRegistry()
    registry.add(code_system("colours", [{"code": "red"}, {"code": "blue"}]))
    registry.add(value_set("colours", [{"system": EX + "CodeSystem/colours"}]))
    registry.add(profile("NamedOrganization", "Organization", [element("Organization.name", min=1)]))
    rules = [
        {
            "key": "tst-m",
            "severity": "error",
            "human": "colour",
            "expression": f"code.memberOf('{EX}ValueSet/colours')",
        },
        {
            "key": "tst-r",
            "severity": "error",
            "human": "resolvable",
            "expression": "performer.resolve().exists()",
        },
        {
            "key": "tst-c",
            "severity": "error",
            "human": "named",
            "expression": f"contained.all(conformsTo('{EX}StructureDefinition/NamedOrganization'))",
        },
    ]
    registry.add(profile("Hooked", "Observation", [element("Observation", constraint=rules)]))
    validator = Validator(registry)
    url = [EX + "StructureDefinition/Hooked"]
    organization = {"resourceType": "Organization", "id": "o", "name": "Lab"}
    good = observation(
        code={"coding": [{"system": EX + "CodeSystem/colours", "code": "red"}]},
        contained=[organization],
        performer=[{"reference": "#o"}],
    )
    assert validator.validate(good, url) == []
    bad = observation(
        code={"coding": [{"system": EX + "CodeSystem/colours", "code": "green"}]},
        contained=[{"resourceType": "Organization", "id": "o", "identifier": [{"value": "1"}]}],
        performer=[{"reference": "#o"}, {"reference": "#missing"}],
    )
    keys = _keys(errors(validator.validate(bad, url)))
    assert {"tst-m", "tst-c"} <= set(keys)
