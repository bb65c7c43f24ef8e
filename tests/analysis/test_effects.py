"""The between-arm estimates on their own, each against a computation written here from the
method's formula (never through statsmodels or scipy's test functions), and the trial's
published check values."""

from __future__ import annotations

import math
import random
from decimal import Decimal
from fractions import Fraction
from statistics import NormalDist

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from outcomes.analysis.effects import ancova, compare_proportions, compare_survival, mixed_model, rounded

Z = NormalDist().inv_cdf(0.975)


def wilson(k: int, n: int) -> tuple[float, float]:
    p = k / n
    centre = p + Z**2 / (2 * n)
    spread = Z * math.sqrt(p * (1 - p) / n + Z**2 / (4 * n**2))
    return (centre - spread) / (1 + Z**2 / n), (centre + spread) / (1 + Z**2 / n)


def newcombe(a: int, n1: int, c: int, n2: int) -> tuple[float, float]:
    """Newcombe (1998) method 10: the hybrid score interval from each arm's Wilson interval."""
    p1, p2 = a / n1, c / n2
    (l1, u1), (l2, u2) = wilson(a, n1), wilson(c, n2)
    d = p1 - p2
    return d - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2), d + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)


def fisher_two_sided(a: int, b: int, c: int, d: int) -> float:
    """Every table with the margins seen, as likely as the one seen or less (R's fisher.test)."""
    n1, k, n = a + b, a + c, a + b + c + d

    def prob(x: int) -> float:
        return math.comb(n1, x) * math.comb(n - n1, k - x) / math.comb(n, k)

    seen = prob(a)
    tables = range(max(0, k - (n - n1)), min(n1, k) + 1)
    return min(1.0, sum(prob(x) for x in tables if prob(x) <= seen * (1 + 1e-7)))


def pearson_p(a: int, b: int, c: int, d: int) -> float:
    n = a + b + c + d
    x2 = n * (a * d - b * c) ** 2 / ((a + b) * (c + d) * (a + c) * (b + d))
    return math.erfc(math.sqrt(x2 / 2))  # chi-square with 1 degree of freedom


def near(value: Decimal | None, expected: float, places: int) -> bool:
    """``value`` is ``expected`` as published to ``places`` (one unit of the last place apart at
    most, for an exact half that two computations round differently)."""
    return value is not None and abs(float(value) - expected) <= 10**-places * 1.0001


def test_the_published_twelve_month_comparison() -> None:
    """19/36 against 7/18 at 12 months (the trial's report): 'did not reach statistical significance'."""
    got = compare_proportions(19, 36, 7, 18)
    assert got["risk_difference_pct"] == Decimal("13.9")
    assert rounded(float(got["odds_ratio"]), "pct") == Decimal("1.8") and got["odds_ratio"] == Decimal(
        "1.756"
    )
    assert got["fisher_p"] == Decimal("0.3955")  # 0.395 in the report
    assert got["chi2_p"] == Decimal("0.3356")  # 0.336 in the report
    assert got["risk_difference_ci_low_pct"] < 0 < got["risk_difference_ci_high_pct"]


@pytest.mark.parametrize(
    ("a", "n1", "c", "n2", "low", "high"),
    [
        (56, 70, 48, 80, 0.0524, 0.3339),  # Newcombe (1998), Stat Med 17:873, table II, method 10
        (9, 10, 3, 10, 0.1705, 0.8090),  # ibid.
        (0, 10, 0, 20, -0.1611, 0.2775),  # ibid.
        (10, 10, 0, 20, 0.6791, 1.0000),  # ibid.
    ],
)
def test_newcombe_matches_the_published_intervals(
    a: int, n1: int, c: int, n2: int, low: float, high: float
) -> None:
    got = compare_proportions(a, n1, c, n2)
    assert near(got["risk_difference_ci_low_pct"], 100 * low, 1)
    assert near(got["risk_difference_ci_high_pct"], 100 * high, 1)


