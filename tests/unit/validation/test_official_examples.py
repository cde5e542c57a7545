"""The official FHIR R4 examples of the types this project stores validate against the base definitions.

The examples come unchanged from the HL7 package hl7.fhir.r4.examples 4.0.1 (CC0) through
scripts/fetch_r4_examples.py, which records their provenance in tests/data/r4-examples/SOURCE.json.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from adapter.fhirio.jsonio import parse_json
from adapter.validation.registry import ProfileRegistry
from adapter.validation.validator import Validator

EXAMPLES = Path(__file__).resolve().parents[2] / "data" / "r4-examples"
FILES = sorted(p for p in EXAMPLES.glob("*.json") if p.name != "SOURCE.json")

# Official examples that are themselves wrong, and the error the validator must report for each
# (the HL7 validator reports the same: these are errata of the published examples, not ours).
KNOWN_ERRATA = {
    # Observation.performer does not allow Encounter in R4.
    "Observation-clinical-gender.json": "Observation.performer[0]",
}


@pytest.fixture(scope="module")
def validator() -> Validator:
    return Validator(ProfileRegistry())


def test_the_examples_are_there_with_their_provenance() -> None:
    source = json.loads((EXAMPLES / "SOURCE.json").read_text(encoding="utf-8"))
    assert source["package"] == "hl7.fhir.r4.examples" and source["version"] == "4.0.1"
    assert source["licence"] == "CC0-1.0"
    assert source["files"] == len(FILES) > 150


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_official_example_validates_without_errors(validator: Validator, path: Path) -> None:
    issues = validator.validate(parse_json(path.read_bytes()))
    errors = [i for i in issues if i.severity in ("error", "fatal")]
    if path.name in KNOWN_ERRATA:
        assert any(KNOWN_ERRATA[path.name] in e for i in errors for e in i.expression), errors
        return
    assert errors == [], [f"{i.expression}: {i.diagnostics}" for i in errors]
