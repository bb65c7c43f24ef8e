"""One self-contained HTML page from a ``DashboardData``: plotly charts with plotly.js inlined once
(it opens offline, from a file), every number printed beside its chart, small cells suppressed.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from outcomes.dashboard.data import DashboardData
from outcomes.dashboard.figures import (
    consort_flow,
    employment_figure,
    rate_cell,
    states_figure,
    survival_figure,
    trajectories_figure,
)
from outcomes.dashboard.markup import Page, fragment, table
from outcomes.templates import render as render_template


def quality_panel(data: DashboardData) -> str:
    build, gate = data.build or {}, data.gate or {}
    summary = (
        f"{gate.get('expectations', '?')} expectations, {gate.get('failed_errors', 0)} errors, "
        f"{gate.get('failed_warnings', 0)} warnings"
        + (f"; drift accepted: {gate['drift_reason']}" if gate.get("drift_reason") else "")
    )
    rows = [
        [
            d["source"],
            d["delivery_id"],
            d["status"],
            str(d["extracted_at"])[:16] if d["extracted_at"] else "–",
            str(d["applied_at"])[:16],
            f"{d['rows_received']} received = {d['rows_loaded']} loaded + {d['rows_pending']} pending + "
            f"{d['rows_purged']} purged + {d['rows_quarantined']} quarantined",
            "yes" if d["reconciled"] else "NO",
            data.quarantined.get(d["source"], 0),
        ]
        for d in data.deliveries
    ]
    header = [
        "source",
        "last delivery",
        "status",
        "extracted",
        "applied",
        "reconciliation",
        "reconciled",
        "quarantined deliveries",
    ]
    return fragment(
        "quality",
        build_id=build.get("build_id", "?"),
        as_of=build.get("as_of_date", "?"),
        published_at=str(build.get("published_at", "?"))[:19],
        status=gate.get("status", "unknown"),
        summary=summary,
        failures=data.gate_failures,
        deliveries=table(header, rows, "numbers compact"),
    )


def lock_table(data: DashboardData, study: str) -> str:
    lock = data.lock
    assert lock is not None
    before = {(r["study"], r["arm"], r["horizon_months"]): r for r in lock.rates}
    rows = []
    for today in (r for r in data.rates if r["study"] == study):
        then = before.get((today["study"], today["arm"], today["horizon_months"]))
        now_cell = rate_cell(today["n_employed"], today["n_known"])
        then_cell = rate_cell(then["n_employed"], then["n_known"]) if then else None
        change = (
            f"{now_cell['value'] - then_cell['value']:+.1f} pp"
            if then_cell and then_cell["shown"] and now_cell["shown"]
            else "–"
        )
        rows.append(
            [
                today["arm"],
                today["horizon_months"],
                then_cell["text"] if then_cell else "not in the lock",
                now_cell["text"],
                change,
            ]
        )
    return table(
        ["arm", "months", f"{lock.name} (as of {lock.as_of_date})", "today", "change"], rows, "numbers"
    )


def render(data: DashboardData) -> tuple[str, list[str]]:
    """The snapshot's HTML and the ids of its charts."""
    from plotly.offline import get_plotlyjs

    build = data.build or {}
    charts: list[str] = []

    def part(draw: Any, *args: Any) -> str:
        page = Page()
        draw(page, *args)
        charts.extend(page.charts)
        return page.html()

    studies = []
    for study in data.studies:
        rates = [r for r in data.rates if r["study"] == study]
        arms = sorted({r["arm"] for r in rates}) or sorted(
            {r["arm"] for r in data.consort if r["study"] == study}
        )

        def of(rows: list[dict[str, Any]], study: str = study) -> list[dict[str, Any]]:
            return [r for r in rows if r["study"] == study]

        studies.append(
            {
                "name": study,
                "employment": part(employment_figure, study, rates, arms),
                "lock": lock_table(data, study) if data.lock is not None else "",
                "survival": part(survival_figure, study, of(data.survival), arms),
                "states": part(states_figure, study, of(data.states), of(data.observed), arms),
                "trajectories": part(trajectories_figure, study, of(data.trajectories), arms),
                "consort": part(consort_flow, of(data.consort)),
            }
        )
    document = render_template(
        "dashboard/page.html.j2",
        title=f"IPS outcomes, as of {build.get('as_of_date', '?')}",
        plotlyjs=get_plotlyjs(),
        build=build.get("build_id", "?"),
        gate=(data.gate or {}).get("status", "unknown"),
        generated=data.read_at.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        quality=quality_panel(data),
        studies=studies,
        lock_name=data.lock.name if data.lock is not None else "",
        charts=charts,
    )
    return document, charts