def check_against_formulas(a: int, n1: int, c: int, n2: int) -> None:
    got = compare_proportions(a, n1, c, n2)
    b, d = n1 - a, n2 - c
    low, high = newcombe(a, n1, c, n2)
    assert got["risk_difference_pct"] == rounded(100 * (Fraction(a, n1) - Fraction(c, n2)), "pct")
    assert near(got["risk_difference_ci_low_pct"], 100 * low, 1)
    assert near(got["risk_difference_ci_high_pct"], 100 * high, 1)
    if a and c:
        rr, se = (a / n1) / (c / n2), math.sqrt(1 / a - 1 / n1 + 1 / c - 1 / n2)
        assert near(got["risk_ratio"], rr, 3)
        assert near(got["risk_ratio_ci_low"], rr * math.exp(-Z * se), 3)
        assert near(got["risk_ratio_ci_high"], rr * math.exp(Z * se), 3)
    else:
        assert got["risk_ratio"] is None and got["risk_ratio_ci_low"] is None
    if min(a, b, c, d):
        odds, se = a * d / (b * c), math.sqrt(1 / a + 1 / b + 1 / c + 1 / d)
        assert near(got["odds_ratio"], odds, 3)
        assert near(got["odds_ratio_ci_low"], odds * math.exp(-Z * se), 3)
        assert near(got["odds_ratio_ci_high"], odds * math.exp(Z * se), 3)
    else:
        assert got["odds_ratio"] is None and got["odds_ratio_ci_high"] is None
    assert near(got["fisher_p"], fisher_two_sided(a, b, c, d), 4)
    if (a + c) and (b + d):
        assert near(got["chi2_p"], pearson_p(a, b, c, d), 4)
    else:
        assert got["chi2_p"] is None


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 80), st.integers(1, 80), st.data())
def test_every_two_by_two_agrees_with_the_formulas(n1: int, n2: int, data: st.DataObject) -> None:
    check_against_formulas(data.draw(st.integers(0, n1)), n1, data.draw(st.integers(0, n2)), n2)


def test_an_empty_arm_defines_nothing_and_a_wrong_count_is_refused() -> None:
    assert set(compare_proportions(0, 0, 3, 10).values()) == {None}
    with pytest.raises(ValueError, match="between 0 and its denominator"):
        compare_proportions(11, 10, 3, 10)


def logrank(days: list[int], events: list[bool], ips: list[bool]) -> tuple[float, float]:
    """The log-rank chi-square and p, summed over the distinct event times by hand."""
    o_minus_e = variance = 0.0
    for t in sorted({d for d, e in zip(days, events, strict=True) if e}):
        at_risk = [i for i, d in enumerate(days) if d >= t]
        n, n1 = len(at_risk), sum(ips[i] for i in at_risk)
        died = [i for i in at_risk if days[i] == t and events[i]]
        k, k1 = len(died), sum(ips[i] for i in died)
        o_minus_e += k1 - k * n1 / n
        if n > 1:
            variance += k * (n1 / n) * (1 - n1 / n) * (n - k) / (n - 1)
    chi2 = o_minus_e**2 / variance
    return chi2, math.erfc(math.sqrt(chi2 / 2))


def cox_efron(days: list[int], events: list[bool], ips: list[bool]) -> tuple[float, float]:
    """One binary covariate's Cox coefficient and its standard error: Newton's method on the
    partial likelihood with Efron's handling of tied event times."""
    x = [1.0 if g else 0.0 for g in ips]
    beta = 0.0
    for _ in range(50):
        score = information = 0.0
        for t in sorted({d for d, e in zip(days, events, strict=True) if e}):
            risk = [i for i, d in enumerate(days) if d >= t]
            tied = [i for i in risk if days[i] == t and events[i]]
            w = {i: math.exp(beta * x[i]) for i in risk}
            s0, s1 = sum(w[i] for i in risk), sum(w[i] * x[i] for i in risk)
            d0, d1 = sum(w[i] for i in tied), sum(w[i] * x[i] for i in tied)
            score += sum(x[i] for i in tied)
            for step in range(len(tied)):
                f = step / len(tied)
                a0, a1 = s0 - f * d0, s1 - f * d1  # x is 0 or 1: the second moment is the first
                score -= a1 / a0
                information += a1 / a0 - (a1 / a0) ** 2
        move = score / information
        beta += move
        if abs(move) < 1e-12:
            break
    return beta, 1 / math.sqrt(information)


def trial_times(seed: int, n: int = 60) -> tuple[list[int], list[bool], list[bool]]:
    rng = random.Random(seed)
    ips = [i % 2 == 0 for i in range(n)]
    days, events = [], []
    for g in ips:
        event_day = int(rng.expovariate(1 / (300 if g else 500))) + 1
        censor_day = rng.choice([731, 731, rng.randint(30, 731)])
        days.append(min(event_day, censor_day))
        events.append(event_day <= censor_day)
    # ties, as whole days give them: a few events on the same day in both arms
    days[0] = days[1] = days[2] = days[3] = 120
    events[0] = events[1] = events[2] = True
    return days, events, ips


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_logrank_and_cox_agree_with_the_hand_computations(seed: int) -> None:
    days, events, ips = trial_times(seed)
    got = compare_survival(days, events, ips)
    chi2, p = logrank(days, events, ips)
    assert near(got["logrank_chi2"], chi2, 3) and near(got["logrank_p"], p, 4)
    beta, se = cox_efron(days, events, ips)
    assert near(got["hazard_ratio"], math.exp(beta), 3)
    assert near(got["hazard_ratio_ci_low"], math.exp(beta - Z * se), 3)
    assert near(got["hazard_ratio_ci_high"], math.exp(beta + Z * se), 3)


