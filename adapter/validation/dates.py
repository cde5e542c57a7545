"""Ordering FHIR date, dateTime and instant strings with FHIRPath's precision rules."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

_DATE = re.compile(
    r"(\d{4})(?:-(\d{2})(?:-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(\.\d+)?)?(Z|[+-]\d{2}:\d{2})?)?)?)?"
)
# Days per month, February as in a leap year (the leap rule is checked apart).
_MONTH_DAYS = (0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
# The usual shape, a full dateTime with a valid offset: datetime's C parser handles it (calendar checks
# and the shift to UTC included) several times faster than the general path below.
_FULL = re.compile(
    r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-](?:[01]\d|2[0-3]):[0-5]\d)", re.ASCII
)
_UTC = dt.UTC


def _date_key(value: Any) -> tuple[int, ...] | None:
    """(year, month, day[, hour, minute, second, microsecond in UTC]) as written; None when invalid.

    Per-1 and every date comparison of a constraint land here, so the calendar checks are done on the
    integers rather than by building datetimes; only a timezone shift that changes the day needs one.
    """
    if not isinstance(value, str):
        return None
    if _FULL.fullmatch(value) is not None:
        try:
            moment = dt.datetime.fromisoformat(value).astimezone(_UTC)
        except (ValueError, OverflowError):
            return None  # no such day or time, or shifted out of years 1..9999
        return (
            moment.year,
            moment.month,
            moment.day,
            moment.hour,
            moment.minute,
            moment.second,
            moment.microsecond,
        )
    match = _DATE.fullmatch(value)
    if match is None:
        return None
    year, month, day, hour, minute, second, fraction, tz = match.groups()
    if hour is None:
        if day is not None:
            return (int(year), int(month), int(day))
        return (int(year), int(month)) if month is not None else (int(year),)
    y, mo, d, h, mi, s = int(year), int(month), int(day), int(hour), int(minute), int(second or 0)
    if not (0 < y and 0 < mo < 13 and 0 < d <= _MONTH_DAYS[mo] and h < 24 and mi < 60 and s < 60):
        return None
    if mo == 2 and d == 29 and (y % 4 or (y % 100 == 0 and y % 400)):
        return None
    micro = int((fraction[1:] + "000000")[:6]) if fraction else 0
    if tz and tz != "Z" and tz[1:] != "00:00":
        # Shift to UTC; the day may change, so go through the proleptic ordinal.
        shift = int(tz[1:3]) * 60 + int(tz[4:6])
        days, minutes = divmod(h * 60 + mi + (shift if tz[0] == "-" else -shift), 1440)
        h, mi = divmod(minutes, 60)
        if days:
            try:
                moment = dt.date.fromordinal(dt.date(y, mo, d).toordinal() + days)
            except (ValueError, OverflowError):
                return None  # shifted out of years 1..9999
            y, mo, d = moment.year, moment.month, moment.day
    return (y, mo, d, h, mi, s, micro)


def compare_dates(left: Any, right: Any) -> int | None:
    """-1/0/1 comparing two FHIR date/dateTime/instant strings; None when precision makes it uncertain."""
    a, b = _date_key(left), _date_key(right)
    if a is None or b is None:
        return None
    if len(a) == len(b):  # the same precision: plain order
        return (a > b) - (a < b)
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
