"""Dashboard snapshots rendered from real published marts (the synthetic trial through the real
loader, dbt, gate and publish): the published Figure 2 reproduced, every chart with its numbers,
small cells suppressed, nothing fetched from the network, and `latest` moved only by a refresh."""

from __future__ import annotations

import json
import re

import psycopg
import pytest
from typer.testing import CliRunner

from outcomes.cli import app
from outcomes.contracts.registry import source_names
from outcomes.dashboard import data as dashboard_data
from outcomes.dashboard.render import render
from outcomes.dashboard.snapshots import latest, list_snapshots, point_latest, refresh
from outcomes.settings import Settings
from outcomes.warehouse.connection import Warehouse

pytestmark = pytest.mark.slow
HORIZONS = (3, 6, 12, 18, 24)
CHART_KINDS = ("employment", "survival", "states", "trajectories")


def test_a_refresh_writes_a_dated_self_contained_snapshot_and_makes_it_latest(
    own_home: Settings, published_trial: Warehouse
) -> None:
    assert latest(own_home) is None
    path = refresh(own_home, published_trial)
    assert latest(own_home) == path
    assert re.fullmatch(r"2026-11-21_b\d{8}T\d{6}\.\d{6}Z\.html", path.name)
    page = path.read_text(encoding="utf-8")
    info = json.loads(path.with_suffix(".json").read_text())
    assert info["as_of_date"] == "2026-11-21" and info["gate"] == "passed"
    assert sorted(info["charts"]) == sorted(
        [f"{kind}-{study}" for kind in CHART_KINDS for study in ("RCT", "PILOT")] + ["effects-RCT"]
    )
    for chart in info["charts"]:
        assert f'id="{chart}"' in page
    # offline: plotly.js is inlined, nothing is loaded from anywhere
    after_plotly = page.split("</script>", 1)[1]  # (plotly.js' own source mentions CDNs)
    assert "<script src=" not in after_plotly and "https://" not in after_plotly
    assert len(page) > 3_000_000  # plotly.js itself is most of it

    # the published Figure 2: 19/36 vs 7/18 employed within 12 months (complete case), Wilson CIs
    assert "52.8 % (19/36)" in page and "38.9 % (7/18)" in page
    assert "37.0–68.0" in page and "20.3–61.4" in page
    # the pilot's 1 and 3 of 8 are small cells: shown as <5, never as their values (its 0 of 8
    # describes no one and is printed)
    assert "<5/8" in page.replace("&lt;", "<") and "0.0 % (0/8)" in page
    assert not re.search(r"\b[1-4]/8\b", page[page.index("<body>") :])
    # the sidecar keeps every count as printed: a value, <5, or × (withheld as a complement)
    assert (
        info["printed"]["RCT"]["IPS|known|12"] == "36" and info["printed"]["PILOT"]["IPS|employed|6"] == "<5"
    )
    assert set(info["printed"]["RCT"].values()) - {"<5", "×"} <= {str(n) for n in range(10_000)}
    # IPS against TAU (the trial's report: 13.9 points, Fisher's p 0.395), where its counts are
    # shown; the intention-to-treat comparison needs the number randomised, which the page withholds
    rct = page[page.index('id="study-RCT"') : page.index('id="study-PILOT"')]
    assert "13.9 (-13.6 to 37.9)" in rct and "1.756 (0.555 to 5.556)" in rct and "0.3955" in rct
    assert rct.count("not shown (its counts are withheld)") >= len(HORIZONS)  # every ITT row at least
    # the time-to-employment comparison only where each arm's number employed by 24 months and
    # its number randomised are shown (the page withholds the randomised by default)
    counts = [
        info["printed"]["RCT"].get(k, info["printed"]["RCT"].get(f"{arm}|randomised"))
        for arm in ("IPS", "TAU")
        for k in (f"{arm}|employed|24", f"{arm}|randomised|24")
    ]
    compared = all(n is not None and n.isdigit() and int(n) >= 5 for n in counts)
    assert ("Time to first employment within 24 months: log-rank p = " in rct) == compared
    assert ("Time to first employment: not compared here" in rct) != compared
    assert "Secondary outcomes, exploratory" in rct and "mixed model" in rct
    assert "One arm: nothing to compare." in page[page.index('id="study-PILOT"') :]
    # Table 1: the IPS arm's sex and age, counted here from the analysis dataset
    table_1 = rct[rct.index("Baseline characteristics by arm") :].replace("&lt;", "<")
    with psycopg.connect(published_trial.url()) as conn:
        ips = conn.execute(
            "select count(*), count(*) filter (where sex = 'F'), avg(age_at_randomisation),"
            " stddev_samp(age_at_randomisation) from marts.adsl_participants"
            " where study = 'RCT' and arm = 'IPS'"
        ).fetchone()
    assert ips is not None
    n, female, age, sd = ips
    assert f"<td>female</td><td>{female} ({100 * female / n:.1f} %)</td>" in table_1
    assert f"<td>male</td><td>{n - female} ({100 * (n - female) / n:.1f} %)</td>" in table_1
    assert f"<td>mean (SD)</td><td>{age:.1f} ({sd:.1f})</td>" in table_1


