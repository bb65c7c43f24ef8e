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
    assert {
        "resolve_as_of",
        "start_build",
        "quality_gate",
        "publish",
        "snapshot_history",
        "generate_docs",
    } <= set(build_dag.task_ids)


def test_the_gate_stands_between_the_build_and_the_publish(build_dag: Any) -> None:
    gate, publish = build_dag.get_task("quality_gate"), build_dag.get_task("publish")
    assert "publish" in gate.downstream_task_ids
    assert publish.upstream_task_ids == {"quality_gate", "start_build", "resolve_as_of"}
    assert build_dag.get_task("dbt.dbt_producer_watcher").task_id in gate.get_flat_relative_ids(upstream=True)
    # history and docs read the published marts, so they come after the publish
    assert "snapshot_history" in publish.downstream_task_ids
    assert build_dag.get_task("snapshot_history").vars["marts_schema"] == "marts"


def test_it_runs_on_every_sources_news_or_nightly(build_dag: Any) -> None:
    from airflow.sdk import AssetOrTimeSchedule

    assert type(build_dag.timetable).__name__ == AssetOrTimeSchedule.__name__
    condition = build_dag.timetable.asset_condition
    assert type(condition).__name__ == "AssetAll"
    names = sorted(a.name for a in condition.objects)
    assert names == ["raw_employment", "raw_registry", "raw_trial", "raw_welfare"]
    publish = build_dag.get_task("publish")
    assert [a.name for a in publish.outlets] == ["published"]


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
        published = conn.execute("select build_id, gate_result from meta.published_builds").fetchall()
        assert published and published[-1][1] in {"passed", "warned"}
        results = conn.execute(
            "select count(*) from meta.gate_results where build_id = %s", (published[-1][0],)
        ).fetchone()
        assert results is not None and results[0] > 50
    assert (settings.gx_data_docs_dir / "index.html").exists()
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
