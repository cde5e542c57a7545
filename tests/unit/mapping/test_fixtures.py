"""Every fixture of mappings/ (input -> expected result) runs as a test, as `mapping test` does."""

from __future__ import annotations

import pytest

from adapter.fhirio.jsonio import dump_json, parse_json
from adapter.mapping import MappingRegistry
from adapter.mapping.fixtures import discover, run
from adapter.validation.gate import validator
from tests.unit.mapping.conftest import MAPPINGS

FIXTURES = discover(MAPPINGS)


def test_every_shipped_mapping_has_fixtures(registry: MappingRegistry) -> None:
    assert {f.mapping for f in FIXTURES} == set(registry.names())


@pytest.mark.parametrize("fixture", FIXTURES, ids=lambda f: f"{f.mapping}/{f.input_path.name}")
def test_fixture_maps_to_its_expected_result(fixture, registry: MappingRegistry) -> None:
    outcome = run(fixture, registry)
    assert outcome.passed, "\n" + outcome.diff


@pytest.mark.parametrize("fixture", FIXTURES, ids=lambda f: f"{f.mapping}/{f.input_path.name}")
def test_expected_bundles_are_valid_r4(fixture) -> None:
    expected = parse_json(fixture.expected_path.read_bytes(), max_depth=128)
    bundle = expected.get("bundle")
    if bundle is None:
        return  # a refused source has no Bundle
    assert parse_json(dump_json(bundle), max_depth=128) == bundle  # survives a JSON round trip unchanged
    errors = [i for i in validator().validate(bundle) if i.severity in ("error", "fatal")]
    assert errors == []


def test_fixtures_include_malformed_and_refused_inputs() -> None:
    results = [parse_json(f.expected_path.read_bytes(), max_depth=128) for f in FIXTURES]
    assert sum(1 for r in results if r.get("rejected")) >= 8
    assert sum(1 for r in results if "refused" in r) >= 3
