"""The dashboard's charts and their tables, one function per figure: employment within each
horizon (the published Figure 2), time to first employment (Kaplan-Meier), month-by-month work
participation, questionnaire trajectories, and the CONSORT flow.

Every count is printed through the study's ``Protection`` (``outcomes.dashboard.numbers``): its
value, ``<5`` or ``×``; a rate, a share or an interval is drawn only when the counts it is made
of are shown. The Kaplan-Meier curves are made from rounded counts (``stats.kaplan_meier``)."""

from __future__ import annotations

from typing import Any

from outcomes.dashboard.data import HORIZONS
from outcomes.dashboard.disclosure import Protection
from outcomes.dashboard.markup import Page, e, fragment, table
from outcomes.dashboard.numbers import key, randomised_key
from outcomes.dashboard.stats import (
    SMALL_CELL,
    kaplan_meier,
    mean_interval,
    rate_is_shown,
    show_count,
    wilson,
)
from outcomes.transform.seeds import prom_measures, work_participation_states

ARM_COLOURS = {"IPS": "#1b6ca8", "TAU": "#d1495b"}


OTHER_ARM_COLOURS = ("#2a9d8f", "#e9c46a", "#6d597a")


KM_TABLE_MONTHS = (0, 3, 6, 12, 18, 24)


STATE_TABLE_MONTHS = (0, 6, 12, 18, 24)


def arm_colour(arm: str, arms: list[str]) -> str:
    if arm in ARM_COLOURS:
        return ARM_COLOURS[arm]
    return OTHER_ARM_COLOURS[arms.index(arm) % len(OTHER_ARM_COLOURS)]


