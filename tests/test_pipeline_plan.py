"""The plan of `outcomes backfill`: which as-of dates it builds, in which order (a pure function;
the real builds are in tests/e2e/test_demo.py)."""

from __future__ import annotations

import datetime as dt

import pytest

from outcomes.runners.pipeline import backfill_plan

D = dt.date


def test_every_day_oldest_first_then_back_to_the_as_of_marts_held() -> None:
    assert backfill_plan(D(2026, 3, 1), D(2026, 3, 3), before=D(2026, 11, 21)) == [
        D(2026, 3, 1),
        D(2026, 3, 2),
        D(2026, 3, 3),
        D(2026, 11, 21),
    ]


def test_weekly_and_the_last_date_is_never_past_to() -> None:
    assert backfill_plan(D(2026, 3, 1), D(2026, 3, 20), every=7) == [
        D(2026, 3, 1),
        D(2026, 3, 8),
        D(2026, 3, 15),
    ]


def test_no_restore_when_asked_or_when_marts_held_nothing_later() -> None:
    assert backfill_plan(D(2026, 3, 1), D(2026, 3, 1), before=D(2026, 11, 21), restore=False) == [
        D(2026, 3, 1)
    ]
    assert backfill_plan(D(2026, 3, 1), D(2026, 3, 2), before=D(2026, 3, 2)) == [D(2026, 3, 1), D(2026, 3, 2)]
    assert backfill_plan(D(2026, 3, 1), D(2026, 3, 1), before=None) == [D(2026, 3, 1)]


@pytest.mark.parametrize(
    ("first", "last", "every", "message"),
    [(D(2026, 3, 2), D(2026, 3, 1), 1, "is after --to"), (D(2026, 3, 1), D(2026, 3, 2), 0, "at least 1 day")],
)
def test_a_bad_range_is_a_clear_error(first: dt.date, last: dt.date, every: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        backfill_plan(first, last, every)
