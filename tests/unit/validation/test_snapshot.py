"""Snapshot generation from differentials: merging, slices, datatype children, choices, errors."""

from __future__ import annotations

import pytest

from adapter.validation.errors import ProfileLoadError
from adapter.validation.registry import ProfileRegistry
from adapter.validation.validator import Validator

from .helpers import EX, element, errors, extension_definition, observation, patient, profile, where

SD = EX + "StructureDefinition/"
INS = "urn:oid:1.2.250.1.213.1.4.8"


def _ins_patient() -> dict:
    return profile(
        "InsPatient",
        "Patient",
        [
            element(
                "Patient.extension",
                slicing={"discriminator": [{"type": "value", "path": "url"}], "rules": "open"},
            ),
            element(
                "Patient.extension:reliability",
                min=1,
                max="1",
                type=[{"code": "Extension", "profile": [SD + "reliability"]}],
            ),
            element(
                "Patient.identifier",
                min=1,
                slicing={"discriminator": [{"type": "pattern", "path": "system"}], "rules": "open"},
            ),
            element("Patient.identifier:INS", max="1"),
            element("Patient.identifier:INS.system", min=1, patternUri=INS),
            element("Patient.identifier:INS.value", min=1, maxLength=15),
            element("Patient.deceased[x]", type=[{"code": "boolean"}]),
        ],
    )


def _snapshot(registry: ProfileRegistry, url: str) -> dict[str, dict]:
    sd = registry.structure(url)
    assert sd is not None
    return {e["id"]: e for e in sd["snapshot"]["element"]}


def test_generated_snapshot_has_slices_datatype_children_and_restricted_choices() -> None:
    registry = ProfileRegistry()
    registry.add(extension_definition("reliability", "code"))
    registry.add(_ins_patient())
    elements = _snapshot(registry, SD + "InsPatient")
    assert elements["Patient.identifier"]["min"] == 1
    assert elements["Patient.identifier"]["slicing"]["discriminator"] == [
        {"type": "pattern", "path": "system"}
    ]
    ins = elements["Patient.identifier:INS"]
    assert (ins["sliceName"], ins["min"], ins["max"], ins["path"]) == ("INS", 0, "1", "Patient.identifier")
    assert elements["Patient.identifier:INS.system"]["patternUri"] == INS
    assert elements["Patient.identifier:INS.system"]["path"] == "Patient.identifier.system"
    assert elements["Patient.identifier:INS.value"]["maxLength"] == 15
    assert "Patient.identifier:INS.assigner" in elements  # every Identifier child is written out
    assert [t["code"] for t in elements["Patient.deceased[x]"]["type"]] == ["boolean"]
    assert elements["Patient.extension:reliability"]["type"][0]["profile"] == [SD + "reliability"]
    ids = list(elements)
    assert ids.index("Patient.identifier") < ids.index("Patient.identifier:INS") < ids.index("Patient.active")
    # base definitions are copied, never changed
    assert (
        "slicing"
        not in _snapshot(ProfileRegistry(), "http://hl7.org/fhir/StructureDefinition/Patient")[
            "Patient.identifier"
        ]
    )


def test_extension_definitions_get_their_url_fixed() -> None:
    registry = ProfileRegistry()
    registry.add(extension_definition("reliability", "code"))
    elements = _snapshot(registry, SD + "reliability")
    assert elements["Extension.url"]["fixedUri"] == SD + "reliability"
    assert [t["code"] for t in elements["Extension.value[x]"]["type"]] == ["code"]


def test_extension_slices_get_url_slicing_by_default() -> None:
    registry = ProfileRegistry()
    registry.add(extension_definition("reliability", "code"))
    registry.add(
        profile(
            "NoSlicing",
            "Patient",
            [
                element(
                    "Patient.extension:reliability",
                    min=1,
                    type=[{"code": "Extension", "profile": [SD + "reliability"]}],
                )
            ],
        )
    )
    elements = _snapshot(registry, SD + "NoSlicing")
    assert elements["Patient.extension"]["slicing"]["discriminator"] == [{"type": "value", "path": "url"}]


def test_validation_with_a_generated_snapshot() -> None:
    registry = ProfileRegistry()
    registry.add(_ins_patient())
    registry.add(extension_definition("reliability", "code"))
    validator = Validator(registry)
    reliability = {"url": SD + "reliability", "valueCode": "VALI"}
    good = patient(
        extension=[reliability],
        identifier=[{"system": INS, "value": "275039912345697"}],
        deceasedBoolean=False,
    )
    assert validator.validate(good, [SD + "InsPatient"]) == []
    bad = patient(identifier=[{"system": INS, "value": "2750399123456971"}], deceasedDateTime="2020-01-01")
    issues = errors(validator.validate(bad, [SD + "InsPatient"]))
    assert set(where(issues)) == {
        "Patient.extension",
        "Patient.identifier[0].value",
        "Patient.deceasedDateTime",
    }


