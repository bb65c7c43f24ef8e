"""One self-contained HTML page from a ``DashboardData``: plotly charts with plotly.js inlined once
(it opens offline, from a file), every number printed beside its chart, small cells suppressed.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from outcomes.dashboard.baseline import baseline_table
from outcomes.dashboard.data import DashboardData
from outcomes.dashboard.disclosure import Protection
from outcomes.dashboard.effects import effects_section
from outcomes.dashboard.figures import (
    consort_flow,
    employment_figure,
    rate_cell,
    states_figure,
    survival_figure,
    trajectories_figure,
)
from outcomes.dashboard.markup import Page, fragment, table
from outcomes.dashboard.numbers import key, study_protection
from outcomes.templates import render as render_template

WITHHELD_STUDY = (
    "its arms are so small that no choice of numbers to withhold would keep a count under 5 from "
    "being worked out; the marts hold them for those who may read them."
)


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


def lock_table(data: DashboardData, study: str, shown: Protection) -> str:
    lock = data.lock
    assert lock is not None
    before = {(r["study"], r["arm"], r["horizon_months"]): r for r in lock.rates}
    rows = []
    for today in (r for r in data.rates if r["study"] == study):
        arm, h = today["arm"], today["horizon_months"]
        then = before.get((today["study"], arm, h))
        now_cell = rate_cell(shown, key(arm, "employed", h), key(arm, "known", h))
        then_cell = (
            rate_cell(shown, key(arm, "lock employed", h), key(arm, "lock known", h)) if then else None
        )
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


def render(data: DashboardData) -> tuple[str, list[str], dict[str, dict[str, str]]]:
    """The snapshot's HTML, the ids of its charts, and every count it prints per study (its value,
    ``<5`` or ``×``: what the page discloses, kept in the snapshot's sidecar)."""
    from plotly.offline import get_plotlyjs

    build = data.build or {}
    charts: list[str] = []

    def part(draw: Any, *args: Any) -> str:
        page = Page()
        draw(page, *args)
        charts.extend(page.charts)
        return page.html()

    studies = []
    printed: dict[str, dict[str, str]] = {}
    for study in data.studies:
        rates = [r for r in data.rates if r["study"] == study]
        arms = sorted({r["arm"] for r in rates}) or sorted(
            {r["arm"] for r in data.consort if r["study"] == study}
        )

        def of(rows: list[dict[str, Any]], study: str = study) -> list[dict[str, Any]]:
            return [r for r in rows if r["study"] == study]

        try:
            shown = study_protection(data, study, arms)
        except ValueError:  # too few people to print any of it without giving a small count away
            studies.append({"name": study, "withheld": WITHHELD_STUDY})
            printed[study] = {}
            continue
        printed[study] = shown.printed()
        studies.append(
            {
                "name": study,
                "employment": part(employment_figure, study, rates, arms, shown),
                "lock": lock_table(data, study, shown) if data.lock is not None else "",
                "survival": part(survival_figure, study, of(data.survival), arms, shown),
                "effects": part(
                    effects_section,
                    study,
                    of(data.effects),
                    of(data.survival_effects),
                    of(data.prom_effects),
                    arms,
                    shown,
                ),
                "states": part(states_figure, study, arms, shown),
                "trajectories": part(trajectories_figure, study, of(data.trajectories), arms, shown),
                "consort": part(consort_flow, of(data.consort), shown),
                "baseline": part(baseline_table, study, of(data.baseline), arms, shown),
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
    return document, charts, printed
