"""Version timestamps: when a record version was entered, and when corrections arrive.

Most corrections follow their original within days or weeks, so in a history of several years they
land in the backlog delivery. To make the nightly and weekly deliveries carry corrections of
older records (as real extracts do), a share of corrections is stamped inside the *recent window*:
after the backlog extraction and no later than the last extraction of that source.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from outcomes.demo.dates import MINUTES_PER_DAY

#: Share of corrections that arrive in the recent window (when it has room after the original).
RECENT_SHARE = 0.35


def randint(rng: random.Random, lo: int, hi: int) -> int:
    """A uniform integer in [lo, hi]: ``rng.randint`` without its three layers of Python calls
    (it is called millions of times). ``hi - lo`` stays far below 2**53, so it is exact enough."""
    return lo + int(rng.random() * (hi - lo + 1))


def stamp(day: int, rng: random.Random, first_hour: int = 7, last_hour: int = 22) -> int:
    """A timestamp on ``day`` between ``first_hour``:00 and ``last_hour``:00 (UTC)."""
    return day * MINUTES_PER_DAY + randint(rng, first_hour * 60, last_hour * 60)


@dataclass(frozen=True, slots=True)
class Window:
    """The incremental deliveries of one source after its backlog: extraction times (start, end]."""

    start: int
    end: int

    def recent(self, rng: random.Random) -> int | None:
        """A timestamp inside the window, or None if the window is empty (no history)."""
        return randint(rng, self.start + 1, self.end) if self.start < self.end else None

    def correction(self, rng: random.Random, after: int, lo_days: int, hi_days: int) -> int:
        """A timestamp for a correction of a version stamped ``after``: in the recent window with
        probability :data:`RECENT_SHARE` (if it has room), else ``lo_days .. hi_days`` later."""
        if rng.random() < RECENT_SHARE:
            lo = max(self.start, after) + 1
            if lo <= self.end:
                return randint(rng, lo, self.end)
        return after + randint(rng, max(1, lo_days * MINUTES_PER_DAY), hi_days * MINUTES_PER_DAY)


def increasing(stamps: list[int], floor: int | None = None) -> list[int]:
    """``stamps`` made strictly increasing (and at least ``floor``), by moving later ones on."""
    out: list[int] = []
    last = (floor - 1) if floor is not None else None
    for ts in stamps:
        if last is not None and ts <= last:
            ts = last + 1
        out.append(ts)
        last = ts
    return out
