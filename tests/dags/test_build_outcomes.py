"""The build DAG: its shape from the parsed manifest. Its real runs are end to end:
tests/e2e/test_demo.py (a run that publishes marts, history, docs, gate results and the dashboard;
a run the gate blocks)."""

from __future__ import annotations

from typing import Any

import pytest

from outcomes.settings import Settings


@pytest.fixture(scope="module")
def build_dag(airflow_ready: Settings) -> Any:
    from outcomes.runners.inprocess import load_dag

    return load_dag(airflow_ready, "build_outcomes")


@pytest.fixture(scope="module")
def watcher_dag(airflow_ready: Settings) -> Any:
    """The same DAG with OUTCOMES_DBT_EXECUTION=watcher: a sensor per model."""
    import os

    from outcomes.runners.inprocess import load_dag

    saved = os.environ.get("OUTCOMES_DBT_EXECUTION")
    os.environ["OUTCOMES_DBT_EXECUTION"] = "watcher"
    try:
        return load_dag(airflow_ready, "build_outcomes")
    finally:
        if saved is None:
            del os.environ["OUTCOMES_DBT_EXECUTION"]
        else:
            os.environ["OUTCOMES_DBT_EXECUTION"] = saved


def test_by_default_one_dbt_build_task_builds_every_model_with_its_tests(build_dag: Any) -> None:
    dbt = build_dag.get_task("dbt_build")
    assert dbt.base_cmd == ["build"]
    assert dbt.exclude == "path:snapshots"
    # the as-of date in the environment, not as a var (a changed var makes dbt parse everything
    # again); unit tests run in the test suite, not in the nightly build
    assert not dbt.vars
    assert dbt.env == {
        "OUTCOMES_AS_OF": "{{ ti.xcom_pull(task_ids='resolve_as_of') }}",
        "DBT_EXCLUDE_RESOURCE_TYPES": "unit_test",
    }
    assert dbt.append_env
    assert dbt.upstream_task_ids == {"amend_locks"}
    # the effects' estimates are computed into the dbt build's rows before the gate audits them
    assert dbt.downstream_task_ids == {"estimate_effects"}
    assert build_dag.get_task("estimate_effects").downstream_task_ids == {"quality_gate"}
    assert not [t for t in build_dag.task_ids if t.startswith("dbt.")]
    assert {
        "resolve_as_of",
        "start_build",
        "quality_gate",
        "publish",
        "snapshot_history",
        "docs_outdated",
        "generate_docs",
    } <= set(build_dag.task_ids)


def test_the_dbt_tasks_keep_a_partial_parse_cache_per_set_of_vars(build_dag: Any, settings: Settings) -> None:
    """dbt_build runs with no vars, the snapshots and the docs with marts_schema=marts: one cache
    for both sets would make each parse the whole project again; the two after the publish share
    theirs (the docs parse nothing after the snapshots)."""
    caches = {t: build_dag.get_task(t).cache_dir for t in ("dbt_build", "snapshot_history", "generate_docs")}
    assert caches["dbt_build"] == settings.cosmos_cache_dir / "build_outcomes" / "dbt_build"
    assert caches["snapshot_history"] == caches["generate_docs"]
    assert caches["generate_docs"] == settings.cosmos_cache_dir / "build_outcomes" / "after_publish"
    for task_id in caches:
        assert build_dag.get_task(task_id).partial_parse


def test_the_seeding_parse_is_the_parse_dbt_build_makes(build_dag: Any) -> None:
    """ensure_manifest seeds dbt_build's partial-parse cache: only a parse with the same vars,
    profile and target is valid there (transform/dbt.py, COSMOS_PARSE_ARGS)."""
    from outcomes.transform.dbt import COSMOS_PARSE_ARGS

    dbt = build_dag.get_task("dbt_build")
    assert not dbt.vars
    profile = dbt.profile_config
    assert COSMOS_PARSE_ARGS[:4] == ["--profile", profile.profile_name, "--target", profile.target_name]
    # Cosmos adds --no-static-parser (the seed's last argument) when it runs dbt in-process
    assert str(dbt.invocation_mode).endswith("DBT_RUNNER")


def test_the_watcher_has_a_task_for_every_model_of_the_manifest(watcher_dag: Any, settings: Settings) -> None:
    import json

    manifest = json.loads(settings.dbt_manifest.read_text())
    models = {n["name"] for n in manifest["nodes"].values() if n["resource_type"] == "model"}
    # a model with tests is a task group (dbt.<model>.run, .test); one without a task dbt.<model>_run
    run_tasks = {t.task_id.split(".")[1] for t in watcher_dag.tasks if t.task_id.endswith(".run")}
    run_tasks |= {
        t.task_id.removeprefix("dbt.").removesuffix("_run")
        for t in watcher_dag.tasks
        if t.task_id.startswith("dbt.") and t.task_id.count(".") == 1 and t.task_id.endswith("_run")
    }
    assert run_tasks == models
    gate = watcher_dag.get_task("quality_gate")
    assert "dbt.dbt_producer_watcher" in gate.get_flat_relative_ids(upstream=True)


