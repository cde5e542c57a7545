"""Ordering FHIR date, dateTime and instant strings with FHIRPath's precision rules."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from typing import Any

_DATE = re.compile(
    r"(\d{4})(?:-(\d{2})(?:-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(\.\d+)?)?(Z|[+-]\d{2}:\d{2})?)?)?)?"
)


def _date_key(value: Any) -> tuple[int, ...] | None:
    if not isinstance(value, str):
        return None
    match = _DATE.fullmatch(value)
    if match is None:
        return None
    parts = [int(p) for p in match.groups()[:3] if p]
    if match[4] is None:
        return tuple(parts)
    tz = match[8]
    offset = dt.timedelta(0)
    if tz and tz != "Z":
        sign = -1 if tz[0] == "-" else 1
        offset = sign * dt.timedelta(hours=int(tz[1:3]), minutes=int(tz[4:6]))
    try:
        moment = dt.datetime(*parts, int(match[4]), int(match[5]), int(match[6] or 0)) - offset
    except ValueError:
        return None
    micro = int(Decimal(match[7] or "0") * 1_000_000)
    return (moment.year, moment.month, moment.day, moment.hour, moment.minute, moment.second, micro)


def compare_dates(left: Any, right: Any) -> int | None:
    """-1/0/1 comparing two FHIR date/dateTime/instant strings; None when precision makes it uncertain."""
    a, b = _date_key(left), _date_key(right)
    if a is None or b is None:
        return None
    if (len(a) > 3) != (len(b) > 3) and len(a) >= 3 and len(b) >= 3:
        # A time against a bare date: compare the calendar days as written, not shifted to UTC.
        a, b = _written_day(left), _written_day(right)
    common = min(len(a), len(b))
    if a[:common] != b[:common]:
        return -1 if a[:common] < b[:common] else 1
    return 0 if len(a) == len(b) else None


def _written_day(value: str) -> tuple[int, ...]:
    return tuple(int(part) for part in value[:10].split("-"))


__all__ = ["compare_dates"]