def test_the_data_quality_panel_names_the_build_its_gate_and_every_source(
    own_home: Settings, published_trial: Warehouse
) -> None:
    content = dashboard_data.read(published_trial)
    with psycopg.connect(published_trial.url()) as conn:
        build = conn.execute(
            "select build_id from meta.published_builds order by published_at desc limit 1"
        ).fetchone()
    assert content.build is not None and (content.build["build_id"],) == build
    assert [d["source"] for d in content.deliveries] == list(source_names())
    assert all(d["reconciled"] for d in content.deliveries)
    page, _, _ = render(content)
    assert f"Build</b> {build[0]}" in page  # type: ignore[index]
    assert "Quality gate</b> passed" in page
    assert '<a href="../quality/" id="quality-page">' in page  # beside /outcomes/dashboards/ in the UI
    for source in source_names():
        assert f"<td>{source}</td>" in page


def test_small_cells_are_suppressed_in_every_chart_and_table(published_trial: Warehouse) -> None:
    """Shrink the real numbers so that every kind of cell is small somewhere, and look for them."""
    content = dashboard_data.read(published_trial)
    rates = [{**r, "n_employed": 3, "n_known": 9, "n_randomised": 9} for r in content.rates]
    consort = [
        {**r, "n_randomised": 9, "n_intervention_ended": 1, "n_lost_by_12m": 2, "n_lost_by_24m": 2}
        | {"n_analysed_12m": 9, "n_analysed_24m": 9}
        for r in content.consort
    ]
    trajectories = [{**r, "n": 4} for r in content.trajectories]
    states = [{**r, "n": 2} for r in content.states]
    observed = [
        {
            **r,
            "n": 2
            * sum(
                1
                for s in content.states
                if s["study"] == r["study"] and s["arm"] == r["arm"] and s["month_index"] == r["month_index"]
            ),
        }
        for r in content.observed
    ]
    survival = content.survival[:3]  # three people: at risk <5 from the start
    sex = {"F": 7, "M": 2}  # Table 1: 2 men of 9; the baseline scores of 4 (trajectories' month 0)
    baseline = [
        {
            **r,
            "n_arm": 9,
            "n_known": 9,
            "n": sex[r["category"]],
            "pct": round(100 * sex[r["category"]] / 9, 1),
        }
        if r["characteristic"] == "sex"
        else {**r, "n_arm": 9, "n_known": 4, "n": 4}
        for r in content.baseline
        if r["characteristic"] == "sex" or r["characteristic"].startswith("baseline_")
    ]
    shrunk = type(content)(
        **{
            **content.__dict__,
            "rates": rates,
            "consort": consort,
            "trajectories": trajectories,
            "states": states,
            "observed": observed,
            "survival": survival,
            "baseline": baseline,
        }
    )
    page, charts, _ = render(shrunk)
    text = page.replace("&lt;", "<")
    assert "3/9" not in text and "33.3 %" not in text
    assert "<5/9" in text  # the rates
    assert "13.9 (" not in text and "1.756" not in text  # no estimate of counts it withholds
    assert '<span class="n"><5</span><span>Lost or withdrawn by 12 months' in text  # CONSORT
    table_1 = text[text.index("Baseline characteristics by arm") :]
    assert "<td>male</td><td><5</td>" in table_1 and "(22.2 %)" not in table_1 and "(77.8 %)" not in table_1
    assert "mean (SD)</td><td>–</td>" in table_1  # no baseline mean of 4 people
    # no trajectory mean of 4 people, and no state share of 2
    for chart in (c for c in charts if c.startswith(("trajectories", "states"))):
        traces = plotted_traces(page, chart)
        assert all(y in (None, 0) for trace in traces for y in trace.get("y", [])), chart  # 0: no one


def test_list_and_latest_follow_refreshes_only(own_home: Settings, published_trial: Warehouse) -> None:
    first = refresh(own_home, published_trial)
    second = refresh(own_home, published_trial)  # the same build again: a second file, now latest
    assert first != second and latest(own_home) == second
    assert [s.path for s in list_snapshots(own_home)] == [first, second]
    env = {"OUTCOMES_HOME": str(own_home.home)}
    shown = CliRunner().invoke(app, ["dashboard"], env=env)
    assert shown.exit_code == 0 and shown.output.strip() == str(second)
    listed = CliRunner().invoke(app, ["dashboard", "--list"], env=env)
    assert listed.exit_code == 0 and first.name in listed.output and second.name in listed.output
    assert listed.output.index(first.name) < listed.output.index(second.name)
    point_latest(own_home, first)
    assert latest(own_home) == first


def test_no_snapshot_yet_is_a_clear_error(own_home: Settings) -> None:
    done = CliRunner().invoke(app, ["dashboard"], env={"OUTCOMES_HOME": str(own_home.home)})
    assert done.exit_code == 1 and "no dashboard snapshot" in done.output and "outcomes run" in done.output


def plotted_traces(page: str, chart: str) -> list[dict[str, object]]:
    """The data of one chart, as the page hands it to ``Plotly.newPlot``."""
    call = re.search(rf'Plotly\.newPlot\(\s*"{chart}",\s*', page)
    assert call is not None, chart
    traces, _ = json.JSONDecoder().raw_decode(page, call.end())
    return traces
