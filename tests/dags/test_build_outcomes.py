"""The build DAG: its shape from the parsed manifest, and a real run that publishes the marts."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from outcomes.settings import Settings
from outcomes.warehouse.connection import Warehouse


@pytest.fixture(scope="module")
def build_dag(airflow_ready: Settings) -> Any:
    from outcomes.orchestration import load_dag

    return load_dag(airflow_ready, "build_outcomes")


def test_every_model_of_the_manifest_has_its_task(build_dag: Any, settings: Settings) -> None:
    import json

    manifest = json.loads(settings.dbt_manifest.read_text())
    models = {n["name"] for n in manifest["nodes"].values() if n["resource_type"] == "model"}
    run_tasks = {t.task_id.split(".")[1] for t in build_dag.tasks if t.task_id.endswith(".run")}
    assert run_tasks == models
    assert {"resolve_as_of", "snapshot_history", "generate_docs", "announce"} <= set(build_dag.task_ids)


def test_it_runs_on_every_sources_news_or_nightly(build_dag: Any) -> None:
    from airflow.sdk import AssetOrTimeSchedule

    assert type(build_dag.timetable).__name__ == AssetOrTimeSchedule.__name__
    condition = build_dag.timetable.asset_condition
    assert type(condition).__name__ == "AssetAll"
    names = sorted(a.name for a in condition.objects)
    assert names == ["raw_employment", "raw_registry", "raw_trial", "raw_welfare"]
    announce = build_dag.get_task("announce")
    assert [a.name for a in announce.outlets] == ["marts"]


@pytest.mark.slow
def test_a_build_run_publishes_marts_history_and_docs(
    build_dag: Any, warehouse: Warehouse, settings: Settings
) -> None:
    from outcomes.orchestration import run_dag

    outcome = run_dag(settings, "build_outcomes", conf={"as_of": "2026-11-21"})
    assert outcome.succeeded, outcome.task_states
    with psycopg.connect(warehouse.url()) as conn:
        conn.execute("set role outcomes_analyst")
        for table in ("marts.fct_prom_scores", "marts.agg_prom_trajectories", "history.agg_employment_rates"):
            conn.execute(f"select count(*) from {table}").fetchone()
    docs = settings.dbt_docs_dir
    assert {p.name for p in docs.iterdir()} == {"index.html", "manifest.json", "catalog.json"}
    assert "model.outcomes.fct_prom_scores" in (docs / "catalog.json").read_text()


@pytest.mark.slow
def test_a_malformed_as_of_is_refused_before_anything_runs(build_dag: Any, settings: Settings) -> None:
    from outcomes.orchestration import run_dag

    try:
        outcome = run_dag(settings, "build_outcomes", conf={"as_of": "21.11.2026"})
    except Exception as error:  # the param's date format, checked when the run is created
        assert "as_of" in str(error) or "date" in str(error)
    else:
        assert not outcome.succeeded
        assert outcome.task_states["resolve_as_of"] == "failed"
        assert outcome.task_states["dbt.dbt_producer_watcher"] == "upstream_failed"