def test_renamed_choice_paths_and_children_of_a_choice() -> None:
    registry = ProfileRegistry()
    registry.add(
        profile(
            "QuantityObservation",
            "Observation",
            [
                {"id": "Observation.valueQuantity", "path": "Observation.valueQuantity", "min": 1},
                {"id": "Observation.valueQuantity.unit", "path": "Observation.valueQuantity.unit", "min": 1},
            ],
        )
    )
    elements = _snapshot(registry, SD + "QuantityObservation")
    value = elements["Observation.value[x]"]
    assert ([t["code"] for t in value["type"]], value["min"]) == (["Quantity"], 1)
    assert elements["Observation.value[x].unit"]["min"] == 1
    validator = Validator(registry)
    issues = errors(validator.validate(observation(valueQuantity={"value": 1}), [SD + "QuantityObservation"]))
    assert where(issues) == ["Observation.valueQuantity.unit"]


def test_content_reference_children_can_be_constrained() -> None:
    registry = ProfileRegistry()
    registry.add(
        profile(
            "ShortLinks",
            "Questionnaire",
            [element("Questionnaire.item.item.linkId", maxLength=3)],
        )
    )
    elements = _snapshot(registry, SD + "ShortLinks")
    assert elements["Questionnaire.item.item.linkId"]["maxLength"] == 3
    questionnaire = {
        "resourceType": "Questionnaire",
        "status": "active",
        "text": {"status": "generated", "div": '<div xmlns="http://www.w3.org/1999/xhtml">q</div>'},
        "item": [{"linkId": "group-1", "type": "group", "item": [{"linkId": "toolong", "type": "string"}]}],
    }
    issues = errors(Validator(registry).validate(questionnaire, [SD + "ShortLinks"]))
    assert where(issues) == ["Questionnaire.item[0].item[0].linkId"]


def test_profile_on_a_differential_profile_added_first() -> None:
    registry = ProfileRegistry()
    child = profile("ChildPatient", "Patient", [element("Patient.gender", min=1)], base=SD + "InsPatient")
    registry.add(child)  # its base is not known yet: generation waits
    registry.add(extension_definition("reliability", "code"))
    registry.add(_ins_patient())
    elements = _snapshot(registry, SD + "ChildPatient")
    assert elements["Patient.gender"]["min"] == 1
    assert elements["Patient.identifier:INS.system"]["patternUri"] == INS
    assert registry.derives_from(SD + "ChildPatient", "http://hl7.org/fhir/StructureDefinition/Patient")


def test_missing_base_and_bad_differentials_are_load_errors() -> None:
    registry = ProfileRegistry()
    registry.add(profile("Orphan", "Patient", [], base=SD + "Nowhere"))
    with pytest.raises(ProfileLoadError) as caught:
        registry.complete()
    assert caught.value.code == "not-found" and "Nowhere" in caught.value.message
    for elements in (
        [element("Patient.colour", min=1)],
        [element("Patient.name", max="*"), element("Patient.gender", max="2")],
        [element("Patient.active", min=0), element("Patient.identifier:x.system", min=1)],
    ):
        with pytest.raises(ProfileLoadError):
            ProfileRegistry().add(profile("Bad", "Patient", elements))


def test_a_pending_profile_that_fails_does_not_block_others() -> None:
    registry = ProfileRegistry()
    registry.add(profile("BadChild", "Patient", [element("Patient.colour", min=1)], base=SD + "Parent"))
    registry.add(profile("Parent", "Patient", [element("Patient.gender", min=1)]))
    assert registry.structure(SD + "Parent") is not None
    with pytest.raises(ProfileLoadError, match="colour"):
        registry.complete()


def test_malformed_structure_definitions_are_rejected() -> None:
    registry = ProfileRegistry()
    with pytest.raises(ProfileLoadError):
        registry.add({"resourceType": "StructureDefinition", "name": "NoUrl"})
    with pytest.raises(ProfileLoadError):
        registry.add(
            {"resourceType": "StructureDefinition", "url": "http://x", "type": "Patient", "kind": "resource"}
        )
    assert registry.add({"resourceType": "Patient"}) is False


def test_an_unnamed_extension_element_with_a_profile_becomes_a_slice() -> None:
    registry = ProfileRegistry()
    registry.add(extension_definition("reliability", "code"))
    old_style = element(
        "Patient.extension", min=1, type=[{"code": "Extension", "profile": [SD + "reliability"]}]
    )
    registry.add(profile("OldStyle", "Patient", [old_style]))
    elements = _snapshot(registry, SD + "OldStyle")
    assert elements["Patient.extension:reliability"]["min"] == 1
    assert elements["Patient.extension"]["min"] == 0
    issues = errors(Validator(registry).validate(patient(), [SD + "OldStyle"]))
    assert "slice 'reliability'" in issues[0].diagnostics


def test_definitions_in_a_bundle_are_added() -> None:
    registry = ProfileRegistry()
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"resource": extension_definition("reliability", "code")}, {"resource": patient()}],
    }
    assert registry.add(bundle) is True
    assert registry.structure(SD + "reliability") is not None


@pytest.mark.parametrize(
    "bad",
    [
        {"min": "1"},
        {"max": 2},
        {"max": "many"},
        {"type": [{"code": 5}]},
        {"type": [{"code": "Extension", "profile": "http://x"}]},
        {"slicing": {"discriminator": "url"}},
        {"constraint": [{"expression": "x"}]},
        {"binding": "required"},
    ],
)
def test_malformed_element_definitions_are_load_errors(bad: dict) -> None:
    with pytest.raises(ProfileLoadError, match="element 1"):
        ProfileRegistry().add(profile("Malformed", "Patient", [element("Patient.name") | bad]))
