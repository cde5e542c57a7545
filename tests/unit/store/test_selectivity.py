"""Remembered probe counts: what they may answer, and for how long."""

from __future__ import annotations

from adapter.store.selectivity import Selectivity


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_filter_count_is_answered_until_it_expires() -> None:
    clock = _Clock()
    hints = Selectivity(ttl_seconds=5, clock=clock)
    key = ("Task", ("reference", None, (False,)), (("c0_0c", "'mfr-01'"),))
    assert hints.count(key) is None
    hints.remember(key, 42)
    clock.now += 4.9
    assert hints.count(key) == 42
    assert hints.count(("Task", "another filter")) is None
    clock.now += 0.2
    assert hints.count(key) is None


def test_a_small_count_since_an_instant_answers_for_every_later_instant() -> None:
    hints = Selectivity(clock=_Clock())
    hints.remember_updated("Task", lower=5_000, count=7)
    # Fewer rows were updated after 5,000 than the limit: after any later instant, fewer still.
    assert hints.updated_since("Task", 5_000, limit=100) == 7
    assert hints.updated_since("Task", 9_000, limit=100) == 7
    # An earlier instant may have any number of rows after it.
    assert hints.updated_since("Task", 4_999, limit=100) is None
    assert hints.updated_since("ServiceRequest", 9_000, limit=100) is None
    # Against a lower limit, 7 rows are not few enough to say anything about a later instant.
    assert hints.updated_since("Task", 9_000, limit=5) is None


def test_a_large_count_since_an_instant_answers_for_every_earlier_instant() -> None:
    hints = Selectivity(clock=_Clock())
    hints.remember_updated("Task", lower=5_000, count=100)
    assert hints.updated_since("Task", 1_000, limit=100) == 100
    assert hints.updated_since("Task", 5_000, limit=100) == 100
    assert hints.updated_since("Task", 5_001, limit=100) is None


def test_instant_bounds_expire_and_are_replaced() -> None:
    clock = _Clock()
    hints = Selectivity(ttl_seconds=5, clock=clock)
    hints.remember_updated("Task", lower=5_000, count=3)
    clock.now += 6
    assert hints.updated_since("Task", 6_000, limit=100) is None
    hints.remember_updated("Task", lower=5_000, count=150)
    assert hints.updated_since("Task", 6_000, limit=100) is None
    assert hints.updated_since("Task", 4_000, limit=100) == 150