def test_an_unknown_execution_mode_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    from outcomes.transform.dag import execution_mode

    monkeypatch.setenv("OUTCOMES_DBT_EXECUTION", "Build")
    assert execution_mode() == "build"
    monkeypatch.setenv("OUTCOMES_DBT_EXECUTION", "kubernetes")
    with pytest.raises(ValueError, match="OUTCOMES_DBT_EXECUTION='kubernetes'"):
        execution_mode()


def test_the_gate_stands_between_the_build_and_the_publish(build_dag: Any) -> None:
    gate, publish = build_dag.get_task("quality_gate"), build_dag.get_task("publish")
    assert "publish" in gate.downstream_task_ids
    assert publish.upstream_task_ids == {"quality_gate", "start_build", "resolve_as_of"}
    assert "dbt_build" in gate.get_flat_relative_ids(upstream=True)
    # history and docs read the published marts, so they come after the publish
    assert "snapshot_history" in publish.downstream_task_ids
    snapshot = build_dag.get_task("snapshot_history")
    assert snapshot.vars == {"marts_schema": "marts"}
    assert snapshot.env == {"OUTCOMES_AS_OF": "{{ ti.xcom_pull(task_ids='resolve_as_of') }}"}
    # docs only when the project changed: a short circuit before them
    assert build_dag.get_task("generate_docs").upstream_task_ids == {"docs_outdated"}
    assert build_dag.get_task("docs_outdated").upstream_task_ids == {"snapshot_history"}


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
    # the erasures amend_locks claimed leave the queue only once the history snapshot and the
    # dashboard are made without them
    assert build_dag.get_task("close_erasures").upstream_task_ids == {
        "start_build",
        "snapshot_history",
        "refresh_dashboard",
    }


@pytest.mark.slow
def test_a_malformed_as_of_is_refused_before_anything_runs(build_dag: Any, settings: Settings) -> None:
    from outcomes.runners.inprocess import run_dag

    try:
        outcome = run_dag(settings, "build_outcomes", conf={"as_of": "21.11.2026"})
    except Exception as error:  # the param's date format, checked when the run is created
        assert "as_of" in str(error) or "date" in str(error)
    else:
        assert not outcome.succeeded
        assert outcome.task_states["resolve_as_of"] == "failed"
        assert outcome.task_states["dbt_build"] == "upstream_failed"


def test_the_gate_and_the_sensors_say_what_their_failure_means(
    build_dag: Any, airflow_ready: Settings
) -> None:
    """The alert kind is declared on the task (no task id is matched): the gate's failure is a
    blocked publish, a sensor's a late source, any other task's a task failure."""
    from outcomes.contracts.registry import ingest_dag_id, source_names
    from outcomes.orchestration import BUILD_DAG_ID, GATE_TASK_ID
    from outcomes.orchestration.notifier import GATE_BLOCKED, LATE_DELIVERY, TASK_FAILED, OutcomesNotifier
    from outcomes.runners.inprocess import load_dag

    def kinds(task: Any) -> list[tuple[str, str | None]]:
        callbacks = task.on_failure_callback
        callbacks = callbacks if isinstance(callbacks, list) else [callbacks]
        return [(c.kind, c.source) for c in callbacks if isinstance(c, OutcomesNotifier)]

    assert build_dag.dag_id == BUILD_DAG_ID
    assert kinds(build_dag.get_task(GATE_TASK_ID)) == [(GATE_BLOCKED, None)]
    assert kinds(build_dag.get_task("publish")) == [(TASK_FAILED, None)]
    for source in source_names():
        ingest = load_dag(airflow_ready, ingest_dag_id(source))
        assert kinds(ingest.get_task("wait_for_delivery")) == [(LATE_DELIVERY, source)]
        assert kinds(ingest.get_task("apply_deliveries")) == [(TASK_FAILED, None)]


def test_a_notifier_refuses_a_kind_it_does_not_know_and_a_late_source_without_a_name() -> None:
    from outcomes.orchestration.notifier import LATE_DELIVERY, OutcomesNotifier

    with pytest.raises(ValueError, match="unknown alert kind"):
        OutcomesNotifier("late")
    with pytest.raises(ValueError, match="names its source"):
        OutcomesNotifier(LATE_DELIVERY)
