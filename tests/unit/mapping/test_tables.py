"""Code tables: local code -> Coding (+ attributes); only verified standard codes are used."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from adapter.mapping.errors import MappingSpecError, ValueProblem
from adapter.mapping.specfiles import load_document
from adapter.mapping.tables import TableSet
from tests.unit.mapping.conftest import MAPPINGS, write

PROJECT = "https://cart-adapter.example.org/fhir/"
DOMAIN_CODES = MAPPINGS.parents[1] / "shared" / "domain-codes.json"
R4_CODESYSTEMS = MAPPINGS.parent / "adapter" / "definitions" / "r4" / "codesystems.json.gz"


def test_lookup_coding_code_and_attributes() -> None:
    tables = TableSet(MAPPINGS)
    product = tables.get("product")
    assert product.coding(" carvykti ") == {
        "system": "http://www.whocc.no/atc",
        "code": "L01XL05",
        "display": "ciltacabtagene autoleucel",
    }
    assert product.attribute("YESCARTA", "manufacturer") == "kite"
    assert product.coding("YESCARTA")["system"] == PROJECT + "CodeSystem/cart-product"
    assert tables.get("v2-sex").attribute("f", "code") == "female"
    assert product.coding(None) is None and product.coding("  ") is None
    with pytest.raises(ValueProblem, match="'ZZ' is not in code table 'product'"):
        product.coding("ZZ")


def test_a_table_default_catches_unmapped_codes() -> None:
    assert TableSet(MAPPINGS).get("administration-status").attribute("??", "code") == "completed"


def test_tables_are_checked_when_loaded(spec_dir: Path) -> None:
    write(spec_dir, "tables/dup.yaml", "name: dup\ncase_insensitive: true\nentries: {A: x, a: y}\n")
    write(spec_dir, "tables/bad.yaml", "name: bad\nentries: {}\n")
    write(spec_dir, "tables/misnamed.yaml", "name: other\nentries: {A: x}\n")
    tables = TableSet(spec_dir)
    with pytest.raises(MappingSpecError, match="twice"):
        tables.get("dup")
    with pytest.raises(MappingSpecError, match="invalid at entries"):
        tables.get("bad")
    with pytest.raises(MappingSpecError, match="named 'other'"):
        tables.get("misnamed")
    with pytest.raises(MappingSpecError, match="no code table"):
        tables.get("absent")


def _codings(node: object, found: list[tuple[str, str, str]], where: str) -> None:
    if isinstance(node, dict):
        system, code = node.get("system"), node.get("code")
        if isinstance(system, str) and isinstance(code, str) and "${" not in system + code:
            found.append((system, code, where))
        for value in node.values():
            _codings(value, found, where)
    elif isinstance(node, list):
        for value in node:
            _codings(value, found, where)


def _shipped_codings() -> list[tuple[str, str, str]]:
    found: list[tuple[str, str, str]] = []
    for path in sorted(MAPPINGS.rglob("*.yaml")):
        document = load_document(path)
        where = str(path.relative_to(MAPPINGS))
        if path.parent.name == "tables":
            system = document.get("system")
            for key, value in document["entries"].items():
                entry = {"code": value} if isinstance(value, str) else value
                coding = {"system": entry.get("system", system), "code": entry.get("code")}
                _codings(coding, found, f"{where}: {key}")
        else:
            _codings(document, found, where)
    return found


def _r4_codes() -> dict[str, set[str]]:
    def walk(concepts: list) -> set[str]:
        out: set[str] = set()
        for concept in concepts:
            out.add(concept["code"])
            out |= walk(concept.get("concept", []))
        return out

    with gzip.open(R4_CODESYSTEMS) as handle:
        return {cs["url"]: walk(cs.get("concept", [])) for cs in json.load(handle)}


def test_standard_codes_are_verified_and_others_are_project_codes() -> None:
    """A standard code must be verified in DOMAIN's list or defined by the R4 core package itself."""
    if not DOMAIN_CODES.is_file():
        pytest.skip(f"{DOMAIN_CODES} is not beside the checkout")
    verified = {(c["system"], c["code"]) for c in json.loads(DOMAIN_CODES.read_text()) if c["verified"]}
    verified |= {("urn:ietf:rfc:3986", c) for s, c in verified if s == "urn:ietf:rfc:3986"}
    r4 = _r4_codes()
    wrong = [
        (system, code, where)
        for system, code, where in _shipped_codings()
        if not system.startswith(PROJECT)
        and (system, code) not in verified
        and code not in r4.get(system, set())
        and not (system == "http://unitsofmeasure.org")  # UCUM: checked below
    ]
    assert wrong == []


def test_ucum_units_are_the_verified_ones_or_plain_ucum_terms() -> None:
    allowed = {"10*3/uL", "mg/m2", "mg", "mL", "Cel", "kg", "%", "10*9", "mg/kg"}
    used = {code for system, code, _ in _shipped_codings() if system == "http://unitsofmeasure.org"}
    assert used <= allowed
