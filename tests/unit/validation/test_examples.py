"""Realistic resources validate with no errors against the core definitions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from adapter.fhirio.jsonio import parse_json
from adapter.validation.validator import Validator

from .examples import EXAMPLES
from .helpers import errors

SAMPLES = Path(__file__).resolve().parents[2] / "samples"


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_examples_have_no_errors(core_validator: Validator, name: str) -> None:
    issues = core_validator.validate(EXAMPLES[name])
    assert errors(issues) == []
    # Only unknown-code-system notes and terminology warnings are expected on these examples.
    assert all(i.code in ("code-invalid", "not-found") for i in issues), issues


@pytest.mark.parametrize("path", sorted(SAMPLES.glob("*.json")), ids=lambda p: p.stem)
def test_project_samples_have_no_errors(core_validator: Validator, path: Path) -> None:
    assert errors(core_validator.validate(parse_json(path.read_bytes()))) == []


def test_validation_does_not_change_the_resource(core_validator: Validator) -> None:
    before = json.dumps(EXAMPLES["patient"], default=str, sort_keys=True)
    core_validator.validate(EXAMPLES["patient"])
    assert json.dumps(EXAMPLES["patient"], default=str, sort_keys=True) == before
