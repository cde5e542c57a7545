"""FHIR JSON: strict parsing (UTF-8, no NaN, bounded depth) and serialising that keeps decimal precision."""

from __future__ import annotations

import json
import re
from decimal import Decimal, InvalidOperation
from typing import Any

from adapter.errors import InvalidSyntaxError

# FHIR decimals are exact: 1.50 is not 1.5. They travel as Decimal inside the service and are written back
# with the lexical form they came in with. The encoder has no hook for raw numbers, so a Decimal is first
# written as a marked string and the marks are removed afterwards; a real FHIR string cannot contain the
# NUL character of the mark (control characters are not allowed in FHIR strings).
_MARK = "\x00D"
_MARKED = re.compile(r'"\\u0000D([-+0-9.eE]+)"')


def _reject_constant(name: str) -> Any:
    raise InvalidSyntaxError(f"JSON constant {name} is not allowed in FHIR")


class _NumberOutOfRange(Exception):
    def __init__(self, literal: str):
        super().__init__(literal)
        self.literal = literal


def _decimal(text: str) -> Decimal:
    # Decimal refuses an exponent beyond its context's limits (1e9999999999999999999) with
    # InvalidOperation, an ArithmeticError that json.loads lets through: it answered 500.
    try:
        return Decimal(text)
    except InvalidOperation:
        raise _NumberOutOfRange(text) from None


def _encode_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return _MARK + str(value)
    raise TypeError(f"cannot serialise {type(value).__name__} as FHIR JSON")


_encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=_encode_default)


def parse_json(data: bytes | str, *, max_depth: int = 64) -> Any:
    """Parse FHIR JSON; decimals become Decimal.

    Raises:
        InvalidSyntaxError: invalid UTF-8, not JSON, NaN/Infinity, nested deeper than max_depth, an
            integer too long to convert, a number whose exponent is out of range, or an unpaired
            surrogate escape.
    """
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidSyntaxError(f"body is not valid UTF-8 (byte {exc.start})") from None
    else:
        text = data
    if text.startswith("\ufeff"):
        text = text[1:]
    try:
        value = json.loads(text, parse_float=_decimal, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise InvalidSyntaxError(f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    except _NumberOutOfRange as exc:
        # parse_float is not told where the number is: the first place the literal appears without a
        # letter, digit, sign, dot or quote just before it points the client at it (a string holding the
        # same text could come first).
        found = re.search(r"(?<![\w.+\-\"])" + re.escape(exc.literal), text)
        at = found.start() if found else 0
        line, column = text.count("\n", 0, at) + 1, at - text.rfind("\n", 0, at)
        raise InvalidSyntaxError(
            f"JSON number {exc.literal[:40]!r} at line {line} column {column} is out of range"
        ) from None
    except RecursionError:
        raise InvalidSyntaxError(f"JSON nested deeper than {max_depth} levels") from None
    except ValueError:
        # Python refuses to convert integers of more than 4300 digits (a guard against quadratic time).
        raise InvalidSyntaxError("JSON number with too many digits") from None
    _check_depth(value, max_depth)
    # A \uD800 escape without its pair decodes to a lone surrogate: valid JSON, but no Unicode text, and
    # it could be neither stored nor written back as UTF-8. Only such an escape can produce one; the walk
    # over every string is for bodies that hold one (French text escaped as \u00e9 does not).
    if _SURROGATE_ESCAPE.search(text) and _has_lone_surrogate(value):
        raise InvalidSyntaxError("JSON string with an unpaired surrogate escape (\\uD800-\\uDFFF)")
    return value


_SURROGATE = re.compile("[\ud800-\udfff]")
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _has_lone_surrogate(value: Any) -> bool:
    stack = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, str):
            if _SURROGATE.search(node):
                return True
        elif isinstance(node, dict):
            stack.extend(node.keys())
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return False


def parse_stored_json(text: str) -> Any:
    """Parse JSON this server stored itself: it was checked on the way in, so only decimals need care."""
    return json.loads(text, parse_float=Decimal)


def _check_depth(value: Any, max_depth: int) -> None:
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > max_depth:
            raise InvalidSyntaxError(f"JSON nested deeper than {max_depth} levels")
        if isinstance(node, dict):
            stack.extend((v, depth + 1) for v in node.values() if isinstance(v, dict | list))
        elif isinstance(node, list):
            stack.extend((v, depth + 1) for v in node if isinstance(v, dict | list))


def dump_json(value: Any) -> str:
    """Serialise compactly as UTF-8 text, writing Decimal values as JSON numbers unchanged."""
    text = _encoder.encode(value)
    if "\\u0000D" in text:
        text = _MARKED.sub(r"\1", text)
    return text


def dump_json_pretty(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, indent=2, default=_encode_default)
    if "\\u0000D" in text:
        text = _MARKED.sub(r"\1", text)
    return text
