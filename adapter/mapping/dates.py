"""Source dates (HL7 v2 DTM, French dd/mm/yyyy, ISO 8601) to FHIR date/dateTime, keeping their precision.

A local time without an offset is placed in Europe/Paris with the offset in force on THAT date
(+01:00 in winter, +02:00 in summer), so a summer infusion time is not shifted by an hour in winter.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from adapter.mapping.errors import ValueProblem

PARIS = "Europe/Paris"

_HL7 = re.compile(
    r"(\d{4})(?:(\d{2})(?:(\d{2})(?:(\d{2})(?:(\d{2})(?:(\d{2})(?:\.(\d{1,4}))?)?)?)?)?)?([+-]\d{4})?"
)
_FRENCH = re.compile(r"(\d{1,2})/(\d{1,2})/(\d{4})(?:(?:\s+|T)(\d{1,2})[:hH](\d{2})(?::(\d{2}))?)?")
_ISO = re.compile(
    r"(\d{4})(?:-(\d{2})(?:-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?"
    r"(Z|[+-]\d{2}:?\d{2})?)?)?)?"
)


@lru_cache(maxsize=16)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def _parts(text: str) -> tuple[list[str | None], str | None]:
    """Year..second, fraction and the written offset (or None), whichever of the three syntaxes matches."""
    match = _HL7.fullmatch(text)
    if match:
        *fields, offset = match.groups()
        return list(fields), offset
    match = _ISO.fullmatch(text)
    if match:
        *fields, offset = match.groups()
        return list(fields), offset
    match = _FRENCH.fullmatch(text)
    if match:
        day, month, year, hour, minute, second = match.groups()
        return [year, month.zfill(2), day.zfill(2), hour and hour.zfill(2), minute, second, None], None
    raise ValueProblem(
        f"'{text}' is not a date (expected YYYYMMDD[HHMM[SS]], dd/mm/yyyy [hh:mm] or ISO 8601)"
    )


def _offset_text(offset: str) -> str:
    if offset == "Z":
        return "Z"
    digits = offset[1:].replace(":", "")
    hours, minutes = int(digits[:2]), int(digits[2:])
    if hours > 14 or minutes > 59:
        raise ValueProblem(f"time zone offset '{offset}' is out of range")
    return f"{offset[0]}{digits[:2]}:{digits[2:]}"


def _format_offset(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    sign = "+" if minutes >= 0 else "-"
    minutes = abs(minutes)
    return f"{sign}{minutes // 60:02d}:{minutes % 60:02d}"


@lru_cache(maxsize=8192)
def to_fhir_datetime(text: str, zone: str = PARIS) -> str:
    """A FHIR dateTime with the precision of the source; a local time gets the zone's offset of that date.

    YYYY, YYYYMM and YYYYMMDD stay partial (FHIR allows them). FHIR needs seconds once a time is
    given, so YYYYMMDDHH and YYYYMMDDHHMM are completed with zeros.

    Raises:
        ValueProblem: not a date, or not a real calendar date/time.
    """
    text = text.strip()
    (year, month, day, hour, minute, second, fraction), offset = _parts(text)
    try:
        moment = datetime(
            int(year), int(month or 1), int(day or 1), int(hour or 0), int(minute or 0), int(second or 0)
        )
    except ValueError as exc:
        raise ValueProblem(f"'{text}' is not a valid date: {exc}") from None
    if month is None:
        return year
    if day is None:
        return f"{year}-{month}"
    if hour is None:
        return f"{year}-{month}-{day}"
    if offset is not None:
        zone_text = _offset_text(offset)
    else:
        # fold=0: in the autumn hour that happens twice the first (summer) reading is taken; a spring time
        # that never existed gets the winter offset, which names the instant an hour later on the wall clock.
        zone_text = _format_offset(moment.replace(tzinfo=_zone(zone)).utcoffset() or timedelta(0))
    clock = f"{hour}:{minute or '00'}:{second or '00'}"
    if fraction:
        clock += f".{fraction}"
    return f"{year}-{month}-{day}T{clock}{zone_text}"


@lru_cache(maxsize=8192)
def to_fhir_date(text: str) -> str:
    """A FHIR date (YYYY, YYYY-MM or YYYY-MM-DD) from any accepted syntax; a time part is dropped.

    Raises:
        ValueProblem: not a date, or not a real calendar date.
    """
    text = text.strip()
    (year, month, day, *_rest), _offset = _parts(text)
    try:
        datetime(int(year), int(month or 1), int(day or 1))
    except ValueError as exc:
        raise ValueProblem(f"'{text}' is not a valid date: {exc}") from None
    if month is None:
        return year
    if day is None:
        return f"{year}-{month}"
    return f"{year}-{month}-{day}"
