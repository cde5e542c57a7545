"""Work done once per definition, not per resource (discriminator paths, base chains), and kept up to date."""

from __future__ import annotations

import pytest

from adapter.validation import matching, slicing
from adapter.validation.registry import ProfileRegistry
from adapter.validation.validator import Validator

from .helpers import BASE, EX, element, errors, patient, profile

SD = EX + "StructureDefinition/"
INS = "urn:oid:1.2.250.1.213.1.4.8"


def _sliced_patient() -> dict:
    return profile(
        "Sliced",
        "Patient",
        [
            element(
                "Patient.identifier",
                slicing={"discriminator": [{"type": "value", "path": "system"}], "rules": "closed"},
            ),
            element("Patient.identifier:INS", min=1, max="1"),
            element("Patient.identifier:INS.system", min=1, fixedUri=INS),
            element("Patient.extension", slicing={"discriminator": [{"type": "value", "path": "url"}]}),
        ],
    )


def test_discriminator_paths_are_parsed_once_per_slicing(monkeypatch: pytest.MonkeyPatch) -> None:
    registry = ProfileRegistry()
    registry.add(_sliced_patient())
    validator = Validator(registry)
    good = patient(identifier=[{"system": INS, "value": "1"}])
    bad = patient(identifier=[{"system": "urn:other", "value": "1"}])
    assert errors(validator.validate(good, [SD + "Sliced"])) == []

    def parsing(*args: object) -> None:
        raise AssertionError("a discriminator path was parsed again while validating")

    for module in (matching, slicing):
        monkeypatch.setattr(module, "parse_segment", parsing)
    monkeypatch.setattr(slicing, "compile_steps", parsing)
    monkeypatch.setattr(slicing, "split_path", parsing)
    assert errors(validator.validate(good, [SD + "Sliced"])) == []
    assert len(errors(validator.validate(bad, [SD + "Sliced"]))) == 2  # closed, and INS missing


def test_derives_from_is_cached(monkeypatch: pytest.MonkeyPatch) -> None:
    registry = ProfileRegistry()
    registry.add(_sliced_patient())
    assert registry.derives_from(SD + "Sliced", BASE + "Patient")
    assert not registry.derives_from(BASE + "Patient", SD + "Sliced")

    def lookup(url: str) -> None:
        raise AssertionError(f"the base chain of {url} was walked again")

    monkeypatch.setattr(registry, "structure", lookup)
    assert registry.derives_from(SD + "Sliced", BASE + "Patient")
    assert not registry.derives_from(BASE + "Patient", SD + "Sliced")


def test_derives_from_follows_definitions_added_later() -> None:
    registry = ProfileRegistry()
    registry.add(_sliced_patient())
    child = SD + "Child"
    assert not registry.derives_from(child, SD + "Sliced")  # not known yet
    registry.add(profile("Child", "Patient", [], base=SD + "Sliced"))
    assert registry.derives_from(child, SD + "Sliced")
    assert registry.derives_from(child, BASE + "Patient")
    # Replacing a definition with another base changes the answer too.
    registry.add(profile("Child", "Patient", []))
    assert not registry.derives_from(child, SD + "Sliced")


def test_only_the_most_specific_profile_is_walked() -> None:
    registry = ProfileRegistry()
    registry.add(_sliced_patient())
    registry.add(profile("Child", "Patient", [], base=SD + "Sliced"))
    validator = Validator(registry)
    resource = patient(identifier=[{"system": "urn:other", "value": "1"}])
    resource["meta"] = {"profile": [SD + "Sliced", SD + "Child"]}
    # Sliced's issues are reported once (through Child), not once per profile.
    messages = [i.diagnostics for i in errors(validator.validate(resource))]
    assert len(messages) == 2
    assert validator._most_specific([BASE + "Patient", SD + "Sliced", SD + "Child"]) == [SD + "Child"]