def test_survival_without_events_or_an_arm_defines_nothing() -> None:
    assert set(compare_survival([10, 20, 30], [False] * 3, [True, False, True]).values()) == {None}
    assert set(compare_survival([10, 20], [True, True], [True, True]).values()) == {None}
    # events in one arm only: the log-rank test, but no hazard ratio
    only = compare_survival([10, 20, 30, 40], [True, True, False, False], [True, True, False, False])
    assert only["logrank_p"] is not None and only["hazard_ratio"] is None


def questionnaire(seed: int, n: int = 50, missing: float = 0.2) -> list[dict[str, object]]:
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        baseline, own = rng.gauss(40, 10), rng.gauss(0, 6)
        for time in (6, 12, 24):
            if rng.random() >= missing:
                score = 10 + 0.6 * baseline + own + rng.gauss(0, 8) - (4 if i % 2 == 0 else 0) - time / 12
                rows.append({"participant": f"P-{i:03d}", "time": time, "score": score,
                             "baseline": baseline, "is_ips": i % 2 == 0})  # fmt: skip
    return rows


@pytest.mark.parametrize("seed", [1, 2])
def test_ancova_agrees_with_least_squares_by_hand(seed: int) -> None:
    from scipy import stats

    rows = [r for r in questionnaire(seed) if r["time"] == 6]
    got = ancova(rows)
    x = np.array([[1.0, float(bool(r["is_ips"])), float(r["baseline"])] for r in rows])
    y = np.array([float(r["score"]) for r in rows])
    xtx_inv = np.linalg.inv(x.T @ x)
    beta = xtx_inv @ x.T @ y
    residual = y - x @ beta
    df = len(y) - 3
    se = math.sqrt(residual @ residual / df * xtx_inv[1, 1])
    t = float(stats.t.ppf(0.975, df))
    assert near(got["difference"], beta[1], 3)
    assert near(got["difference_ci_low"], beta[1] - t * se, 3)
    assert near(got["difference_ci_high"], beta[1] + t * se, 3)
    assert near(got["p_value"], 2 * float(stats.t.sf(abs(beta[1]) / se, df)), 4)


def reml_by_hand(rows: list[dict[str, object]], times: tuple[int, ...]) -> dict[int, tuple[float, float]]:
    """The random-intercept model's REML fit written out: the two variances that maximise the
    restricted likelihood (scipy's optimiser over their logarithms), then generalised least squares
    for the fixed effects; the arm's difference and its standard error at each time point."""
    from scipy import optimize

    people = sorted({str(r["participant"]) for r in rows})
    columns = ["const", "baseline", *(f"t{t}" for t in times[1:]), "ips", *(f"ips_t{t}" for t in times[1:])]

    def design(r: dict[str, object]) -> list[float]:
        ips = float(bool(r["is_ips"]))
        later = [float(r["time"] == t) for t in times[1:]]
        return [1.0, float(r["baseline"]), *later, ips, *(ips * v for v in later)]

    blocks = [
        (np.array([design(r) for r in rows if r["participant"] == p]),
         np.array([float(r["score"]) for r in rows if r["participant"] == p]))
        for p in people
    ]  # fmt: skip

    def gls(log_sigma2: float, log_tau2: float) -> tuple[np.ndarray, np.ndarray, float, float]:
        sigma2, tau2 = math.exp(log_sigma2), math.exp(log_tau2)
        xvx, xvy, logdet, pieces = 0, 0, 0.0, []
        for x, y in blocks:
            v = sigma2 * np.eye(len(y)) + tau2 * np.ones((len(y), len(y)))
            vinv = np.linalg.inv(v)
            xvx, xvy = xvx + x.T @ vinv @ x, xvy + x.T @ vinv @ y
            logdet += np.linalg.slogdet(v)[1]
            pieces.append((x, y, vinv))
        beta = np.linalg.solve(xvx, xvy)
        quad = sum(float((y - x @ beta) @ vinv @ (y - x @ beta)) for x, y, vinv in pieces)
        return beta, np.linalg.inv(xvx), logdet, quad

    def restricted(params: np.ndarray) -> float:
        _, cov, logdet, quad = gls(*params)
        return 0.5 * (logdet - np.linalg.slogdet(cov)[1] + quad)

    best = optimize.minimize(restricted, x0=[math.log(50), math.log(20)], method="Nelder-Mead",
                             options={"xatol": 1e-9, "fatol": 1e-11, "maxiter": 4000})  # fmt: skip
    beta, cov, _, _ = gls(*best.x)
    out = {}
    for t in times:
        w = np.zeros(len(columns))
        w[columns.index("ips")] = 1
        if t != times[0]:
            w[columns.index(f"ips_t{t}")] = 1
        out[t] = (float(w @ beta), math.sqrt(float(w @ cov @ w)))
    return out


