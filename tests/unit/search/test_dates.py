"""FHIR dates as ranges: precision decides the width, time zones shift the start."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from adapter.search.dates import date_range, format_instant, to_us


def _us(*args: int) -> int:
    return to_us(datetime(*args, tzinfo=UTC))


@pytest.mark.parametrize(
    ("text", "lo", "hi"),
    [
        ("2026", _us(2026, 1, 1), _us(2027, 1, 1)),
        ("2026-02", _us(2026, 2, 1), _us(2026, 3, 1)),
        ("2024-02", _us(2024, 2, 1), _us(2024, 3, 1)),
        ("2026-03-29", _us(2026, 3, 29), _us(2026, 3, 30)),
        ("2026-03-29T02:30:00+02:00", _us(2026, 3, 29, 0, 30), _us(2026, 3, 29, 0, 30, 1)),
        ("2026-03-05T10:15:00Z", _us(2026, 3, 5, 10, 15), _us(2026, 3, 5, 10, 15, 1)),
        ("2026-03-05T10:15", _us(2026, 3, 5, 10, 15), _us(2026, 3, 5, 10, 16)),
    ],
)
def test_precision_gives_the_range(text: str, lo: int, hi: int) -> None:
    assert date_range(text) == (lo, hi)


def test_fraction_of_second_narrows_the_range() -> None:
    lo, hi = date_range("2026-03-05T10:15:00.250Z")
    assert hi - lo == 1000


@pytest.mark.parametrize(
    "text", ["12/03/1975", "2026-13-01", "2026-02-30", "tomorrow", "2026-03-05T25:00:00Z", ""]
)
def test_not_a_date(text: str) -> None:
    assert date_range(text) is None


def test_instant_formatting_round_trips() -> None:
    value = _us(2026, 11, 22, 8, 5, 3) + 120_000
    text = format_instant(value)
    assert text == "2026-11-22T08:05:03.120000Z"
    assert date_range(text)[0] == value


def test_instants_before_the_year_1000_keep_four_digit_years() -> None:
    value = date_range("0042-03-01T00:00:00Z")[0]
    assert format_instant(value) == "0042-03-01T00:00:00.000000Z"
    assert date_range(format_instant(value))[0] == value


@pytest.mark.parametrize("fraction_us", [0, 500_000, 120_000, 1])
def test_a_formatted_instant_covers_exactly_its_microsecond(fraction_us: int) -> None:
    # A poll with _lastUpdated=gt<the lastUpdated last seen> must not skip resources written in the
    # rest of a tenth of a second (or a whole second) because trailing zeros were dropped.
    value = _us(2026, 11, 22, 8, 5, 3) + fraction_us
    assert date_range(format_instant(value)) == (value, value + 1)


def test_last_representable_dates_have_an_open_end() -> None:
    assert date_range("9999")[1] > date_range("9999-12-31")[0]
    assert date_range("9999-12-31") is not None
