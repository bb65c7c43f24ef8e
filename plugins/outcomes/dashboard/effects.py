"""The dashboard's between-arm comparisons (docs/dashboards-and-locks.md): the risk differences
across horizons as a forest plot, the time-to-employment comparison, and the adjusted secondary
outcome differences, each labelled with its method.

Disclosure control: an estimate is a function of its counts, so it is shown only where the page
shows every count it comes from (each arm's employed and denominator, as the rates are), and
never for a group of fewer than 5; the time-to-employment comparison only where its curve is
drawn and each arm's number employed within 24 months and randomised are shown; a questionnaire
difference only where each arm has 5 or more analysed (its n is not printed).
"""

from __future__ import annotations

from typing import Any

from outcomes.dashboard.data import HORIZONS
from outcomes.dashboard.disclosure import Protection
from outcomes.dashboard.figures import rate_cell
from outcomes.dashboard.markup import Page, e, fragment, table
from outcomes.dashboard.numbers import key, randomised_key
from outcomes.dashboard.stats import SMALL_CELL

ANALYSES = {"complete_case": "complete case", "itt": "intention to treat"}
#: The fewest analysed per arm for a questionnaire difference to be shown.
FEWEST = SMALL_CELL


def _counts_shown(shown: Protection, arms: list[str], h: int, analysis: str) -> bool:
    """Whether the page shows each arm's rate behind a comparison (the rates' own rule, rate_cell)."""
    return all(
        rate_cell(
            shown,
            key(arm, "employed", h),
            key(arm, "known", h) if analysis == "complete_case" else randomised_key(shown, arm, h),
        )["shown"]
        for arm in arms
    )


def note(text: str) -> str:
    return fragment("note", text=text)


def _interval(low: Any, high: Any, unit: str = "") -> str:
    return "–" if low is None or high is None else f"{low}{unit} to {high}{unit}"


def _estimate(r: dict[str, Any], name: str, low: str, high: str) -> str:
    """An estimate with its interval, or a dash where it is undefined."""
    return "–" if r[name] is None else f"{r[name]} ({_interval(r[low], r[high])})"


def _p(value: Any) -> str:
    return "–" if value is None else ("< 0.0001" if value == 0 else str(value))


def effects_section(
    page: Page,
    study: str,
    effects: list[dict[str, Any]],
    survival: list[dict[str, Any]],
    secondary: list[dict[str, Any]],
    arms: list[str],
    shown: Protection,
) -> None:
    """IPS against TAU: the forest plot and its table, the survival comparison, the secondary outcomes."""
    import plotly.graph_objects as go

    if sorted(arms) != ["IPS", "TAU"]:
        page.add(note("One arm: nothing to compare."))
        return
    if not effects:
        page.add(note("No between-arm estimates in this build (published before they were)."))
        return
    rows: list[list[Any]] = []
    points: dict[str, list[dict[str, Any]]] = {a: [] for a in ANALYSES}
    for r in sorted(effects, key=lambda r: (r["analysis"], r["horizon_months"])):
        h, analysis = r["horizon_months"], r["analysis"]
        if not _counts_shown(shown, arms, h, analysis):
            rows.append([ANALYSES[analysis], h, "not shown (its counts are withheld)", "–", "–", "–", "–"])
            continue
        if r["risk_difference_pct"] is not None:
            points[analysis].append(r)
        rows.append(
            [
                ANALYSES[analysis],
                h,
                _estimate(
                    r, "risk_difference_pct", "risk_difference_ci_low_pct", "risk_difference_ci_high_pct"
                ),
                _estimate(r, "risk_ratio", "risk_ratio_ci_low", "risk_ratio_ci_high"),
                _estimate(r, "odds_ratio", "odds_ratio_ci_low", "odds_ratio_ci_high"),
                _p(r["fisher_p"]),
                _p(r["chi2_p"]),
            ]
        )
    fig = go.Figure()
    for offset, (analysis, label) in zip((-0.12, 0.12), ANALYSES.items(), strict=True):
        mine = points[analysis]
        fig.add_trace(
            go.Scatter(
                name=label,
                x=[float(r["risk_difference_pct"]) for r in mine],
                y=[HORIZONS.index(r["horizon_months"]) + offset for r in mine],
                mode="markers",
                marker={"size": 9, "symbol": "square" if analysis == "itt" else "circle"},
                error_x={
                    "type": "data",
                    "symmetric": False,
                    "array": [
                        float(r["risk_difference_ci_high_pct"] - r["risk_difference_pct"]) for r in mine
                    ],
                    "arrayminus": [
                        float(r["risk_difference_pct"] - r["risk_difference_ci_low_pct"]) for r in mine
                    ],
                },
                hovertemplate="%{x:.1f} points<extra>" + e(label) + "</extra>",
            )
        )
    fig.add_vline(x=0, line_dash="dot", line_color="#888")
    fig.update_layout(
        height=320,
        template="plotly_white",
        margin={"t": 20, "b": 40, "l": 90, "r": 10},
        legend={"orientation": "h", "y": -0.2},
        xaxis={"title": "IPS minus TAU, percentage points (95 % CI)"},
        yaxis={
            "tickvals": list(range(len(HORIZONS))),
            "ticktext": [f"{h} months" for h in HORIZONS],
            "autorange": "reversed",
        },
    )
    page.chart(
        f"effects-{study}",
        fig,
        "Risk difference in employment within each horizon, IPS minus TAU, with Newcombe's hybrid "
        "score 95 % interval; a comparison whose counts the page withholds is not drawn.",
    )
    page.add(
        table(
            [
                "analysis",
                "months",
                "risk difference, points (95 % CI)",
                "risk ratio (95 % CI)",
                "odds ratio (95 % CI)",
                "Fisher's exact p",
                "chi-square p",
            ],
            rows,
            "numbers",
        )
    )
    page.add(
        note(
            "Methods: risk difference with Newcombe's hybrid score interval; risk ratio with the Katz log "
            "interval; odds ratio with Woolf's logit interval; Fisher's exact test (two-sided) and "
            "Pearson's chi-square without continuity correction. Complete case: among those whose "
            "employment is known; intention to treat: everyone randomised, unknown as not employed."
        )
    )
    _survival(page, survival, arms, shown)
    _secondary(page, secondary)


