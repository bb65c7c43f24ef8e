"""Day and timestamp arithmetic for the synthetic source systems.

The generator works on plain integers, which are cheap to compare, add and cache:

- a *day* is a proleptic Gregorian ordinal (``datetime.date.toordinal()``);
- a *timestamp* is minutes since day 1 at 00:00 UTC (``day * 1440 + minute of the day``).

Month arithmetic follows PostgreSQL's interval rules, as the warehouse does (docs/definitions.md, "Time"):
31 January + 1 month = 28/29 February. Text forms are cached per day, a cache bounded by the span
of dates the generator ever writes (a few decades), not by the number of people.
"""

from __future__ import annotations

import calendar
import datetime as dt
from functools import lru_cache

MINUTES_PER_DAY = 1440

_DATE_TEXT: dict[int, str] = {}
_CLOCK_TEXT: tuple[str, ...] = tuple(f"T{m // 60:02d}:{m % 60:02d}:00Z" for m in range(MINUTES_PER_DAY))


@lru_cache(maxsize=1 << 16)
def add_months(day: int, months: int) -> int:
    """The day ``months`` calendar months after ``day`` (negative: before), clamped to month end."""
    date = dt.date.fromordinal(day)
    years, month0 = divmod(date.month - 1 + months, 12)
    year, month = date.year + years, month0 + 1
    return dt.date(year, month, min(date.day, calendar.monthrange(year, month)[1])).toordinal()


def full_years(birth: int, on: int) -> int:
    """Age in completed years on day ``on`` of someone born on day ``birth``."""
    b, d = dt.date.fromordinal(birth), dt.date.fromordinal(on)
    return d.year - b.year - ((d.month, d.day) < (b.month, b.day))


def year_of(day: int) -> int:
    """The calendar year of ``day``."""
    return dt.date.fromordinal(day).year


def weekday(day: int) -> int:
    """Monday = 0 .. Sunday = 6 (ordinal 1, 1 January of year 1, was a Monday)."""
    return (day - 1) % 7


def date_text(day: int) -> str:
    """``YYYY-MM-DD``."""
    text = _DATE_TEXT.get(day)
    if text is None:
        text = _DATE_TEXT[day] = dt.date.fromordinal(day).isoformat()
    return text


def optional_date_text(day: int | None) -> str:
    """``YYYY-MM-DD``, or the empty string (CSV NULL) for None."""
    return "" if day is None else date_text(day)


def timestamp_text(ts: int) -> str:
    """ISO 8601 UTC with ``Z`` at minute precision: ``2026-11-21T02:00:00Z``."""
    day, minute = divmod(ts, MINUTES_PER_DAY)
    return date_text(day) + _CLOCK_TEXT[minute]
