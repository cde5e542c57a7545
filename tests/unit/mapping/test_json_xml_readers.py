"""JSON (JSON Pointer, simple JSONPath, schema per record) and XML (namespaced XPath, hardened) readers."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from adapter.mapping.errors import MappingSpecError, SourceFormatError, SourceTooLargeError
from adapter.mapping.readers import Limits
from adapter.mapping.readers.jsonfile import JsonReader
from adapter.mapping.readers.jsonpath import compile_jsonpath, compile_pointer
from adapter.mapping.readers.xmlfile import XmlReader
from tests.unit.mapping.conftest import MAPPINGS

DOC = {
    "a/b": 1,
    "m~n": 2,
    "etapes": [
        {"type": "APHERESE", "statut": "realisee", "debut": "2025-04-07T08:30:00"},
        {"type": "LD", "statut": "planifiee", "n": {"x": 1}},
    ],
}


@pytest.mark.parametrize(
    ("pointer", "expected"),
    [
        ("/a~1b", 1),
        ("/m~0n", 2),
        ("/etapes/1/type", "LD"),
        ("/etapes/2", None),
        ("/etapes/01", None),
        ("", DOC),
    ],
)
def test_json_pointer(pointer: str, expected: object) -> None:
    assert compile_pointer(pointer, "t")(DOC) == expected


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("$.etapes[0].type", "APHERESE"),
        ("$.etapes[-1].type", "LD"),
        ("$['etapes'][1]['statut']", "planifiee"),
        ("$.etapes[*].type", ["APHERESE", "LD"]),
        ("$.etapes[?(@.type=='LD')].statut", ["planifiee"]),
        ("$.etapes[?(@.type != 'LD')].debut", ["2025-04-07T08:30:00"]),
        ("$.etapes[?(@.n.x == 1)].type", ["LD"]),
        ("$.etapes[?(@.debut)].type", ["APHERESE"]),
        ("$.nothing.here", None),
    ],
)
def test_simple_jsonpath(path: str, expected: object) -> None:
    assert compile_jsonpath(path, "t")[0](DOC) == expected


@pytest.mark.parametrize("path", ["etapes", "$.etapes[", "$..type", "$.etapes[?(@.type ~ 'x')]"])
def test_unsupported_jsonpath_is_a_spec_error(path: str) -> None:
    with pytest.raises(MappingSpecError):
        compile_jsonpath(path, "t")


def json_reader(**limits: int) -> JsonReader:
    options = {"records": "/parcours", "schema": "schemas/pathway-export.schema.json"}
    return JsonReader(options, Limits(**limits), MAPPINGS)


def pathway(coi: str, **patient: object) -> dict:
    base = {
        "ins": "275036938312363",
        "nomNaissance": "LEFÈVRE",
        "prenoms": ["Hélène"],
        "dateNaissance": "1975-03-12",
        "sexe": "F",
    }
    return {
        "coi": coi,
        "patient": {**base, **patient},
        "site": {"finess": "690784152"},
        "produit": {"code": "YESCARTA"},
    }


def test_json_records_are_checked_one_by_one_with_pointers() -> None:
    data = json.dumps({"parcours": [pathway("COI-1234"), pathway("COI-5678", sexe="X")]}).encode()
    first, second = json_reader().read(data).records
    assert first.error is None and first.location == "/parcours/0"
    assert second.error.source == "/parcours/1/patient/sexe"


def test_json_numbers_are_decimals() -> None:
    record = json_reader().read(b'{"parcours": [{"x": 1.50}]}').records[0]
    assert record.data["x"] == Decimal("1.50")


def test_json_document_errors_refuse_the_source() -> None:
    with pytest.raises(SourceFormatError, match="line 1"):
        json_reader().read(b'{"parcours": [')
    with pytest.raises(SourceFormatError, match="/parcours"):
        json_reader().read(b'{"export": {}}')
    with pytest.raises(SourceFormatError, match="nested deeper"):
        json_reader().read(b'{"parcours": [' + b"[" * 40 + b"]" * 40 + b"]}")
    with pytest.raises(SourceTooLargeError):
        json_reader(max_records=1).read(b'{"parcours": [{}, {}]}')


XML = """<?xml version="1.0" encoding="UTF-8"?>
<p:receptions xmlns:p="urn:example:pui:cart:1" etablissement="690784152">
  <p:reception id="R1"><p:coi>COI-1</p:coi>
    <p:releve t="1">-183.1</p:releve><p:releve t="2">-182.4</p:releve></p:reception>
  <p:reception id="R2"><p:coi> COI-2 </p:coi></p:reception>
</p:receptions>"""


def xml_reader() -> XmlReader:
    return XmlReader(
        {"records": "/p:receptions/p:reception", "namespaces": {"p": "urn:example:pui:cart:1"}}, Limits()
    )


def test_xml_records_values_and_locations() -> None:
    reader = xml_reader()
    first, second = reader.read(XML.encode()).records
    assert first.location == "/p:receptions/p:reception[1]"
    assert reader.path("p:coi", "t")(second.data) == "COI-2"
    assert reader.path("/p:receptions/@etablissement", "t")(first.data) == "690784152"
    assert reader.path("p:releve", "t", many=True)(first.data) == ["-183.1", "-182.4"]
    assert reader.path("count(p:releve)", "t")(first.data) == Decimal("2")
    items = reader.items("p:releve", "t")(first.data, first.location)
    assert [location for location, _ in items] == [
        "/p:receptions/p:reception[1]/p:releve[1]",
        "/p:receptions/p:reception[1]/p:releve[2]",
    ]


def test_xml_hardening_refuses_doctype_and_entities() -> None:
    evil = '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r>&x;</r>'
    with pytest.raises(SourceFormatError, match="DOCTYPE"):
        xml_reader().read(evil.encode())


def test_xml_must_be_utf8_and_well_formed() -> None:
    with pytest.raises(SourceFormatError, match="UTF-8"):
        xml_reader().read(b'<?xml version="1.0" encoding="ISO-8859-1"?><r/>')
    with pytest.raises(SourceFormatError, match="well-formed"):
        xml_reader().read(b"<r><unclosed></r>")


def test_bad_xpath_is_a_spec_error() -> None:
    with pytest.raises(MappingSpecError, match="invalid XPath"):
        xml_reader().path("p:coi[", "let.coi")
