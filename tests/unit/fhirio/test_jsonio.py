"""FHIR JSON parsing and writing: exact decimals, strict input."""

from __future__ import annotations

from decimal import Decimal

import pytest

from adapter.errors import InvalidSyntaxError
from adapter.fhirio.jsonio import dump_json, parse_json


def test_decimals_keep_their_lexical_form() -> None:
    text = '{"a":1.50,"b":[0.000000125,3],"c":-2.0E3,"d":"1.50"}'
    value = parse_json(text.encode())
    assert value["a"] == Decimal("1.50") and str(value["a"]) == "1.50"
    assert value["d"] == "1.50"
    assert dump_json(value) == '{"a":1.50,"b":[1.25E-7,3],"c":-2.0E+3,"d":"1.50"}'
    assert parse_json(dump_json(value)) == value


def test_unicode_is_written_as_utf8_not_escaped() -> None:
    assert dump_json({"family": "Lefèvre"}) == '{"family":"Lefèvre"}'


def test_a_string_that_looks_like_the_decimal_mark_stays_a_string() -> None:
    value = {"text": "D1.5", "n": Decimal("1.5")}
    assert parse_json(dump_json(value)) == value


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"a": NaN}', "NaN"),
        (b'{"a": Infinity}', "Infinity"),
        (b"\xff\xfe{}", "UTF-8"),
        (b'{"a": 1', "line 1"),
        (b"[" * 100 + b"]" * 100, "nested deeper"),
    ],
)
def test_bad_json_is_a_syntax_error(body: bytes, message: str) -> None:
    with pytest.raises(InvalidSyntaxError) as caught:
        parse_json(body, max_depth=64)
    assert message in caught.value.message


def test_byte_order_mark_is_accepted() -> None:
    assert parse_json("\ufeff{}".encode()) == {}