def _transparent(colour: str, alpha: float) -> str:
    red, green, blue = (int(colour[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({red},{green},{blue},{alpha})"


def pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f} %"


def rate_cell(shown: Protection, numerator: str, denominator: str) -> dict[str, Any]:
    """A rate as the dashboard shows it: value and Wilson interval when both its counts are shown
    (and each group it describes has 5 people or more), else the counts as printed."""
    k, n = shown.value(numerator), shown.value(denominator)
    if denominator in shown.grid.cells and shown.grid.cells[denominator].value == 0:
        return {"shown": False, "text": "no one known yet", "value": None, "lo": None, "hi": None}
    if k is None or n is None or not rate_is_shown(k, n):
        text = f"{shown.text(numerator)}/{shown.text(denominator)}"
        return {"shown": False, "text": text, "value": None, "lo": None, "hi": None}
    lo, hi = wilson(k, n)
    value = 100 * k / n
    return {
        "shown": True,
        "text": f"{value:.1f} % ({k}/{n})",
        "label": f"{value:.1f} %<br>{k}/{n}",
        "value": value,
        "lo": lo,
        "hi": hi,
    }


def employment_figure(
    page: Page, study: str, rates: list[dict[str, Any]], arms: list[str], shown: Protection
) -> None:
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    fig = make_subplots(
        rows=1,
        cols=2,
        shared_yaxes=True,
        horizontal_spacing=0.04,
        subplot_titles=("Complete case: employed / known", "Intention to treat: employed / randomised"),
    )
    rows = []
    for arm in arms:
        mine = {r["horizon_months"]: r for r in rates if r["arm"] == arm}
        for col, denominator in enumerate(("known", "randomised"), start=1):
            cells = [
                rate_cell(
                    shown,
                    key(arm, "employed", h),
                    key(arm, "known", h) if denominator == "known" else randomised_key(shown, arm, h),
                )
                for h in HORIZONS
            ]
            fig.add_trace(
                go.Bar(
                    name=arm,
                    legendgroup=arm,
                    showlegend=col == 1,
                    x=[f"{h} months" for h in HORIZONS],
                    y=[c["value"] if c["shown"] else 0 for c in cells],
                    marker_color=arm_colour(arm, arms),
                    error_y={
                        "type": "data",
                        "symmetric": False,
                        "array": [c["hi"] - c["value"] if c["shown"] else 0 for c in cells],
                        "arrayminus": [c["value"] - c["lo"] if c["shown"] else 0 for c in cells],
                        "thickness": 1.2,
                        "width": 3,
                    },
                    text=[c.get("label", c["text"]) for c in cells],
                    textposition=["inside" if c["shown"] else "outside" for c in cells],
                    insidetextanchor="start",
                    cliponaxis=False,
                    textfont={"size": 11},
                    hovertemplate="%{x}: %{text}<extra>" + e(arm) + "</extra>",
                ),
                row=1,
                col=col,
            )
        for h in HORIZONS:
            if h not in mine:
                continue
            employed, known, randomised = (
                key(arm, "employed", h),
                key(arm, "known", h),
                randomised_key(shown, arm, h),
            )
            cc, itt = rate_cell(shown, employed, known), rate_cell(shown, employed, randomised)
            rows.append(
                [
                    arm,
                    h,
                    shown.text(randomised),
                    shown.text(known),
                    shown.text(employed),
                    cc["text"],
                    f"{cc['lo']:.1f}–{cc['hi']:.1f}" if cc["shown"] else "–",
                    itt["text"],
                    f"{itt['lo']:.1f}–{itt['hi']:.1f}" if itt["shown"] else "–",
                ]
            )
    fig.update_layout(
        barmode="group",
        height=430,
        uniformtext={"minsize": 10, "mode": "show"},
        margin={"t": 60, "b": 40, "l": 50, "r": 10},
        legend={"orientation": "h", "y": -0.12},
        template="plotly_white",
    )
    fig.update_yaxes(title_text="employed within the horizon (%)", range=[0, 110], row=1, col=1)
    fig.update_yaxes(range=[0, 110], row=1, col=2)
    page.chart(
        f"employment-{study}",
        fig,
        "Bars: share employed in competitive work within 3–24 months of randomisation; whiskers: 95 % "
        "Wilson intervals. Complete case counts only participants whose status at the horizon is known.",
    )
    page.add(
        table(
            [
                "arm",
                "months",
                "randomised",
                "known",
                "employed",
                "complete case",
                "95 % CI",
                "ITT",
                "95 % CI",
            ],
            rows,
            "numbers",
        )
    )


def survival_figure(
    page: Page, study: str, survival: list[dict[str, Any]], arms: list[str], shown: Protection
) -> None:
    import plotly.graph_objects as go

    fig = go.Figure()
    if not shown.curve:
        fig.add_annotation(text="not drawn", showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper")
        fig.update_layout(
            height=200, template="plotly_white", xaxis={"visible": False}, yaxis={"visible": False}
        )
        page.chart(
            f"survival-{study}",
            fig,
            "Not drawn: in arms this small, even a curve made from counts rounded to groups of 5 would let "
            "a count under 5 be worked out from the other numbers on this page.",
        )
        return
    curves = []
    for arm in arms:
        subjects = [(float(r["months"]), bool(r["employed"])) for r in survival if r["arm"] == arm]
        curve = kaplan_meier(arm, subjects, KM_TABLE_MONTHS)
        curves.append(curve)
        keep = [i for i, t in enumerate(curve.times) if t <= curve.drawn_until]
        times = [min(curve.times[i], 24.0) for i in keep]
        employed = [100 * (1 - curve.survival[i]) for i in keep]
        colour = arm_colour(arm, arms)
        for bound, fill in ((curve.upper, None), (curve.lower, "tonexty")):  # the 95 % band
            fig.add_trace(
                go.Scatter(
                    x=times,
                    y=[100 * (1 - bound[i]) for i in keep],
                    mode="lines",
                    fill=fill,
                    line={"width": 0, "shape": "hv"},
                    fillcolor=_transparent(colour, 0.15),
                    hoverinfo="skip",
                    showlegend=False,
                    legendgroup=arm,
                )
            )
        randomised = key(arm, "randomised")
        n = (
            shown.text(randomised)
            if randomised in shown.grid.cells and shown.grid.cells[randomised].value == curve.n
            else f"≈{curve.n_rounded}"
        )
        fig.add_trace(
            go.Scatter(
                x=times,
                y=employed,
                name=f"{arm} (n={n})",
                legendgroup=arm,
                line={"shape": "hv", "color": colour, "width": 2.5},
                mode="lines",
                hovertemplate="%{x:.1f} months: %{y:.1f} % employed<extra>" + e(arm) + "</extra>",
            )
        )
        if keep:
            last = keep[-1]
            fig.add_annotation(
                x=times[-1],
                y=employed[-1],
                text=f"{arm}: {100 * (1 - curve.survival[last]):.1f} %",
                showarrow=False,
                xanchor="left",
                yanchor="bottom",
                font={"color": colour},
            )
    fig.update_layout(
        height=400,
        template="plotly_white",
        margin={"t": 30, "b": 50, "l": 50, "r": 80},
        xaxis={"title": "months since randomisation", "range": [0, 24.5], "dtick": 3},
        yaxis={"title": "first competitive employment (cumulative %)", "range": [0, 100]},
        legend={"orientation": "h", "y": -0.2},
    )
    page.chart(
        f"survival-{study}",
        fig,
        "Kaplan-Meier estimate of the time to first competitive employment, shown as the cumulative share "
        "employed with its 95 % interval; participants are censored at the end of their observation or at 24 "
        "months, whichever comes first (the analysis dataset adtte_first_employment). So that "
        "no step reveals fewer than 5 people, times are counted in whole months and the numbers employed, "
        "censored and randomised are rounded to the middle of their group of 5 (1-5 is 3, 6-10 is 8) before "
        "the estimate is made. A curve stops where fewer than 5 people remain at risk.",
    )
    header = ["arm (rounded)", *[f"{m} mo" for m in KM_TABLE_MONTHS]]
    rows = [[f"{c.label}: at risk", *[show_count(c.at_risk.get(m)) for m in KM_TABLE_MONTHS]] for c in curves]
    rows += [
        [f"{c.label}: employed by then", *[str(c.events.get(m, "–")) for m in KM_TABLE_MONTHS]]
        for c in curves
    ]
    page.add(table(header, rows, "numbers"))


def states_figure(page: Page, study: str, arms: list[str], shown: Protection) -> None:
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    months = list(range(25))
    states = work_participation_states()

    def share(arm: str, m: int, state: str) -> float | None:
        """The state's share of the month's observed, drawn only when both counts are shown."""
        n, total = shown.value(key(arm, "state", m, state)), shown.value(key(arm, "observed", m))
        return 100 * n / total if n is not None and total else None

    fig = make_subplots(
        rows=1, cols=len(arms) or 1, shared_yaxes=True, subplot_titles=arms, horizontal_spacing=0.04
    )
    for col, arm in enumerate(arms, start=1):
        for state, label, _meaning, colour in states:
            fig.add_trace(
                go.Bar(
                    x=months,
                    y=[share(arm, m, state) for m in months],
                    name=label,
                    legendgroup=state,
                    showlegend=col == 1,
                    marker_color=colour,
                    hovertemplate="month %{x}: %{y:.1f} %<extra>" + e(label) + "</extra>",
                ),
                row=1,
                col=col,
            )
        fig.update_xaxes(
            title_text="month since randomisation",
            tickvals=list(STATE_TABLE_MONTHS),
            ticktext=[f"{m}<br>n={shown.text(key(arm, 'observed', m))}" for m in STATE_TABLE_MONTHS],
            row=1,
            col=col,
        )
    fig.update_layout(
        barmode="stack",
        height=460,
        template="plotly_white",
        bargap=0.1,
        margin={"t": 40, "b": 60, "l": 50, "r": 10},
        legend={"orientation": "h", "y": -0.3},
        yaxis={"title": "share of observed participants (%)", "range": [0, 100]},
    )
    page.chart(
        f"states-{study}",
        fig,
        "The work-participation state on each month's checkpoint date, as a share of the participants "
        "observed that month (n under each axis). A share is drawn only where its count and the month's "
        "observed are shown, so a bar can fall short of 100 %.",
    )

    def rows(selected: list[int]) -> list[list[str]]:
        out = []
        for arm in arms:
            for state, label, _meaning, _colour in states:
                cells = []
                for m in selected:
                    value = share(arm, m, state)
                    cells.append(
                        shown.text(key(arm, "state", m, state))
                        + (f" ({value:.0f} %)" if value is not None else "")
                    )
                out.append([arm, label, *cells])
            out.append([arm, "observed", *[shown.text(key(arm, "observed", m)) for m in selected]])
        return out

    header = ["arm", "state"]
    page.add(
        table(
            [*header, *[f"month {m}" for m in STATE_TABLE_MONTHS]],
            rows(list(STATE_TABLE_MONTHS)),
            "numbers compact",
        )
    )
    every = table([*header, *[str(m) for m in months]], rows(months), "numbers compact")
    page.add(fragment("details", summary="Every month (the counts behind the bars)", body=every))


def trajectories_figure(
    page: Page, study: str, trajectories: list[dict[str, Any]], arms: list[str], shown: Protection
) -> None:
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    labels = {m.measure: m.label for m in prom_measures()}
    measures = [m for m in labels if any(r["measure"] == m for r in trajectories)]
    if not measures:
        page.add(fragment("note", text="No questionnaire scores yet."))
        return
    cols = 4
    nrows = (len(measures) + cols - 1) // cols
    fig = make_subplots(
        rows=nrows,
        cols=cols,
        subplot_titles=[labels[m] for m in measures],
        vertical_spacing=0.16,
        horizontal_spacing=0.06,
    )
    rows = []
    for i, measure in enumerate(measures):
        row, col = i // cols + 1, i % cols + 1
        for arm in arms:
            points = [r for r in trajectories if r["measure"] == measure and r["arm"] == arm]
            xs, ys, lo, hi, text = [], [], [], [], []
            for p in points:
                n = int(p["n"] or 0)
                n_shown = shown.value(key(arm, "scored", measure, p["timepoint_months"]))
                # a mean (and its interval) would give a withheld n away, like a rate its counts
                mean = (
                    None if p["mean"] is None or n_shown is None or n_shown < SMALL_CELL else float(p["mean"])
                )
                sd = None if p["sd"] is None else float(p["sd"])
                interval = mean_interval(mean, sd, n) if mean is not None else None
                xs.append(p["timepoint_months"])
                ys.append(mean)
                lo.append(mean - interval[0] if interval and mean is not None else 0)
                hi.append(interval[1] - mean if interval and mean is not None else 0)
                digits = 2 if measure.startswith(("hscl25", "eq5d_index")) else 1
                scored = shown.text(key(arm, "scored", measure, p["timepoint_months"]))
                text.append(f"{mean:.{digits}f}" if mean is not None else scored if n else "")
                rows.append(
                    [
                        labels[measure],
                        arm,
                        p["timepoint_months"],
                        scored,
                        "–" if mean is None else f"{mean:.2f}",
                        f"{interval[0]:.2f}–{interval[1]:.2f}" if interval else "–",
                    ]
                )
            fig.add_trace(
                go.Scatter(
                    x=xs,
                    y=ys,
                    name=arm,
                    legendgroup=arm,
                    showlegend=i == 0,
                    mode="lines+markers+text",
                    text=text,
                    textposition="top center",
                    textfont={"size": 9},
                    line={"color": arm_colour(arm, arms)},
                    error_y={
                        "type": "data",
                        "symmetric": False,
                        "array": hi,
                        "arrayminus": lo,
                        "thickness": 1,
                    },
                    hovertemplate="%{x} months: %{y:.2f}<extra>" + e(arm) + "</extra>",
                ),
                row=row,
                col=col,
            )
        fig.update_xaxes(tickvals=[0, 6, 12, 24], row=row, col=col)
    fig.update_layout(
        height=300 * nrows + 60,
        template="plotly_white",
        margin={"t": 40, "b": 40, "l": 40, "r": 10},
        legend={"orientation": "h", "y": -0.08},
    )
    page.chart(
        f"trajectories-{study}",
        fig,
        "Mean score by arm at 0, 6, 12 and 24 months, with its 95 % interval (mean ± 1.96·sd/√n), shown "
        "where its n is: not for fewer than 5 people, nor where n is withheld (×).",
    )
    numbers = table(["measure", "arm", "months", "n", "mean", "95 % CI"], rows, "numbers compact")
    page.add(fragment("details", summary="The numbers (n, mean, 95 % interval)", body=numbers))


def consort_flow(page: Page, consort: list[dict[str, Any]], shown: Protection) -> None:
    def analysed(arm: str, h: int) -> str:
        own = key(arm, "analysed", h)
        return own if own in shown.grid.cells else key(arm, "known", h)

    steps = (
        (lambda arm: key(arm, "randomised"), "Randomised", False),
        (lambda arm: key(arm, "stopped"), "Stopped the intervention (still followed)", True),
        (lambda arm: key(arm, "lost", 12), "Lost or withdrawn by 12 months", True),
        (lambda arm: analysed(arm, 12), "Analysed at 12 months", False),
        (lambda arm: key(arm, "lost", 24), "Lost or withdrawn by 24 months", True),
        (lambda arm: analysed(arm, 24), "Analysed at 24 months", False),
    )
    arms = [
        {
            "name": row["arm"],
            "boxes": [
                {"n": shown.text(cell(row["arm"])), "label": label, "side": side}
                for cell, label, side in steps
            ],
        }
        for row in consort
    ]
    page.add(fragment("consort", arms=arms))
