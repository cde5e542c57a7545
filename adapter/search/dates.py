"""FHIR date, dateTime and instant values as half-open ranges of microseconds since the epoch (UTC)."""

from __future__ import annotations

import calendar
import re
from datetime import UTC, datetime, timedelta, timezone

_DATE_RE = re.compile(
    r"^(?P<y>\d{4})(?:-(?P<m>\d{2})(?:-(?P<d>\d{2})"
    r"(?:T(?P<H>\d{2}):(?P<M>\d{2})(?::(?P<S>\d{2})(?:\.(?P<f>\d+))?)?"
    r"(?P<tz>Z|[+-]\d{2}:\d{2})?)?)?)?$"
)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NAIVE_EPOCH = datetime(1970, 1, 1)
MIN_US = -(2**62)
MAX_US = 2**62


def to_us(moment: datetime) -> int:
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_us(value: int) -> datetime:
    return _EPOCH + timedelta(microseconds=value)


def format_instant(value_us: int) -> str:
    """An instant as FHIR writes it, always to the microsecond.

    A search reads the precision of the value it is given: `_lastUpdated=gt2026-03-02T10:00:00.5Z`
    means from 10:00:00.6 on. A client polling with the lastUpdated of the last resource it saw must
    not skip what was written in the rest of that tenth of a second, so trailing zeros are kept.
    """
    # isoformat writes four-digit years (strftime's %Y drops the zeros of years before 1000).
    return (_NAIVE_EPOCH + timedelta(microseconds=value_us)).isoformat(timespec="microseconds") + "Z"


def date_range(text: str) -> tuple[int, int] | None:
    """The [lo, hi) range a FHIR date/dateTime/instant covers, or None when it is not one.

    Values without a time zone are read as UTC: the server has to pick one, and UTC keeps ranges stable.
    """
    match = _DATE_RE.match(text)
    if not match:
        return None
    g = match.groupdict()
    try:
        year = int(g["y"])
        if g["m"] is None:
            lo = datetime(year, 1, 1, tzinfo=UTC)
            if year == 9999:  # the year after does not exist in datetime
                return to_us(lo), MAX_US
            return to_us(lo), to_us(datetime(year + 1, 1, 1, tzinfo=UTC))
        month = int(g["m"])
        if g["d"] is None:
            lo = datetime(year, month, 1, tzinfo=UTC)
            days = calendar.monthrange(year, month)[1]
            return to_us(lo), _end(lo, timedelta(days=days))
        day = int(g["d"])
        if g["H"] is None:
            lo = datetime(year, month, day, tzinfo=UTC)
            return to_us(lo), _end(lo, timedelta(days=1))
        tz = UTC
        if g["tz"] and g["tz"] != "Z":
            sign = 1 if g["tz"][0] == "+" else -1
            hours, minutes = int(g["tz"][1:3]), int(g["tz"][4:6])
            tz = timezone(sign * timedelta(hours=hours, minutes=minutes))
        second = int(g["S"]) if g["S"] is not None else 0
        fraction = g["f"] or ""
        micro = int((fraction + "000000")[:6]) if fraction else 0
        lo = datetime(year, month, day, int(g["H"]), int(g["M"]), second, micro, tzinfo=tz)
        if g["S"] is None:
            step = timedelta(minutes=1)
        elif fraction:
            step = timedelta(microseconds=max(1, 10 ** (6 - min(len(fraction), 6))))
        else:
            step = timedelta(seconds=1)
        return to_us(lo), _end(lo, step)
    except (ValueError, OverflowError):
        return None


def _end(start: datetime, width: timedelta) -> int:
    try:
        return to_us(start + width)
    except OverflowError:  # the last day of year 9999
        return MAX_US
