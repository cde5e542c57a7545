"""Primitive types: the JSON type of each primitive and its lexical rules (FHIR R4 datatypes page)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from adapter.validation.primitives import check_resource_id, primitive_checker

VALID = [
    ("boolean", True),
    ("boolean", False),
    ("integer", 0),
    ("integer", -2147483648),
    ("integer", 2147483647),
    ("positiveInt", 1),
    ("unsignedInt", 0),
    ("decimal", Decimal("1.50")),
    ("decimal", 3),
    ("decimal", Decimal("-0.0001e10")),
    ("string", "Hélène"),
    ("string", "line one\nline two"),
    ("string", "0,75\u202f×\u00a010⁶ cellules"),  # no-break spaces are not whitespace in FHIR regexes
    ("code", "a\u00a0b"),
    ("date", "2018"),
    ("date", "1973-06"),
    ("date", "1905-08-23"),
    ("date", "2024-02-29"),
    ("dateTime", "2015-02-07T13:28:17-05:00"),
    ("dateTime", "2017-01-01T00:00:00.000Z"),
    ("dateTime", "2018"),
    ("instant", "2015-02-07T13:28:17.239+02:00"),
    ("time", "23:59:60"),
    ("code", "entered-in-error"),
    ("code", "a b"),
    ("id", "a-B.9"),
    ("id", "x" * 64),
    ("uri", "urn:oid:1.2.3"),
    ("uri", "http://example.org/a?b=c"),
    ("url", "https://example.org"),
    ("canonical", "http://hl7.org/fhir/StructureDefinition/Patient|4.0.1"),
    ("oid", "urn:oid:1.2.250.1.213.1.4.8"),
    ("uuid", "urn:uuid:c757873d-ec9a-4326-a141-556f43239520"),
    ("base64Binary", "SGVsbG8gd29ybGQ="),
    ("base64Binary", "SGVs\nbG8="),
    ("markdown", "**bold**"),
    ("xhtml", '<div xmlns="http://www.w3.org/1999/xhtml"><p>Hi</p></div>'),
]

INVALID = [
    ("boolean", "true", "JSON boolean"),
    ("boolean", 1, "JSON boolean"),
    ("integer", "1", "JSON number"),
    ("integer", Decimal("1.0"), "no decimal point"),
    ("integer", True, "JSON number"),
    ("integer", 2147483648, "out of range"),
    ("positiveInt", 0, "out of range"),
    ("unsignedInt", -1, "out of range"),
    ("decimal", "1.5", "JSON number"),
    ("decimal", False, "JSON number"),
    ("string", 12, "JSON string"),
    ("string", "", "empty"),
    ("string", "bell\x07", "control characters"),
    ("date", "2018-13-01", "valid date"),
    ("date", "2018-02-30", "no such day"),
    ("date", "18-01-01", "valid date"),
    ("date", "2018-01-01T10:00:00Z", "valid date"),
    ("dateTime", "2015-02-07T13:28:17", "valid dateTime"),
    ("dateTime", "2015-02-07T25:00:00Z", "valid dateTime"),
    ("instant", "2015-02-07", "valid instant"),
    ("time", "24:00:00", "valid time"),
    ("time", "10:00", "valid time"),
    ("code", " leading", "valid code"),
    ("code", "two  spaces", "valid code"),
    ("id", "under_score", "valid id"),
    ("id", "x" * 65, "valid id"),
    ("uri", "has space", "valid uri"),
    ("oid", "urn:oid:3.1", "valid oid"),
    ("oid", "1.2.3", "valid oid"),
    ("uuid", "urn:uuid:C757873D-EC9A-4326-A141-556F43239520", "valid uuid"),
    ("uuid", "c757873d-ec9a-4326-a141-556f43239520", "valid uuid"),
    ("base64Binary", "abc", "base64"),
    ("base64Binary", "ab$=", "base64"),
    ("xhtml", "<p>no div</p>", "XHTML <div>"),
    ("xhtml", "<div>no namespace</div>", "XHTML <div>"),
    ("xhtml", '<div xmlns="http://www.w3.org/1999/xhtml"> <p/> </div>', "no content"),
    ("xhtml", '<div xmlns="http://www.w3.org/1999/xhtml"><script>x</script></div>', "not allowed"),
]


@pytest.mark.parametrize(("type_code", "value"), VALID)
def test_valid_primitives(type_code: str, value: object) -> None:
    assert primitive_checker(type_code)(value) is None


@pytest.mark.parametrize(("type_code", "value", "reason"), INVALID)
def test_invalid_primitives(type_code: str, value: object, reason: str) -> None:
    problem = primitive_checker(type_code)(value)
    assert problem is not None
    assert reason in problem


def test_resource_id_is_an_id_even_though_the_snapshot_says_string() -> None:
    assert check_resource_id("example-1.a") is None
    assert check_resource_id("no/slash") is not None
    assert check_resource_id("") is not None
    assert check_resource_id(1) is not None