def _survival(page: Page, survival: list[dict[str, Any]], arms: list[str], shown: Protection) -> None:
    # the log-rank p and the hazard ratio depend on everyone's times: shown only where the page
    # shows each arm's employed by 24 months and its number randomised (the rates' rule)
    if not survival or not shown.curve or not _counts_shown(shown, arms, 24, "itt"):
        page.add(
            fragment("note", text="Time to first employment: not compared here (its counts are not shown).")
        )
        return
    (r,) = survival
    if r["logrank_p"] is None:
        return
    hazard = (
        "hazard ratio IPS/TAU " + _estimate(r, "hazard_ratio", "hazard_ratio_ci_low", "hazard_ratio_ci_high")
        if r["hazard_ratio"] is not None
        else "no hazard ratio (an arm has no event)"
    )
    page.add(
        note(
            f"Time to first employment within 24 months: log-rank p = {_p(r['logrank_p'])}; {hazard}, "
            "from a Cox model with the arm as its only covariate (Efron's ties). A hazard ratio above 1: "
            "IPS participants found work sooner."
        )
    )


def _secondary(page: Page, secondary: list[dict[str, Any]]) -> None:
    from outcomes.transform.seeds import prom_measures

    labels = {m.measure: m.label for m in prom_measures()}
    rows = []
    for r in sorted(secondary, key=lambda r: (r["measure"], r["method"], r["timepoint_months"])):
        visible = r["n_ips"] >= FEWEST and r["n_tau"] >= FEWEST and r["difference"] is not None
        rows.append(
            [
                labels.get(r["measure"], r["measure"]),
                "ANCOVA" if r["method"] == "ancova" else "mixed model",
                r["timepoint_months"],
                _estimate(r, "difference", "difference_ci_low", "difference_ci_high")
                if visible
                else "not shown (fewer than 5 analysed in an arm, or not fitted)",
                _p(r["p_value"]) if visible else "–",
            ]
        )
    if not rows:
        return
    header = ["secondary outcome", "method", "months", "IPS minus TAU (95 % CI)", "p"]
    page.add(table(header, rows, "numbers"))
    page.add(
        note(
            "Secondary outcomes, exploratory (no correction for multiple comparisons): the difference "
            "IPS minus TAU adjusted for the baseline score. ANCOVA: least squares among those with both "
            "scores; mixed model: one random-intercept model over the 6, 12 and 24-month scores (REML). "
            "Lower is better for ODI, NRS and HSCL-25, higher for the EQ-5D index and EQ VAS."
        )
    )
