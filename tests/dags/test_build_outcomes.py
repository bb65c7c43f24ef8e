"""The build DAG: its shape from the parsed manifest. Its real runs are end to end:
tests/e2e/test_demo.py (a run that publishes marts, history, docs, gate results and the dashboard;
a run the gate blocks)."""

from __future__ import annotations

from typing import Any

import pytest

from outcomes.settings import Settings


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
    # the dashboard only ever renders a published build; erasures reach the locks before dbt runs
    assert "publish" in build_dag.get_task("refresh_dashboard").upstream_task_ids
    assert build_dag.get_task("amend_locks").upstream_task_ids == {"start_build"}


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