@pytest.mark.parametrize("seed", [1, 2])
def test_the_mixed_model_agrees_with_reml_written_out(seed: int) -> None:
    rows = questionnaire(seed)
    times = (6, 12, 24)
    got = mixed_model(rows, times)
    for t, (estimate, se) in reml_by_hand(rows, times).items():
        assert got[t]["difference"] is not None
        assert abs(float(got[t]["difference"]) - estimate) < 0.002, t
        assert abs(float(got[t]["difference_ci_low"]) - (estimate - Z * se)) < 0.002, t
        assert abs(float(got[t]["difference_ci_high"]) - (estimate + Z * se)) < 0.002, t
        assert abs(float(got[t]["p_value"]) - math.erfc(abs(estimate / se) / math.sqrt(2))) < 0.0002, t


@pytest.mark.parametrize(("seed", "people", "missing"), [(3, 50, 0.2), (4, 400, 0.35)])
def test_the_mixed_model_agrees_with_statsmodels(seed: int, people: int, missing: float) -> None:
    """The same model through statsmodels' MixedLM (REML): the same fixed effects, and at its
    variances the same generalised least squares covariance."""
    import pandas as pd
    import statsmodels.formula.api as smf

    rows = questionnaire(seed, people, missing)
    times = (6, 12, 24)
    frame = pd.DataFrame(
        {
            "participant": [r["participant"] for r in rows],
            "time": pd.Categorical([r["time"] for r in rows], categories=list(times)),
            "score": [r["score"] for r in rows],
            "baseline": [r["baseline"] for r in rows],
            "ips": [float(bool(r["is_ips"])) for r in rows],
        }
    )
    fit = smf.mixedlm("score ~ baseline + C(time) * ips", frame, groups=frame["participant"]).fit(reml=True)
    sigma2, tau2 = float(fit.scale), float(fit.cov_re.iloc[0, 0])
    information = 0
    for x in fit.model.exog_li:
        v = sigma2 * np.eye(len(x)) + tau2 * np.ones((len(x), len(x)))
        information = information + x.T @ np.linalg.inv(v) @ x
    cov = np.linalg.inv(information)
    names = list(fit.fe_params.index)
    got = mixed_model(rows, times)
    for t in times:
        w = np.zeros(len(names))
        w[names.index("ips")] = 1
        if t != times[0]:
            w[names.index(f"C(time)[T.{t}]:ips")] = 1
        estimate, se = float(w @ fit.fe_params.to_numpy()), math.sqrt(float(w @ cov @ w))
        assert abs(float(got[t]["difference"]) - estimate) < 0.0011, t
        assert abs(float(got[t]["difference_ci_high"]) - (estimate + Z * se)) < 0.0011, t


def test_models_that_cannot_be_fitted_give_none() -> None:
    one_arm = [r for r in questionnaire(3) if r["is_ips"]]
    assert ancova([r for r in one_arm if r["time"] == 6])["difference"] is None
    assert all(v["difference"] is None for v in mixed_model(one_arm, (6, 12, 24)).values())
    no_baseline = [{**r, "baseline": None} for r in questionnaire(3)]
    assert ancova(no_baseline)["difference"] is None


def test_rounding_is_half_away_from_zero_and_exact_for_counts() -> None:
    assert rounded(Fraction(1, 8), "difference") == Decimal("0.125")
    assert rounded(Fraction(1, 16), "difference") == Decimal("0.063")
    assert rounded(Fraction(-1, 16), "difference") == Decimal("-0.063")
    assert rounded(2.675, "pct") == Decimal("2.7")  # the float's decimal form, not its binary one
    assert rounded(float("inf"), "ratio") is None and rounded(None, "p") is None
