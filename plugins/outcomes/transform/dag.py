"""The ``build_outcomes`` DAG's shape, built here so ``dags/build_outcomes.py`` stays wiring.

Write, audit, publish (docs/quality-gate.md): resolve_as_of -> start_build (a build id, an empty
candidate schema) -> amend_locks (queued erasures reach the database locks and the history) -> dbt
(astronomer-cosmos, rendered from the parsed manifest: every model with its tests, the marts into
``marts_candidate``) -> estimate_effects (the between-arm estimates of the effect marts, computed
with scipy and statsmodels into the rows dbt made) -> quality_gate (the Great Expectations suites of
``expectations/``; fails the run, and so alerts, when an error-level expectation fails) -> publish
(one transaction swaps the candidate in as ``marts``, records ``meta.published_builds``, emits the
``published`` Asset) -> refresh_dashboard (a dated HTML snapshot of the published marts, made ``latest``) and
snapshot_history (dbt snapshots of the published marts into ``history``, whose post-hook deletes the
queued erasures again) -> close_erasures (after both: the dashboard snapshots rendered before an
erasure are removed, and the erasures claimed by amend_locks leave the queue) and generate_docs (dbt
docs of the published marts, served in the Airflow UI).

Nothing here touches a database or imports dbt at parse time: Cosmos reads the manifest
(``LoadMode.DBT_MANIFEST``), and the connection reaches dbt through the ``OUTCOMES_DBT_*``
variables of the task's environment (``outcomes.runners.airflow_env``), never through the DAG.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import shutil
from pathlib import Path
from typing import Any

from airflow.sdk import DAG, Asset, AssetAll, AssetOrTimeSchedule, CronTriggerTimetable, Param, dag, task

from outcomes.orchestration import BUILD_DAG_ID, GATE_TASK_ID
from outcomes.orchestration.assets import RAW_ASSETS
from outcomes.orchestration.defaults import default_args
from outcomes.orchestration.notifier import GATE_BLOCKED, OutcomesNotifier
from outcomes.settings import MANUAL, load_settings, setting

log = logging.getLogger(__name__)

AS_OF = "{{ ti.xcom_pull(task_ids='resolve_as_of') }}"


def published_asset() -> Asset:
    """Emitted by ``build_outcomes`` when a build passed the gate and was published as ``marts``."""
    return Asset(name="published", uri="x-outcomes://warehouse/marts/published", group="outcomes")


def build_schedule() -> AssetOrTimeSchedule | AssetAll:
    """Every source's Asset (each ingested something new), or nightly at the cron time
    (``OUTCOMES_SCHEDULE_BUILD=manual``: the Assets and triggered runs only)."""
    cron = setting("OUTCOMES_SCHEDULE_BUILD")
    if cron == MANUAL:
        return AssetAll(*RAW_ASSETS)
    return AssetOrTimeSchedule(
        timetable=CronTriggerTimetable(cron, timezone="UTC"), assets=AssetAll(*RAW_ASSETS)
    )


def execution_mode() -> str:
    """``OUTCOMES_DBT_EXECUTION``: how Cosmos runs the project (docs/operations.md, "DAGs").

    ``build``: one ``dbt build`` task and nothing else (the per-model states are in its log);
    ``watcher``: one ``dbt build`` (one dbt start-up) with a light sensor per model and its tests;
    ``local``: one ``dbt build --select <model>`` task per model (each pays dbt's start-up).
    The default, ``build``, is by measurement (bench/README.md, "How Cosmos runs dbt"): at trial
    size the nightly build took 35 s with one dbt build task against 52 s with the watcher and
    59 s with a task per model; the watcher's sensors (two per model) each cost a task's
    bookkeeping, and under a real executor a process each.
    """
    return str(setting("OUTCOMES_DBT_EXECUTION"))


def copy_docs(project_dir: str, **_: Any) -> None:
    """Cosmos callback: keep the generated docs (Cosmos deletes its temporary project), and the
    fingerprint of the project they describe."""
    from outcomes.transform.dbt import docs_stamp, project_fingerprint

    settings = load_settings()
    target = Path(project_dir) / "target"
    staging = settings.dbt_docs_dir.with_name("docs.new")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    for name in ("index.html", "manifest.json", "catalog.json"):
        shutil.copy2(target / name, staging / name)
    # swap in whole: the UI never serves a manifest of one build with the catalog of another
    old = settings.dbt_docs_dir.with_name("docs.old")
    shutil.rmtree(old, ignore_errors=True)
    if settings.dbt_docs_dir.exists():
        settings.dbt_docs_dir.rename(old)
    staging.rename(settings.dbt_docs_dir)
    shutil.rmtree(old, ignore_errors=True)
    docs_stamp(settings).write_text(project_fingerprint(settings) + "\n")


def _consumers_after_producer(group: Any) -> None:
    """Watcher mode: the per-model sensors start once the producer's ``dbt build`` is done.

    Cosmos leaves them unlinked in a task group (they defer and wait for the producer's XComs).
    In one process (``dag.test()``: ``outcomes run``, the tests) tasks run one at a time, and a
    sensor picked before the producer would wait for ever; under a real executor the only cost is
    that the per-model states turn green when the build ends instead of during it. If the build
    fails, the sensors are upstream_failed and the producer's log names the failing node.
    """
    producer = next(t for t in group if t.task_id.endswith(".dbt_producer_watcher"))
    in_group = {t.task_id for t in group}
    for consumer in group:
        if consumer is producer or consumer.task_id.endswith("_done"):
            continue
        if not set(consumer.upstream_task_ids) & in_group:
            producer >> consumer


def _manifest_ready(manifest: Path) -> bool:
    """Whether the build DAG can be rendered from ``manifest``: False while a new home's first
    parse runs beside the command parsing this file (``MANIFEST_PENDING``, transform/dbt.py);
    a missing manifest otherwise is an import error, never silent."""
    from outcomes.transform.dbt import MANIFEST_PENDING

    if manifest.exists():
        return True
    if os.environ.get(MANIFEST_PENDING):
        log.info("no DAG %s yet: its manifest is being parsed", BUILD_DAG_ID)
        return False
    raise FileNotFoundError(
        f"{manifest} is missing: run `outcomes dbt parse` (outcomes run/demo/airflow do it)"
    )


def _erasure_tasks(build_id: Any) -> tuple[Any, Any]:
    """amend_locks (before dbt: the queued erasures, claimed for ``build_id``, leave every lock and
    the history) and close_erasures (after the history snapshot and the dashboard), in the DAG
    being defined."""

    @task
    def amend_locks(build_id: str) -> int:
        """Erasure outranks a lock: the queued erasures, claimed for this build, leave every
        lock (meta.lock_amendments) and the history (meta.erasure_sweeps)."""
        from outcomes.dashboard import tasks

        return tasks.amend_locks(build_id)

    @task
    def close_erasures(build_id: str) -> int:
        """The erasures this build claimed are gone from the locks, the history and the dashboards
        (the snapshots of before removed): out of the queue."""
        from outcomes.dashboard import tasks

        return tasks.close_erasures(build_id)

    return amend_locks(build_id), close_erasures(build_id)


def build_outcomes_dag(doc_md: str | None) -> DAG | None:
    """The ``build_outcomes`` DAG; None only while the parse of a new home's project runs beside
    the command that parses this file (``MANIFEST_PENDING``)."""
    from cosmos import (
        DbtTaskGroup,
        ExecutionConfig,
        ExecutionMode,
        InvocationMode,
        LoadMode,
        ProfileConfig,
        ProjectConfig,
        RenderConfig,
        TestBehavior,
    )
    from cosmos.operators.local import DbtBuildLocalOperator, DbtDocsLocalOperator, DbtSnapshotLocalOperator

    from outcomes.transform.dbt import (
        AFTER_PUBLISH_CACHE,
        AFTER_PUBLISH_VARS,
        BUILD_CACHE,
        PROFILE,
        TARGET,
        dbt_task_cache,
    )

    settings = load_settings()
    project = settings.dbt_project_dir
    if not _manifest_ready(settings.dbt_manifest):
        return None
    profile = ProfileConfig(
        profile_name=PROFILE, target_name=TARGET, profiles_yml_filepath=project / "profiles.yml"
    )
    # The as-of date reaches dbt in the environment (macros/as_of.sql), not as a var: a changed var
    # makes dbt parse the whole project again, a changed environment variable only the files that
    # read it. dbt_build keeps a partial-parse cache, and the two steps after the publish (the
    # same vars) share one: their other inputs never change (transform/dbt.py, BUILD_CACHE).
    dbt_env = {"OUTCOMES_AS_OF": AS_OF}
    # dbt unit tests test the SQL, not the night's data: they run in the test suite and CI
    # (`make test`), not in every nightly build (about 2 s of it at trial size; bench/README.md).
    build_env = {**dbt_env, "DBT_EXCLUDE_RESOURCE_TYPES": "unit_test"}
    mode = execution_mode()

    @dag(
        dag_id=BUILD_DAG_ID,
        schedule=build_schedule(),
        start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
        catchup=False,
        max_active_runs=1,
        tags=["outcomes", "build", "dbt"],
        default_args=default_args(),
        doc_md=doc_md,
        params={
            "as_of": Param(
                None,
                type=["null", "string"],
                format="date",
                description="Build as of this day (YYYY-MM-DD, the end of the day UTC). Empty: today, UTC.",
            ),
            "drift_reason": Param(
                None,
                type=["null", "string"],
                description=(
                    "Why row counts or rates may move beyond the gate's drift bounds this time (e.g. "
                    "'registry backfill of 2025'). Given: drift publishes with a warning and the "
                    "reason is kept in meta.gate_runs. Empty: drift beyond the bounds blocks."
                ),
            ),
        },
    )
    def build_outcomes() -> None:
        @task
        def resolve_as_of(params: dict[str, Any] | None = None) -> str:
            """The build's as-of date: the `as_of` param, or today (UTC). Every dbt step uses it."""
            value = (params or {}).get("as_of") or dt.datetime.now(dt.UTC).date().isoformat()
            dt.date.fromisoformat(value)  # a clear error for a malformed date
            return str(value)

        @task
        def start_build() -> str:
            """A build id, and an empty candidate schema (`marts_candidate`) for dbt to write into."""
            from outcomes.quality import tasks

            return tasks.start_build()

        # its failure is the gate blocking the publish: that alert, listing every failed expectation
        @task(
            task_id=GATE_TASK_ID,
            execution_timeout=dt.timedelta(minutes=30),
            on_failure_callback=OutcomesNotifier(GATE_BLOCKED),
        )
        def quality_gate(
            build_id: str, as_of: str, params: dict[str, Any] | None = None, run_id: str | None = None
        ) -> dict[str, Any]:
            """The Great Expectations gate on the candidate: error-level failures block the publish."""
            from outcomes.quality import tasks

            return tasks.quality_gate(build_id, as_of, (params or {}).get("drift_reason"), run_id)

        @task(outlets=[published_asset()])
        def publish(
            build_id: str, as_of: str, gate: dict[str, Any], run_id: str | None = None
        ) -> dict[str, Any]:
            """One transaction: the candidate becomes `marts`, with grants; meta.published_builds."""
            from outcomes.quality import tasks

            return tasks.publish_build(build_id, as_of, gate, run_id)

        @task
        def estimate_effects() -> dict[str, int]:
            """The between-arm estimates (scipy, statsmodels) into the candidate's effect marts."""
            from outcomes.analysis import tasks

            return tasks.estimate_effects()

        @task.short_circuit
        def docs_outdated() -> bool:
            """dbt docs describe the project, not the night's data: regenerate them only when a
            file of dbt_project/ or a migration changed since they were made (or there are none)."""
            from outcomes.transform.dbt import docs_are_current

            return not docs_are_current(load_settings())

        @task
        def refresh_dashboard() -> dict[str, Any]:
            """Render the published marts into a dated HTML snapshot and make it the latest."""
            from outcomes.dashboard import tasks

            return tasks.refresh_dashboard()

        as_of = resolve_as_of()
        build_id = start_build()
        dbt: Any
        if mode == "build":
            dbt = DbtBuildLocalOperator(
                task_id="dbt_build",
                doc_md="One `dbt build` of every model with its data tests into `marts_candidate`.",
                project_dir=str(project),
                profile_config=profile,
                env=build_env,
                append_env=True,
                cache_dir=dbt_task_cache(settings, BUILD_CACHE),
                exclude="path:snapshots",
                install_deps=False,
                emit_datasets=False,
                invocation_mode=InvocationMode.DBT_RUNNER,
                execution_timeout=dt.timedelta(hours=2),
            )
        else:
            dbt = DbtTaskGroup(
                group_id="dbt",
                project_config=ProjectConfig(
                    dbt_project_path=project,
                    manifest_path=settings.dbt_manifest,
                    env_vars=build_env,
                    install_dbt_deps=False,  # the project uses no packages
                ),
                profile_config=profile,
                execution_config=ExecutionConfig(
                    execution_mode=ExecutionMode.WATCHER if mode == "watcher" else ExecutionMode.LOCAL,
                    invocation_mode=InvocationMode.DBT_RUNNER,
                ),
                render_config=RenderConfig(
                    load_method=LoadMode.DBT_MANIFEST,
                    exclude=["path:snapshots"],
                    # watcher: the producer's `dbt build` runs every test in order; local: one
                    # `dbt build` per model, multi-parent tests after all their parents
                    test_behavior=TestBehavior.AFTER_EACH if mode == "watcher" else TestBehavior.BUILD,
                    should_detach_multiple_parents_tests=mode == "local",
                    # a unix-socket warehouse has no host for Cosmos' asset URIs: we emit our own
                    emit_datasets=False,
                ),
                operator_args={"execution_timeout": dt.timedelta(hours=2)},
            )
        if mode == "watcher":
            _consumers_after_producer(dbt)
        # the steps after the publish: the same project, profile and as-of date, on `marts`
        after_publish: dict[str, Any] = {
            "project_dir": str(project),
            "profile_config": profile,
            "env": dbt_env,
            "append_env": True,
            "vars": dict(AFTER_PUBLISH_VARS),
            "cache_dir": dbt_task_cache(settings, AFTER_PUBLISH_CACHE),
            "install_deps": False,
            "emit_datasets": False,
        }
        snapshot_history = DbtSnapshotLocalOperator(
            task_id="snapshot_history",
            doc_md="dbt snapshots of the published employment marts into schema `history` (SCD type 2).",
            **after_publish,
        )
        generate_docs = DbtDocsLocalOperator(
            task_id="generate_docs",
            callback=copy_docs,
            **after_publish,
            doc_md="`dbt docs generate`, kept under $OUTCOMES_HOME/dbt/docs and served in the Airflow UI.",
        )
        # XComArgs: resolved to their values when the tasks run
        gate = quality_gate(build_id, as_of)  # type: ignore[arg-type]
        published = publish(build_id, as_of, gate)  # type: ignore[arg-type]
        amended, closed = _erasure_tasks(build_id)
        as_of >> build_id >> amended >> dbt >> estimate_effects() >> gate
        dashboard = refresh_dashboard()
        published >> dashboard  # beside the history: one failing never holds back the other
        published >> snapshot_history >> docs_outdated() >> generate_docs
        # an erasure is closed once the history and the dashboard are rendered without them
        [snapshot_history, dashboard] >> closed

    return build_outcomes()
