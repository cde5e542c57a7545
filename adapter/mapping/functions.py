"""The functions a mapping expression may call; each takes plain values and returns a plain value."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any

from adapter.mapping.dates import PARIS, _zone, to_fhir_date, to_fhir_datetime
from adapter.mapping.errors import ValueProblem
from adapter.search.dates import date_range

UCUM = "http://unitsofmeasure.org"
_OID = re.compile(r"[0-2](\.(0|[1-9][0-9]*))+")
_NUMBER = re.compile(r"[+-]?(\d+([.,]\d*)?|[.,]\d+)")


def _text(value: Any) -> str | None:
    """Strings as they are; numbers in their written form; None and '' both mean 'no value'."""
    if value is None:
        return None
    if isinstance(value, str):
        return value if value != "" else None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | Decimal):
        return str(value)
    raise ValueProblem(f"expected a single value, got {type(value).__name__}")


def fn_date(value: Any) -> str | None:
    text = _text(value)
    return to_fhir_date(text) if text else None


def fn_datetime(value: Any, zone: str = PARIS) -> str | None:
    text = _text(value)
    return to_fhir_datetime(text, zone) if text else None


def fn_decimal(value: Any) -> Decimal | None:
    """A decimal from '12,5' (French comma), '12.5', ' 1 234,5 ' or a number; precision is kept."""
    if value is None or value == "":
        return None
    if isinstance(value, Decimal):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return Decimal(value)
    text = str(value).strip().replace("\u202f", "").replace("\xa0", "").replace(" ", "")
    if not _NUMBER.fullmatch(text):
        raise ValueProblem(f"'{value}' is not a number")
    try:
        return Decimal(text.replace(",", "."))
    except InvalidOperation:
        raise ValueProblem(f"'{value}' is not a number") from None


_INT32 = (-(2**31), 2**31 - 1)


def fn_integer(value: Any) -> int | None:
    """A FHIR integer (32 bits): beyond that range the value is refused here, with its source, rather than
    failing validation for the whole file (or, past 4300 digits, the JSON serialiser itself)."""
    number = fn_decimal(value)
    if number is None:
        return None
    if number != number.to_integral_value():
        raise ValueProblem(f"'{value}' is not a whole number")
    if not _INT32[0] <= number <= _INT32[1]:
        raise ValueProblem(f"'{value}' is out of range for an integer ({_INT32[0]}..{_INT32[1]})")
    return int(number)


def fn_string(value: Any) -> str | None:
    return _text(value)


def fn_upper(value: Any) -> str | None:
    text = _text(value)
    return text.upper() if text else None


def fn_lower(value: Any) -> str | None:
    text = _text(value)
    return text.lower() if text else None


def fn_trim(value: Any) -> str | None:
    text = _text(value)
    return (text.strip() or None) if text else None


def fn_concat(*values: Any) -> str | None:
    parts = [text for text in (_text(v) for v in values) if text]
    return "".join(parts) if parts else None


def fn_join(values: Any, separator: str = " ") -> str | None:
    if values is None:
        return None
    items = values if isinstance(values, list) else [values]
    parts = [text for text in (_text(v) for v in items) if text]
    return separator.join(parts) if parts else None


def fn_split(value: Any, separator: str = " ") -> list[str] | None:
    text = _text(value)
    if not text:
        return None
    parts = [part.strip() for part in text.split(separator)]
    return [part for part in parts if part] or None


def fn_first(values: Any) -> Any:
    if isinstance(values, list):
        return values[0] if values else None
    return values


def fn_last(values: Any) -> Any:
    if isinstance(values, list):
        return values[-1] if values else None
    return values


def fn_count(values: Any) -> int:
    if values is None:
        return 0
    return len(values) if isinstance(values, list) else 1


def fn_coalesce(*values: Any) -> Any:
    for value in values:
        if value is not None and value != "" and value != []:
            return value
    return None


def fn_exists(value: Any) -> bool:
    return value is not None and value != "" and value != [] and value != {}


def fn_empty(value: Any) -> bool:
    return not fn_exists(value)


@lru_cache(maxsize=256)
def _pattern(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def fn_matches(value: Any, pattern: str) -> bool:
    text = _text(value)
    return bool(text) and _pattern(pattern).fullmatch(text) is not None


def fn_replace(value: Any, old: str, new: str) -> str | None:
    text = _text(value)
    return text.replace(old, new) if text else None


def fn_oid(value: Any) -> str | None:
    """'1.2.250.1.213.1.4.8' -> 'urn:oid:1.2.250.1.213.1.4.8'; anything that is not an OID -> None."""
    text = _text(value)
    if not text:
        return None
    if text.startswith("urn:oid:"):
        text = text[8:]
    return f"urn:oid:{text}" if _OID.fullmatch(text) else None


def fn_add_minutes(value: Any, minutes: Any) -> str | None:
    """A FHIR dateTime (with offset) plus some minutes, written with the Paris offset of the new time."""
    text = _text(value)
    count = fn_decimal(minutes)
    if not text or count is None:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueProblem(f"'{text}' is not a dateTime with a time of day") from None
    if moment.tzinfo is None or len(text) < 16:
        raise ValueProblem(f"'{text}' is not a dateTime with a time of day")
    try:
        later = (moment + timedelta(minutes=float(count))).astimezone(_zone(PARIS))
    except OverflowError:
        raise ValueProblem(f"'{text}' plus {count} minutes is beyond the years 1 to 9999") from None
    return later.isoformat(timespec="seconds")


def fn_before(first: Any, second: Any) -> bool | None:
    """Whether a FHIR date/dateTime starts before another (offsets honoured); None if either is missing."""
    a, b = _text(first), _text(second)
    if not a or not b:
        return None
    range_a, range_b = date_range(a), date_range(b)
    if range_a is None or range_b is None:
        raise ValueProblem(f"cannot compare '{a}' and '{b}' as dates")
    return range_a[0] < range_b[0]


def fn_quantity(value: Any, unit: Any, display: Any = None) -> dict | None:
    """A Quantity; `unit` is a UCUM code or a Coding (e.g. from a units table)."""
    number = fn_decimal(value)
    if number is None:
        return None
    if isinstance(unit, dict):
        out: dict[str, Any] = {"value": number}
        shown = display or unit.get("display") or unit.get("code")
        if shown:
            out["unit"] = shown
        if unit.get("system") and unit.get("code"):
            out["system"], out["code"] = unit["system"], unit["code"]
        return out
    code = _text(unit)
    if not code:
        return {"value": number}
    return {"value": number, "unit": _text(display) or code, "system": UCUM, "code": code}


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "date": fn_date,
    "datetime": fn_datetime,
    "decimal": fn_decimal,
    "integer": fn_integer,
    "string": fn_string,
    "upper": fn_upper,
    "lower": fn_lower,
    "trim": fn_trim,
    "concat": fn_concat,
    "join": fn_join,
    "split": fn_split,
    "first": fn_first,
    "last": fn_last,
    "count": fn_count,
    "coalesce": fn_coalesce,
    "exists": fn_exists,
    "empty": fn_empty,
    "matches": fn_matches,
    "replace": fn_replace,
    "oid": fn_oid,
    "add_minutes": fn_add_minutes,
    "quantity": fn_quantity,
    "before": fn_before,
}

# Let items may name one of these as their `type`: the value is converted when it is picked, so a bad
# date is reported against the source path rather than against each element that uses it.
CONVERTERS: dict[str, Callable[[Any], Any]] = {
    "string": fn_string,
    "date": fn_date,
    "datetime": fn_datetime,
    "decimal": fn_decimal,
    "integer": fn_integer,
}
