"""The numbers behind the dashboard's charts: intervals, small-cell suppression, survival.

Pure functions (no database, no plotting), so each rule is tested on its own.

Small cells (docs/definitions.md, privacy): any count of fewer than ``SMALL_CELL`` people is shown as
``<5``, never as its value, in charts and tables alike. A rate or a mean describes its numerator's
people and the rest of its denominator, so it is suppressed when either group is under 5
(``rate_is_shown``): 38 of 40 employed would otherwise say that 2 people were not.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

SMALL_CELL = 5
SUPPRESSED = "<5"
Z95 = 1.959963984540054  # the 97.5th percentile of the standard normal


def is_small(count: int | None) -> bool:
    """A count that may not be shown (``None`` is unknown, not small)."""
    return count is not None and count < SMALL_CELL


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


@dataclass(frozen=True)
class SurvivalCurve:
    """A Kaplan-Meier estimate of the share *not yet employed*, with its at-risk table."""

    label: str
    times: list[float]  # months since randomisation, the step points (from 0)
    survival: list[float]  # proportion not yet employed, 0..1
    lower: list[float]
    upper: list[float]
    at_risk: dict[int, int]  # month -> people still at risk (not employed, still observed)
    events: dict[int, int]  # month -> people employed by then (cumulative)
    n: int
    drawn_until: float  # the curve is drawn only while 5 people or more are at risk


def at_risk_at(subjects: Iterable[tuple[float, bool]], time: float) -> int:
    """People still at risk just before ``time``: duration >= time."""
    return sum(1 for duration, _ in subjects if duration >= time)


def kaplan_meier(
    label: str, subjects: Sequence[tuple[float, bool]], table_months: Sequence[int]
) -> SurvivalCurve:
    """Kaplan-Meier of time to first competitive employment, right-censored at the end of each
    participant's observation. ``subjects``: (months, employed) per participant.

    The estimate and its Greenwood standard errors come from statsmodels (``SurvfuncRight``); the
    pointwise 95 % interval uses the log-log transform, so it stays within 0..1. The curve runs
    from (0, 1) through every event time to the last follow-up time.
    """
    from statsmodels.duration.survfunc import SurvfuncRight

    n = len(subjects)
    at_risk = {m: at_risk_at(subjects, m) for m in table_months}
    events = {m: sum(1 for d, e in subjects if e and d <= m) for m in table_months}
    times, survival, lower, upper = [0.0], [1.0], [1.0], [1.0]
    if any(e for _, e in subjects):
        fitted = SurvfuncRight([d for d, _ in subjects], [int(e) for _, e in subjects])
        for time, prob, se in zip(fitted.surv_times, fitted.surv_prob, fitted.surv_prob_se, strict=True):
            lo, hi = _loglog_interval(float(prob), float(se))
            times.append(float(time))
            survival.append(float(prob))
            lower.append(lo)
            upper.append(hi)
    last = max((d for d, _ in subjects), default=0.0)
    if last > times[-1]:  # the flat stretch after the last event, to the last follow-up
        times.append(last)
        survival.append(survival[-1])
        lower.append(lower[-1])
        upper.append(upper[-1])
    return SurvivalCurve(
        label=label,
        times=times,
        survival=survival,
        lower=lower,
        upper=upper,
        at_risk=at_risk,
        events=events,
        n=n,
        drawn_until=max((t for t in times if at_risk_at(subjects, t) >= SMALL_CELL), default=0.0),
    )


def _loglog_interval(prob: float, se: float, z: float = Z95) -> tuple[float, float]:
    """The log-log (Kalbfleisch-Prentice) pointwise interval of a survival probability."""
    if prob <= 0.0 or prob >= 1.0 or se <= 0.0:
        return prob, prob
    spread = z * se / (prob * abs(math.log(prob)))
    return prob ** math.exp(spread), prob ** math.exp(-spread)
