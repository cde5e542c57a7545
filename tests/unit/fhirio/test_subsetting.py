"""_summary and _elements applied to resources, by the base definitions of their types."""

from __future__ import annotations

import pytest

from adapter.errors import InvalidRequestError, Issue
from adapter.fhirio.subsetting import SUBSETTED, is_subsetted, parse_subset, read_subset

PATIENT = {
    "resourceType": "Patient",
    "id": "p1",
    "meta": {"versionId": "2", "tag": [{"system": "urn:example:tags", "code": "pilot"}]},
    "text": {"status": "generated", "div": '<div xmlns="http://www.w3.org/1999/xhtml">Jeanne Dupont</div>'},
    "identifier": [{"system": "urn:example:ipp", "value": "123"}],
    "name": [{"family": "Dupont", "given": ["Jeanne"]}],
    "gender": "female",
    "birthDate": "1960-03-02",
    "_birthDate": {
        "extension": [{"url": "http://example.org/fhir/StructureDefinition/x", "valueString": "y"}]
    },
    "deceasedBoolean": False,
    "maritalStatus": {"text": "married"},
    "contact": [{"name": {"family": "Martin"}}],
    "link": [{"other": {"reference": "Patient/p0"}, "type": "seealso"}],
}

TASK = {
    "resourceType": "Task",
    "id": "t1",
    "status": "requested",
    "intent": "order",
    "businessStatus": {"text": "order received"},
    "description": "CAR-T order",
    "for": {"reference": "Patient/p1"},
    "input": [{"type": {"text": "note"}, "valueString": "fragile"}],
}


def _subset(res_type: str, summary: str | None = None, elements: list[str] | None = None, **kw):  # type: ignore[no-untyped-def]
    subset = parse_subset(res_type, summary, elements or [], **kw)
    assert subset is not None
    return subset


def test_summary_true_keeps_the_summary_elements_and_tags_the_result() -> None:
    out = _subset("Patient", "true").apply(PATIENT)
    assert set(out) == {
        "resourceType",
        "id",
        "meta",
        "identifier",
        "name",
        "gender",
        "birthDate",
        "_birthDate",  # the extension of a kept primitive goes with it
        "deceasedBoolean",
        "link",
    }
    assert out["meta"]["tag"] == [{"system": "urn:example:tags", "code": "pilot"}, SUBSETTED]
    assert out["meta"]["versionId"] == "2"
    assert "tag" in PATIENT["meta"] and len(PATIENT["meta"]["tag"]) == 1  # the input is not changed


def test_summary_true_filters_inside_backbone_elements() -> None:
    # Observation.component is a summary element; within it code and value[x] are, interpretation is not.
    observation = {
        "resourceType": "Observation",
        "id": "o1",
        "status": "final",
        "code": {"text": "CRS grade"},
        "note": [{"text": "not a summary element"}],
        "component": [
            {
                "code": {"text": "fever"},
                "valueQuantity": {"value": 39.2, "unit": "Cel"},
                "interpretation": [{"text": "high"}],
            }
        ],
    }
    out = _subset("Observation", "true").apply(observation)
    assert "note" not in out
    assert out["component"] == [{"code": {"text": "fever"}, "valueQuantity": {"value": 39.2, "unit": "Cel"}}]
    assert observation["component"][0]["interpretation"] == [{"text": "high"}]
    assert "input" not in _subset("Task", "true").apply(TASK)
    # Only a backbone element loses something: still a subset, and tagged as one.
    del observation["note"]
    trimmed = _subset("Observation", "true").apply(observation)
    assert "interpretation" not in trimmed["component"][0] and is_subsetted(trimmed)


def test_summary_text_keeps_text_id_meta_and_the_mandatory_elements() -> None:
    out = _subset("Task", "text").apply(TASK | {"text": PATIENT["text"]})
    assert set(out) == {"resourceType", "id", "meta", "text", "status", "intent"}
    assert is_subsetted(out)


