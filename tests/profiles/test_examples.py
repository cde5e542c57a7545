"""Every example against its profile: valid ones pass, invalid ones are refused exactly where expected."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from adapter.cli import main
from adapter.validation.validator import Validator
from tests.profiles.support import (
    EXAMPLES,
    PACKAGE,
    SD_PREFIX,
    bundle_entry,
    errors,
    example,
    example_id,
    examples,
    expected,
    package_resources,
    read,
    shown,
)

VALID = examples(valid=True)
INVALID = examples(valid=False)


# -- Python API ----------------------------------------------------------------------------------


@pytest.mark.parametrize("entry", VALID, ids=example_id)
def test_valid_example_has_no_errors(validator: Validator, entry: dict) -> None:
    resource = example(entry)
    assert validator.registry.structure(entry["profile"]) is not None
    issues = validator.validate(resource)
    assert errors(issues) == set(), shown(issues)


@pytest.mark.parametrize("entry", INVALID, ids=example_id)
def test_invalid_example_is_refused_where_its_index_says(validator: Validator, entry: dict) -> None:
    issues = validator.validate(example(entry))
    # Exactly the listed violations: an invalid example that also broke something else would not
    # show that the rule it is about works.
    assert errors(issues) == expected(entry), shown(issues)


@pytest.mark.parametrize("entry", [e for e in INVALID if not e.get("exercises")], ids=example_id)
def test_invalid_example_is_refused_because_of_its_profile(validator: Validator, entry: dict) -> None:
    resource = example(entry)
    del resource["meta"]["profile"]
    if not resource["meta"]:
        del resource["meta"]
    issues = validator.validate(resource)
    assert errors(issues) == set(), shown(issues)


@pytest.mark.parametrize("entry", VALID, ids=example_id)
def test_valid_example_parses_as_an_r4b_model(entry: dict) -> None:
    from fhir.resources.R4B import get_fhir_model_class

    resource = example(entry)
    get_fhir_model_class(resource["resourceType"]).model_validate(resource)


def test_profiles_are_checked_even_when_not_claimed(validator: Validator) -> None:
    # An explicit profile (as $validate?profile= or --profile pass it) applies without meta.profile.
    resource = example(next(e for e in INVALID if e["file"].endswith("service-request-intent-plan.json")))
    url = resource.pop("meta")["profile"][0]
    assert ("ServiceRequest.intent", "value") in errors(validator.validate(resource, [url]))


def test_product_expiry_is_accepted_on_a_product_only(validator: Validator) -> None:
    expiry = {"url": f"{SD_PREFIX}product-expiry", "valueDateTime": "2027-01-31T23:59:59+01:00"}
    text = {"status": "generated", "div": '<div xmlns="http://www.w3.org/1999/xhtml"><p>x</p></div>'}
    product = {"resourceType": "BiologicallyDerivedProduct", "text": text, "extension": [expiry]}
    assert errors(validator.validate(product)) == set()
    patient = {"resourceType": "Patient", "text": text, "extension": [expiry]}
    assert errors(validator.validate(patient)) == {("Patient.extension[0]", "extension")}


# -- the pathway transaction ----------------------------------------------------------------------


def test_pathway_transaction_validates_clean(validator: Validator) -> None:
    bundle = read(EXAMPLES / bundle_entry(valid=True)["file"])
    issues = validator.validate(bundle)
    assert errors(issues) == set(), shown(issues)


def test_pathway_transaction_holds_every_profile_and_links_internally() -> None:
    bundle = read(EXAMPLES / bundle_entry(valid=True)["file"])
    claimed = {p for e in bundle["entry"] for p in e["resource"].get("meta", {}).get("profile", [])}
    profiles = {
        r["url"]
        for r in package_resources().values()
        if r["resourceType"] == "StructureDefinition" and r["type"] != "Extension"
    }
    assert claimed == profiles
    full_urls = {e["fullUrl"] for e in bundle["entry"]}
    assert all(u.startswith("urn:uuid:") for u in full_urls)
    references = set(_references(bundle["entry"]))
    assert references <= full_urls, references - full_urls
    used = {x["url"] for e in bundle["entry"] for x in e["resource"].get("extension", [])}
    assert used == {f"{SD_PREFIX}product-expiry", f"{SD_PREFIX}administered-product"}


def test_invalid_pathway_transaction_reports_one_violation_per_profile(validator: Validator) -> None:
    entry = bundle_entry(valid=False)
    issues = validator.validate(read(EXAMPLES / entry["file"]))
    assert errors(issues) == expected(entry), shown(issues)
    broken = {v["profile"] for v in entry["violations"]}
    every = {r["url"] for r in package_resources().values() if r["resourceType"] == "StructureDefinition"}
    assert broken == every


def _references(node: object) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "reference" and isinstance(value, str):
                yield value
            else:
                yield from _references(value)
    elif isinstance(node, list):
        for value in node:
            yield from _references(value)


# -- the command line -----------------------------------------------------------------------------


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch) -> Callable[[Path], Result]:
    """`cart-adapter validate --ig profiles/package FILE` through click's runner.

    The command group configures logging with dictConfig, which closes and drops every root handler,
    among them the one the test session scans for patient data; here it leaves logging as it is.
    """
    monkeypatch.setattr("adapter.cli.configure_logging", lambda *args, **kwargs: None)
    runner = CliRunner()

    def run(path: Path) -> Result:
        return runner.invoke(main, ["validate", "--ig", str(PACKAGE), str(path)])

    return run


@pytest.mark.parametrize("entry", VALID, ids=example_id)
def test_cli_accepts_valid_example(cli: Callable[[Path], Result], entry: dict) -> None:
    result = cli(EXAMPLES / entry["file"])
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("entry", INVALID, ids=example_id)
def test_cli_refuses_invalid_example_naming_the_violation(cli: Callable[[Path], Result], entry: dict) -> None:
    result = cli(EXAMPLES / entry["file"])
    assert result.exit_code == 1, result.output
    for expression, _ in expected(entry):
        assert f" {expression}: " in result.output, result.output


def test_cli_on_the_pathway_transactions(cli: Callable[[Path], Result]) -> None:
    assert cli(EXAMPLES / bundle_entry(valid=True)["file"]).exit_code == 0
    entry = bundle_entry(valid=False)
    result = cli(EXAMPLES / entry["file"])
    assert result.exit_code == 1
    for expression, _ in expected(entry):
        assert f" {expression}: " in result.output, result.output
