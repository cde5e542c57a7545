"""Source dates become FHIR dates with the Europe/Paris offset of that very date, keeping their precision."""

from __future__ import annotations

import pytest

from adapter.mapping.dates import to_fhir_date, to_fhir_datetime
from adapter.mapping.errors import ValueProblem


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("20250710143000", "2025-07-10T14:30:00+02:00"),  # summer time
        ("20250110143000", "2025-01-10T14:30:00+01:00"),  # winter time
        ("202507101430", "2025-07-10T14:30:00+02:00"),  # minutes: FHIR needs the seconds
        ("2025071014", "2025-07-10T14:00:00+02:00"),
        ("20250710143000.25", "2025-07-10T14:30:00.25+02:00"),
        ("20250710143000-0500", "2025-07-10T14:30:00-05:00"),  # a written offset wins
        ("20250710", "2025-07-10"),
        ("202507", "2025-07"),
        ("2025", "2025"),
    ],
)
def test_hl7_dtm_keeps_its_precision_and_gets_the_offset_of_that_date(source: str, expected: str) -> None:
    assert to_fhir_datetime(source) == expected


def test_the_day_summer_time_starts_in_paris() -> None:
    assert to_fhir_datetime("20250330013000") == "2025-03-30T01:30:00+01:00"
    assert to_fhir_datetime("20250330033000") == "2025-03-30T03:30:00+02:00"
    # 02:30 does not exist on that day: read with the winter offset, i.e. the instant of 03:30 summer time
    assert to_fhir_datetime("20250330023000") == "2025-03-30T02:30:00+01:00"


def test_the_repeated_autumn_hour_is_read_as_the_first_summer_time_one() -> None:
    assert to_fhir_datetime("20251026023000") == "2025-10-26T02:30:00+02:00"
    assert to_fhir_datetime("20251026033000") == "2025-10-26T03:30:00+01:00"


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("10/05/2025 10:02", "2025-05-10T10:02:00+02:00"),
        ("18/11/2025 10:00", "2025-11-18T10:00:00+01:00"),
        ("18/11/2025 9h05", "2025-11-18T09:05:00+01:00"),
        ("5/4/2025", "2025-04-05"),
        ("2025-04-07T08:30:00", "2025-04-07T08:30:00+02:00"),
        ("2025-04-07T08:30", "2025-04-07T08:30:00+02:00"),
        ("2025-04-07T08:30:00Z", "2025-04-07T08:30:00Z"),
        ("2025-04-07T08:30:00+0100", "2025-04-07T08:30:00+01:00"),
        ("2025-04-07", "2025-04-07"),
    ],
)
def test_spreadsheet_and_iso_dates(source: str, expected: str) -> None:
    assert to_fhir_datetime(source) == expected


def test_a_date_keeps_only_the_day() -> None:
    assert to_fhir_date("19750312") == "1975-03-12"
    assert to_fhir_date("197503") == "1975-03"
    assert to_fhir_date("1957") == "1957"
    assert to_fhir_date("12/03/1975") == "1975-03-12"
    assert to_fhir_date("20250710143000+0200") == "2025-07-10"


@pytest.mark.parametrize(
    "source", ["19880231", "31/02/2025", "2025-13-01", "20250710250000", "hier", "12/2025"]
)
def test_impossible_or_unreadable_dates_are_refused(source: str) -> None:
    with pytest.raises(ValueProblem):
        to_fhir_datetime(source)


def test_an_offset_beyond_14_hours_is_refused() -> None:
    with pytest.raises(ValueProblem, match="out of range"):
        to_fhir_datetime("20250710143000+1600")