def test_summary_data_removes_only_the_narrative() -> None:
    out = _subset("Patient", "data").apply(PATIENT)
    assert "text" not in out
    assert {k: v for k, v in out.items() if k != "meta"} == {
        k: v for k, v in PATIENT.items() if k not in ("text", "meta")
    }


def test_summary_false_or_nothing_asked_is_no_subset() -> None:
    assert parse_subset("Patient", "false", []) is None
    assert parse_subset("Patient", None, []) is None


def test_a_resource_with_nothing_to_leave_out_is_returned_whole_and_untagged() -> None:
    bare = {"resourceType": "Task", "id": "t2", "status": "draft", "intent": "order"}
    assert _subset("Task", "data").apply(bare) is bare
    assert not is_subsetted(_subset("Task", elements=["status"]).apply(bare))


def test_elements_keeps_the_listed_mandatory_and_modifier_elements() -> None:
    out = _subset("Patient", elements=["gender,birthDate"]).apply(PATIENT)
    # deceased[x] and link are modifiers: returned whether asked or not.
    assert set(out) == {
        "resourceType",
        "id",
        "meta",
        "gender",
        "birthDate",
        "_birthDate",
        "deceasedBoolean",
        "link",
    }
    task = _subset("Task", elements=["businessStatus"]).apply(TASK)
    assert set(task) == {"resourceType", "id", "meta", "status", "intent", "businessStatus"}


def test_elements_names_a_choice_by_its_stem_or_its_json_name() -> None:
    by_stem = _subset("Patient", elements=["multipleBirth"]).elements
    assert by_stem is not None and {"multipleBirthBoolean", "multipleBirthInteger"} <= by_stem
    assert _subset("Patient", elements=["multipleBirthInteger"]).elements == {"multipleBirthInteger"}


def test_typed_elements_apply_to_that_type_everywhere_and_bare_ones_to_matches_only() -> None:
    subset = _subset("Task", elements=["status,Patient.gender"])
    assert set(subset.apply(PATIENT, match=False)) == {
        "resourceType",
        "id",
        "meta",
        "gender",
        "deceasedBoolean",
        "link",
    }
    assert subset.apply(TASK, match=True).keys() == {"resourceType", "id", "meta", "status", "intent"}
    organization = {"resourceType": "Organization", "id": "o1", "name": "Kite"}
    assert subset.apply(organization, match=False) is organization


def test_an_unknown_element_is_a_warning_or_under_strict_handling_an_error() -> None:
    warnings: list[Issue] = []
    assert parse_subset("Patient", None, ["shoeSize"], warnings=warnings) is None
    assert "shoeSize" in warnings[0].diagnostics and warnings[0].severity == "warning"
    with pytest.raises(InvalidRequestError) as caught:
        parse_subset("Patient", None, ["gender,shoeSize"], strict=True)
    assert caught.value.issues[0].expression == ("_elements",)
    with pytest.raises(InvalidRequestError):
        parse_subset("Patient", None, ["Patient.name.family"], strict=True)


def test_summary_values_outside_the_specification_are_refused() -> None:
    with pytest.raises(InvalidRequestError, match="_summary"):
        parse_subset("Patient", "yes", [])
    with pytest.raises(InvalidRequestError, match="searches"):
        read_subset("Patient", [("_summary", "count")])
    with pytest.raises(InvalidRequestError, match="once"):
        read_subset("Patient", [("_summary", "true"), ("_summary", "data")])
    assert read_subset("Patient", [("_format", "json")]) is None


def test_stored_text_is_left_alone_when_nothing_applies() -> None:
    subset = _subset("Task", elements=["status"])
    text = '{"resourceType":"Organization","id":"o1","name":"Kite"}'
    assert subset.apply_text("Organization", text, match=False) is text
    assert '"SUBSETTED"' in subset.apply_text(
        "Task", '{"resourceType":"Task","id":"t","status":"draft","intent":"order","description":"x"}'
    )
