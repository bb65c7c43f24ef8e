"""The dashboard's numbers on their own: Wilson intervals, small cells, Kaplan-Meier."""

from __future__ import annotations

import pytest

from outcomes.dashboard.stats import (
    kaplan_meier,
    mean_interval,
    rate_is_shown,
    roundmid,
    roundmid_range,
    show_count,
    wilson,
)


@pytest.mark.parametrize(
    ("k", "n", "low", "high"),
    [
        (81, 263, 25.53, 36.62),  # Newcombe (1998), Stat Med 17:857, table I, method 3
        (15, 148, 6.24, 16.05),  # ibid.
        (0, 20, 0.0, 16.11),  # ibid.: no successes still gives a real upper bound
        (1, 29, 0.61, 17.18),  # ibid.
    ],
)
def test_wilson_matches_the_published_intervals(k: int, n: int, low: float, high: float) -> None:
    lo, hi = wilson(k, n)
    assert lo == pytest.approx(low, abs=0.01) and hi == pytest.approx(high, abs=0.01)


def test_wilson_stays_inside_0_and_100_and_refuses_nonsense() -> None:
    assert wilson(10, 10)[1] == pytest.approx(100.0)
    assert wilson(0, 10)[0] == 0.0
    with pytest.raises(ValueError, match="n > 0"):
        wilson(0, 0)
    with pytest.raises(ValueError, match=r"within 0\.\.n"):
        wilson(11, 10)


def test_counts_under_5_are_never_shown() -> None:
    assert [show_count(n) for n in (0, 1, 4, 5, 36)] == ["0", "<5", "<5", "5", "36"]  # 0 describes no one
    assert show_count(None) == "–"  # unknown is not a small cell


def test_a_rate_is_suppressed_when_either_group_it_describes_is_small() -> None:
    assert rate_is_shown(19, 36)
    assert not rate_is_shown(4, 36)  # 4 employed
    assert not rate_is_shown(34, 38)  # would say that 4 were not
    assert not rate_is_shown(5, 0) and not rate_is_shown(None, 10)


def test_mean_interval() -> None:
    lo, hi = mean_interval(50.0, 10.0, 100)  # type: ignore[misc]
    assert (lo, hi) == (pytest.approx(48.04, abs=0.01), pytest.approx(51.96, abs=0.01))
    assert mean_interval(50.0, None, 10) is None and mean_interval(50.0, 1.0, 1) is None


def test_kaplan_meier_by_hand() -> None:
    """Five people: employed at 1, 2 and 3 months; censored at 2 and 4 months.
    S(1) = 4/5; S(2) = 4/5 * 3/4 = 0.6 (the one censored at 2 is still at risk at 2);
    S(3) = 0.6 * 1/2 = 0.3; S(4) = 0.3 (a censoring is no event)."""
    subjects = [(1.0, True), (2.0, True), (2.0, False), (3.0, True), (4.0, False)]
    curve = kaplan_meier("IPS", subjects, table_months=(0, 2, 3), rounding=1)
    by_time = dict(zip(curve.times, curve.survival, strict=True))
    assert by_time[1.0] == pytest.approx(0.8)
    assert by_time[2.0] == pytest.approx(0.6)
    assert by_time[3.0] == pytest.approx(0.3)
    assert by_time[4.0] == pytest.approx(0.3)
    assert curve.at_risk == {0: 5, 2: 4, 3: 2}
    assert curve.events == {0: 0, 2: 2, 3: 3}
    assert curve.n == 5
    assert curve.drawn_until == 1.0  # at 2 months only 4 remain at risk: the curve stops before
    assert all(lo <= s <= hi for lo, s, hi in zip(curve.lower, curve.survival, curve.upper, strict=True))


def test_midpoint_rounding_keeps_only_the_group_of_5() -> None:
    assert [roundmid(n) for n in (0, 1, 4, 5, 6, 10, 11, 38)] == [0, 3, 3, 3, 8, 8, 13, 38]
    assert [roundmid_range(n) for n in (0, 3, 38, 40)] == [(0, 0), (1, 5), (36, 40), (36, 40)]
    assert all(roundmid_range(n)[0] <= n <= roundmid_range(n)[1] for n in range(200))


def test_unrounded_kaplan_meier_in_whole_months_agrees_with_statsmodels() -> None:
    """With rounding off, the estimate and its Greenwood error equal statsmodels' on the same
    whole-month times (an independent implementation)."""
    import math
    import random

    from statsmodels.duration.survfunc import SurvfuncRight

    rng = random.Random(7)
    subjects = [(rng.uniform(0.1, 24), rng.random() < 0.5) for _ in range(60)]
    curve = kaplan_meier("x", subjects, (0, 12), rounding=1)
    fitted = SurvfuncRight([math.ceil(d) for d, _ in subjects], [int(e) for _, e in subjects])
    expected = dict(zip(fitted.surv_times, fitted.surv_prob, strict=True))
    got = dict(zip(curve.times[1:], curve.survival[1:], strict=False))
    for time, prob in expected.items():
        assert got[float(time)] == pytest.approx(prob)
    # the interval is the log-log transform of statsmodels' Greenwood error, at every step
    for time, prob, se in zip(fitted.surv_times, fitted.surv_prob, fitted.surv_prob_se, strict=True):
        at = curve.times.index(float(time))
        if 0 < prob < 1:
            spread = 1.959963984540054 * se / (prob * abs(math.log(prob)))
            assert curve.lower[at] == pytest.approx(prob ** math.exp(spread))
            assert curve.upper[at] == pytest.approx(prob ** math.exp(-spread))


def test_the_rounded_curve_steps_only_by_rounded_groups_of_people() -> None:
    """Every count the curve is made of is 0 or the middle of a group of 5, so no step or table
    entry says how many (1-5) people found work in a month."""
    import random

    rng = random.Random(11)
    subjects = [(rng.uniform(0.1, 24), rng.random() < 0.6) for _ in range(41)]
    curve = kaplan_meier("x", subjects, (0, 3, 6, 12, 18, 24))
    assert curve.n_rounded == 43 and curve.at_risk[0] == 43
    assert all(v == 0 or v % 5 == 3 for v in curve.events.values())
    exact = kaplan_meier("x", subjects, (0, 3, 6, 12, 18, 24), rounding=1)
    assert curve.events != exact.events  # rounding changed what is printed

    # the rounded curve stays close to the exact one (within 0.1 at each table month)
    def at(c: object, month: float) -> float:
        steps = [s for t, s in zip(c.times, c.survival, strict=True) if t <= month]  # type: ignore[attr-defined]
        return steps[-1]

    for month in (3, 6, 12):
        assert at(curve, month) == pytest.approx(at(exact, month), abs=0.1)
