"""Date keys computed on integers agree with datetime arithmetic, and never raise at the calendar's edges."""

from __future__ import annotations

import datetime as dt
import random
import re
from decimal import Decimal

import pytest

from adapter.validation.dates import _date_key, compare_dates

_DATE = re.compile(
    r"(\d{4})(?:-(\d{2})(?:-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(\.\d+)?)?(Z|[+-]\d{2}:\d{2})?)?)?)?"
)


def _reference_key(value: str) -> tuple[int, ...] | None:
    """The former implementation (datetime and Decimal), as the oracle."""
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
    except (ValueError, OverflowError):
        return None
    micro = int(Decimal(match[7] or "0") * 1_000_000)
    return (moment.year, moment.month, moment.day, moment.hour, moment.minute, moment.second, micro)


def _samples() -> list[str]:
    rnd = random.Random(20260301)
    out = ["2024", "2024-02", "2024-02-29", "2023-02-29", "1900-02-29T00:00:00Z", "2000-02-29T12:00:00Z"]
    for _ in range(5000):
        year = rnd.choice([1, 2, 1900, 1999, 2000, 2024, 9999])
        month, day = rnd.randint(0, 13), rnd.randint(0, 32)
        hour, minute, second = rnd.randint(0, 25), rnd.randint(0, 61), rnd.randint(0, 61)
        tz = rnd.choice(["Z", "", "+01:00", "-05:30", "+14:00", "-12:00", "+00:00", "-00:00", "+23:59"])
        fraction = rnd.choice(["", ".5", ".123", ".1234567"])
        out.append(f"{year:04d}-{month:02d}-{day:02d}T{hour:02d}:{minute:02d}:{second:02d}{fraction}{tz}")
        out.append(f"{year:04d}-{month:02d}-{day:02d}T{hour:02d}:{minute:02d}{tz}")
    return out


def test_keys_agree_with_datetime_arithmetic() -> None:
    for value in _samples():
        assert _date_key(value) == _reference_key(value), value


@pytest.mark.parametrize(
    "value", ["0001-01-01T00:30:00+01:00", "9999-12-31T23:30:00-01:00", "0000-01-01T00:00:00Z"]
)
def test_shifts_out_of_the_calendar_are_not_comparable(value: str) -> None:
    # These used to raise OverflowError, failing the whole validation.
    assert _date_key(value) is None
    assert compare_dates(value, "2024-01-01T00:00:00Z") is None


def test_comparisons() -> None:
    assert compare_dates("2024-01-01T10:00:00+01:00", "2024-01-01T09:30:00Z") == -1
    assert compare_dates("2024-01-01T00:30:00+01:00", "2023-12-31T23:30:00Z") == 0
    assert compare_dates("2024-01-01T10:00:00.5Z", "2024-01-01T10:00:00.500Z") == 0
    assert compare_dates("2024-01", "2024-01-15") is None
    assert compare_dates("2024-01-15", "2024-01-15T23:00:00-05:00") == 0  # days as written
    assert compare_dates("2024-02-30T00:00:00Z", "2024-01-01") is None
