"""Between-arm estimates (docs/analysts-guide.md, "Effects"): pure functions of the counts or rows
they are given, through scipy and statsmodels; every method is named where it is used.

IPS is compared with TAU: differences are IPS minus TAU, ratios IPS over TAU. Intervals are 95 %.
A quantity that the data cannot define (a ratio with a zero cell, a model with no one in an arm)
is None, never 0. Values are rounded as published (:data:`PLACES`), half away from zero like
PostgreSQL's ``round``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from typing import Any

#: Two-sided 95 % intervals.
ALPHA = 0.05

#: Decimal places of each kind of value, as published (docs/analysts-guide.md, "Effects").
PLACES = {"pct": 1, "ratio": 3, "p": 4, "statistic": 3, "difference": 3}


def rounded(value: float | Fraction | None, kind: str) -> Decimal | None:
    """``value`` to the published places of ``kind``, half away from zero; None stays None, and
    so does a value that is not finite (an interval that has no end). A :class:`Fraction` (a
    point estimate of counts) is rounded exactly, as PostgreSQL rounds the same ratio."""
    if value is None:
        return None
    if isinstance(value, Fraction):
        exact = Decimal(value.numerator) / Decimal(value.denominator)
    elif math.isfinite(value):
        exact = Decimal(repr(float(value)))
    else:
        return None
    return exact.quantize(Decimal(1).scaleb(-PLACES[kind]), rounding=ROUND_HALF_UP)


def compare_proportions(employed_ips: int, n_ips: int, employed_tau: int, n_tau: int) -> dict[str, Any]:
    """Employment in IPS against TAU, from the two arms' counts (a 2 x 2 table).

    - risk difference in percentage points with Newcombe's hybrid score interval (method 10 of
      Newcombe 1998: Wilson intervals of each arm combined);
    - risk ratio with the Katz log interval; odds ratio (the sample's, ad/bc) with Woolf's logit
      interval: None when a cell they divide by or take the log of is 0;
    - Fisher's exact test, two-sided (the tables as likely as or less likely than the one seen);
    - Pearson's chi-square without continuity correction: None when an expected count is 0 (a
      row or column of the table is empty).

    An arm with no one in it defines nothing: every value is None.
    """
    from scipy import stats
    from statsmodels.stats.proportion import confint_proportions_2indep

    out: dict[str, Any] = dict.fromkeys(
        (
            "risk_difference_pct",
            "risk_difference_ci_low_pct",
            "risk_difference_ci_high_pct",
            "risk_ratio",
            "risk_ratio_ci_low",
            "risk_ratio_ci_high",
            "odds_ratio",
            "odds_ratio_ci_low",
            "odds_ratio_ci_high",
            "fisher_p",
            "chi2_p",
        )
    )
    for count, n in ((employed_ips, n_ips), (employed_tau, n_tau)):
        if not 0 <= count <= n:
            raise ValueError(f"{count} employed of {n}: a count must lie between 0 and its denominator")
    if n_ips == 0 or n_tau == 0:
        return out
    a, b, c, d = employed_ips, n_ips - employed_ips, employed_tau, n_tau - employed_tau

    def interval(compare: str, method: str) -> tuple[float, float]:
        low, high = confint_proportions_2indep(
            a, n_ips, c, n_tau, method=method, compare=compare, alpha=ALPHA
        )
        return float(low), float(high)

    low, high = interval("diff", "newcomb")
    out["risk_difference_pct"] = rounded(100 * (Fraction(a, n_ips) - Fraction(c, n_tau)), "pct")
    out["risk_difference_ci_low_pct"] = rounded(100 * low, "pct")
    out["risk_difference_ci_high_pct"] = rounded(100 * high, "pct")
    if a > 0 and c > 0:
        low, high = interval("ratio", "log")
        out["risk_ratio"] = rounded(Fraction(a * n_tau, c * n_ips), "ratio")
        out["risk_ratio_ci_low"], out["risk_ratio_ci_high"] = rounded(low, "ratio"), rounded(high, "ratio")
    if min(a, b, c, d) > 0:
        low, high = interval("odds-ratio", "logit")
        out["odds_ratio"] = rounded(Fraction(a * d, b * c), "ratio")
        out["odds_ratio_ci_low"], out["odds_ratio_ci_high"] = rounded(low, "ratio"), rounded(high, "ratio")
    table = [[a, b], [c, d]]
    out["fisher_p"] = rounded(float(stats.fisher_exact(table, alternative="two-sided").pvalue), "p")
    if a + c > 0 and b + d > 0:
        result = stats.chi2_contingency(table, correction=False)
        out["chi2_p"] = rounded(float(result.pvalue), "p")
    return out


def compare_survival(
    days: Sequence[float], is_event: Sequence[bool], is_ips: Sequence[bool]
) -> dict[str, Any]:
    """Time to an event in IPS against TAU, from one row per participant.

    - the log-rank test (statsmodels' ``survdiff``): its chi-square (1 degree of freedom) and p;
    - the Cox proportional hazards model with the arm as its only covariate (statsmodels'
      ``PHReg``, Efron's method for tied times, as R's ``coxph``): the hazard ratio IPS over TAU
      with its Wald 95 % interval.

    None where the data define nothing: an arm with no one, or no event at all.
    """
    import numpy as np
    from statsmodels.duration.hazard_regression import PHReg
    from statsmodels.duration.survfunc import survdiff

    out: dict[str, Any] = dict.fromkeys(
        ("logrank_chi2", "logrank_p", "hazard_ratio", "hazard_ratio_ci_low", "hazard_ratio_ci_high")
    )
    time = np.asarray(days, dtype=float)
    status = np.asarray(is_event, dtype=float)
    group = np.asarray(is_ips, dtype=float)
    if not (time.size == status.size == group.size):
        raise ValueError("days, is_event and is_ips must have one value per participant")
    if group.sum() == 0 or group.sum() == group.size or status.sum() == 0:
        return out
    chi2, p = survdiff(time, status, group)
    out["logrank_chi2"], out["logrank_p"] = rounded(float(chi2), "statistic"), rounded(float(p), "p")
    if status[group == 1].sum() == 0 or status[group == 0].sum() == 0:
        return out  # no event in an arm: the hazard ratio is 0 or infinite, and has no interval
    fit = PHReg(time, group[:, None], status=status, ties="efron").fit(disp=False)
    beta, se = float(fit.params[0]), float(fit.bse[0])
    z = _z()
    out["hazard_ratio"] = rounded(math.exp(beta), "ratio")
    out["hazard_ratio_ci_low"] = rounded(math.exp(beta - z * se), "ratio")
    out["hazard_ratio_ci_high"] = rounded(math.exp(beta + z * se), "ratio")
    return out


def _z() -> float:
    from scipy import stats

    return float(stats.norm.ppf(1 - ALPHA / 2))


def ancova(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The difference between arms at one time point, adjusted for baseline (ANCOVA): ordinary
    least squares of ``score ~ ips + baseline`` over the participants with both (rows of
    ``score``, ``baseline`` and ``is_ips``); the coefficient of ``ips`` with its t-based 95 %
    interval and p. None when an arm has fewer than two or the model has no residual degrees of
    freedom."""
    import numpy as np
    import statsmodels.api as sm

    out: dict[str, Any] = dict.fromkeys(("difference", "difference_ci_low", "difference_ci_high", "p_value"))
    used = [r for r in rows if r["score"] is not None and r["baseline"] is not None]
    ips = np.array([float(r["is_ips"]) for r in used])
    if ips.sum() < 2 or (ips.size - ips.sum()) < 2 or ips.size <= 3:
        return out
    exog = sm.add_constant(np.column_stack([ips, [float(r["baseline"]) for r in used]]), has_constant="add")
    fit = sm.OLS(np.array([float(r["score"]) for r in used]), exog).fit()
    low, high = fit.conf_int(alpha=ALPHA)[1]
    return {
        "difference": rounded(float(fit.params[1]), "difference"),
        "difference_ci_low": rounded(float(low), "difference"),
        "difference_ci_high": rounded(float(high), "difference"),
        "p_value": rounded(float(fit.pvalues[1]), "p"),
    }


def random_intercept_reml(x: Any, y: Any, groups: Any) -> tuple[Any, Any]:
    """REML fit of ``y = x b + u_group + e`` with u ~ N(0, tau^2) and e ~ N(0, sigma^2): the fixed
    effects b and their covariance (X' V^-1 X)^-1 at the REML variances (what R's nlme and lme4
    report).

    Written out rather than through statsmodels' ``MixedLM``, for its cost: ``MixedLM`` loops over
    the participants in Python at every step of its optimiser (7 to 13 s per measure at 10,000
    participants, measured; it grows with the participants), while a random intercept's likelihood
    depends on the data only through sums per participant: with lambda = tau^2 / sigma^2, a
    participant with n scores has V^-1 = (I - lambda / (1 + n lambda) J) / sigma^2, so X' V^-1 X,
    X' V^-1 y and y' V^-1 y are the plain cross-products less one correction per group size. The
    restricted likelihood, profiled over sigma^2, is then a function of lambda alone, minimised on a
    grid of log lambda and refined by Brent's method (lambda = 0, no participant effect, included).
    The tests hold it to statsmodels' ``MixedLM`` and to a REML fit written from the definition.
    """
    import numpy as np
    from scipy import optimize

    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    _, index = np.unique(np.asarray(groups), return_inverse=True)
    sizes = np.bincount(index)
    column_sums = np.zeros((sizes.size, x.shape[1]))
    np.add.at(column_sums, index, x)
    y_sums = np.bincount(index, weights=y)
    n, p = x.shape
    by_size = []
    for size in np.unique(sizes):
        at = sizes == size
        s, t = column_sums[at], y_sums[at]
        by_size.append((float(size), int(at.sum()), s.T @ s, s.T @ t, float(t @ t)))

    def profiled(log_lambda: float) -> tuple[float, Any, Any, float]:
        lam = math.exp(log_lambda)
        xvx, xvy, yvy, log_det_h = x.T @ x, x.T @ y, float(y @ y), 0.0
        for size, count, ss, st, tt in by_size:
            shrink = lam / (1 + size * lam)
            xvx, xvy, yvy = xvx - shrink * ss, xvy - shrink * st, yvy - shrink * tt
            log_det_h += count * math.log1p(size * lam)
        beta = np.linalg.solve(xvx, xvy)
        sigma2 = (yvy - float(beta @ xvy)) / (n - p)
        restricted = log_det_h + float(np.linalg.slogdet(xvx)[1]) + (n - p) * math.log(sigma2)
        return restricted, beta, xvx, sigma2

    grid = np.arange(-20.0, 12.5, 0.5)
    start = float(grid[int(np.argmin([profiled(v)[0] for v in grid]))])
    best = optimize.minimize_scalar(
        lambda v: profiled(v)[0],
        bounds=(max(start - 0.5, -20.0), min(start + 0.5, 12.0)),
        method="bounded",
        options={"xatol": 1e-10},
    )
    _, beta, xvx, sigma2 = profiled(float(best.x))
    return beta, sigma2 * np.linalg.inv(xvx)


def mixed_model(rows: Sequence[Mapping[str, Any]], timepoints: Sequence[int]) -> dict[int, dict[str, Any]]:
    """The difference between arms at each follow-up time point from one linear mixed model over
    all of them: ``score ~ baseline + time + ips + ips x time`` (time as categories) with a random
    intercept per participant, fitted by REML (:func:`random_intercept_reml`), over every
    follow-up score of the participants with a baseline (rows of ``participant``, ``time``,
    ``score``, ``baseline``, ``is_ips``). The difference at time t is the arm's effect at t (its
    main effect plus its interaction with t), with a Wald 95 % interval and p from the fixed
    effects' covariance. Every participant with a baseline and one follow-up score counts: the
    model's answer under missing at random.

    None at every time point when the model cannot be fitted: fewer than two participants in an
    arm, a time point with no one of an arm, or a design without residual degrees of freedom.
    """
    import numpy as np
    from scipy import stats

    names = ("difference", "difference_ci_low", "difference_ci_high", "p_value")
    empty = {t: dict.fromkeys(names) for t in timepoints}
    used = [
        r for r in rows if r["score"] is not None and r["baseline"] is not None and r["time"] in timepoints
    ]
    ips = np.array([float(bool(r["is_ips"])) for r in used])
    time = np.array([int(r["time"]) for r in used])
    people: dict[bool, set[Any]] = {bool(r["is_ips"]): set() for r in used}
    for r in used:
        people[bool(r["is_ips"])].add(r["participant"])
    cells = {(int(t), bool(a)) for t, a in zip(time, ips, strict=True)}
    if len(people) < 2 or min(len(p) for p in people.values()) < 2:
        return empty
    if len(cells) < 2 * len(timepoints):
        return empty
    later = [(time == t).astype(float) for t in timepoints[1:]]
    design = np.column_stack(
        [np.ones(len(used)), [float(r["baseline"]) for r in used], *later, ips, *(ips * d for d in later)]
    )
    if design.shape[0] <= design.shape[1]:
        return empty
    try:
        beta, cov = random_intercept_reml(
            design, [float(r["score"]) for r in used], [r["participant"] for r in used]
        )
    except (np.linalg.LinAlgError, ValueError, ZeroDivisionError):
        return empty
    arm = 2 + len(later)  # the column of ips: after the constant, the baseline and the time terms
    z = _z()
    out: dict[int, dict[str, Any]] = {}
    for i, t in enumerate(timepoints):
        weights = np.zeros(design.shape[1])
        weights[arm] = 1
        if i > 0:
            weights[arm + i] = 1
        estimate = float(weights @ beta)
        se = math.sqrt(float(weights @ cov @ weights))
        if not (math.isfinite(se) and se > 0):
            return empty
        p = 2 * float(stats.norm.sf(abs(estimate) / se))
        out[t] = {
            "difference": rounded(estimate, "difference"),
            "difference_ci_low": rounded(estimate - z * se, "difference"),
            "difference_ci_high": rounded(estimate + z * se, "difference"),
            "p_value": rounded(p, "p"),
        }
    return out
