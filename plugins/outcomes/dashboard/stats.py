"""The numbers behind the dashboard's charts: intervals, small-cell suppression, survival.

Pure functions (no database, no plotting), so each rule is tested on its own.

Small cells (docs/reliability.md, "Disclosure control"): any count of 1 to ``SMALL_CELL`` - 1 people is
shown as ``<5``, never as its value, in charts and tables alike. A rate or a mean describes its numerator's
people and the rest of its denominator, so it is suppressed when either group is under 5
(``rate_is_shown``): 38 of 40 employed would otherwise say that 2 people were not.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

SMALL_CELL = 5
SUPPRESSED = "<5"
Z95 = 1.959963984540054  # the 97.5th percentile of the standard normal


def is_small(count: int | None) -> bool:
    """A count that may not be shown: 1 to 4 people. ``None`` is unknown, not small; 0 is not small
    either: an empty cell describes no one (the minimum-frequency rule of the statistical offices;
    every Kaplan-Meier curve shows its stretches without events)."""
    return count is not None and 0 < count < SMALL_CELL


def show_count(count: int | None) -> str:
    """A count as the dashboard prints it: ``<5`` for a small cell, an en dash for unknown."""
    if count is None:
        return "–"
    return SUPPRESSED if is_small(count) else str(count)


def rate_is_shown(numerator: int | None, denominator: int | None) -> bool:
    """Whether numerator/denominator may be shown: both groups it describes have 5 people or more."""
    if numerator is None or not denominator:
        return False
    return not is_small(numerator) and not is_small(denominator - numerator)


def wilson(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of ``successes / n``, in percent (Wilson 1927; Newcombe 1998).

    Unlike the Wald interval it stays inside 0..100 and is sound for small n and rates near 0 or 1.
    """
    if n <= 0:
        raise ValueError("a Wilson interval needs n > 0")
    if not 0 <= successes <= n:
        raise ValueError(f"successes must be within 0..n, got {successes} of {n}")
    p = successes / n
    z2 = z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z / (1 + z2 / n) * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    return 100 * max(0.0, centre - half), 100 * min(1.0, centre + half)


def mean_interval(mean: float, sd: float | None, n: int, z: float = Z95) -> tuple[float, float] | None:
    """A normal-approximation 95 % interval of a mean (``mean +/- z * sd / sqrt(n)``), or None."""
    if sd is None or n < 2:
        return None
    half = z * sd / math.sqrt(n)
    return mean - half, mean + half


def roundmid(count: int, base: int = SMALL_CELL) -> int:
    """A count rounded to the middle of its group of ``base`` (0 stays 0; 1-5 is 3, 6-10 is 8, ...).

    The midpoint rounding of OpenSAFELY's Kaplan-Meier action: a rounded count says which group of
    ``base`` the count is in and no more, so no count under 5 can be read off it.
    """
    if count <= 0:
        return 0
    return math.ceil(count / base) * base - base // 2


def roundmid_range(count: int, base: int = SMALL_CELL) -> tuple[int, int]:
    """The counts a reader knows ``count`` to be among, from ``roundmid(count)``."""
    if count <= 0:
        return 0, 0
    high = math.ceil(count / base) * base
    return high - base + 1, high


@dataclass(frozen=True)
class SurvivalCurve:
    """A Kaplan-Meier estimate of the share *not yet employed*, with its at-risk table, made from
    counts rounded by ``roundmid`` in whole months."""

    label: str
    times: list[float]  # months since randomisation, the step points (from 0)
    survival: list[float]  # proportion not yet employed, 0..1
    lower: list[float]
    upper: list[float]
    at_risk: dict[int, int]  # month -> people still at risk (rounded)
    events: dict[int, int]  # month -> people employed by the end of that month (rounded, cumulative)
    n: int  # everyone in the curve (exact; the page prints it under its own disclosure control)
    n_rounded: int  # the risk set the curve starts from
    drawn_until: float  # the curve is drawn only while 5 people or more are at risk


def whole_month(duration: float) -> int:
    """The month a time in months falls in, counted at its end: ``(t-1, t]`` is month ``t``."""
    return math.ceil(duration - 1e-9) if duration > 0 else 0


def kaplan_meier(
    label: str,
    subjects: Sequence[tuple[float, bool]],
    table_months: Sequence[int],
    rounding: int = SMALL_CELL,
) -> SurvivalCurve:
    """Kaplan-Meier of time to first competitive employment, right-censored at the end of each
    participant's observation, that reveals no risk set and no event count under 5.

    ``subjects``: (months, employed) per participant. Times are grouped into whole months (a time in
    month ``t``, that is in ``(t-1, t]``, counts at ``t``); the cumulative counts of events and of
    censorings at each month, and the number randomised, are rounded with ``roundmid`` (base
    ``rounding``; 1 leaves them exact); the risk sets and the events of each month come from the
    rounded counts (OpenSAFELY's approach). So a step says only that some 1-5 (rounded) people found
    work that month. Greenwood's variance of the rounded estimate gives a pointwise 95 % interval on
    the log-log scale (Kalbfleisch-Prentice), within 0..1.
    """

    def rounded(count: int) -> int:
        return roundmid(count, rounding) if rounding > 1 else count

    n = len(subjects)
    months = [whole_month(duration) for duration, _ in subjects]
    last = max(months, default=0)
    # cumulative counts by the end of each month (one pass, not one per question asked below)
    cumulative: dict[bool, list[int]] = {True: [0] * (last + 1), False: [0] * (last + 1)}
    for month, (_, employed) in zip(months, subjects, strict=True):
        cumulative[employed][month] += 1
    for counts in cumulative.values():
        for month in range(1, last + 1):
            counts[month] += counts[month - 1]

    def by(month: int, employed: bool) -> int:  # cumulative, rounded
        return rounded(cumulative[employed][min(month, last)]) if month >= 0 else 0

    def at_risk(month: int) -> int:
        return rounded(n) - by(month - 1, True) - by(month - 1, False)

    times, survival, lower, upper = [0.0], [1.0], [1.0], [1.0]
    prob, greenwood = 1.0, 0.0
    for month in range(last + 1):
        risk = at_risk(month)
        events = by(month, True) - by(month - 1, True)
        if events <= 0 or risk <= 0:
            continue
        prob *= max(0.0, 1 - events / risk)
        if risk > events:
            greenwood += events / (risk * (risk - events))
        lo, hi = _loglog_interval(prob, prob * math.sqrt(greenwood))
        times.append(float(month))
        survival.append(prob)
        lower.append(lo)
        upper.append(hi)
    if last > times[-1]:  # the flat stretch after the last event, to the last follow-up
        times.append(float(last))
        survival.append(survival[-1])
        lower.append(lower[-1])
        upper.append(upper[-1])
    return SurvivalCurve(
        label=label,
        times=times,
        survival=survival,
        lower=lower,
        upper=upper,
        at_risk={m: max(0, at_risk(m)) for m in table_months},
        events={m: by(m, True) for m in table_months},
        n=n,
        n_rounded=rounded(n),
        drawn_until=max((t for t in times if at_risk(int(t)) >= SMALL_CELL), default=0.0),
    )


def _loglog_interval(prob: float, se: float, z: float = Z95) -> tuple[float, float]:
    """The log-log (Kalbfleisch-Prentice) pointwise interval of a survival probability."""
    if prob <= 0.0 or prob >= 1.0 or se <= 0.0:
        return prob, prob
    spread = z * se / (prob * abs(math.log(prob)))
    return prob ** math.exp(spread), prob ** math.exp(-spread)
