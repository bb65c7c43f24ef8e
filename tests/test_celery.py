"""More than one machine, for real: the ingest and build DAGs under the CeleryExecutor, with a real
scheduler, dag-processor, triggerer and API server, a Redis broker and two Celery worker processes,
driven only through the REST API recipes of docs/runbook.md; the published marts must equal an in-process
build of the same deliveries, table by table."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from support.builds import published_scratch
from support.cluster import Cluster, redis_available, wait_until

from outcomes.contracts.registry import source_names
from outcomes.runners import airflow_env
from outcomes.settings import Settings, load_settings
from outcomes.warehouse.connection import Warehouse
from outcomes.warehouse.locks import checksum_sql

# About 7 minutes (a real build under Celery is ~4 min on 2 cores): `make test-celery` runs it, on
# its own, and CI does (docs/testing.md); `make test` leaves it out to stay well under 15 minutes.
pytestmark = [pytest.mark.slow, pytest.mark.celery]

RUNBOOK = Path(__file__).resolve().parent.parent / "docs" / "runbook.md"
SOURCES = source_names()
KEY = "p" * 64  # the key support.builds.published_scratch pseudonymises with


def recipe(name: str) -> str:
    """The runbook's recipe ``name``: the bash block after ``<!-- recipe: name -->``."""
    found = re.search(rf"<!-- recipe: {name} -->\n```bash\n(.*?)```", RUNBOOK.read_text(), re.S)
    assert found, f"docs/runbook.md has no recipe {name!r}"
    return found[1]


def run_recipes(cluster: Cluster, *names: str, **variables: str) -> str:
    """Run runbook recipes in one bash, as a user would paste them; returns what they print."""
    script = "set -euo pipefail\n" + "\n".join(recipe(n) for n in names)
    env = {
        "PATH": os.environ["PATH"],
        "AIRFLOW_URL": cluster.url,
        "AIRFLOW_USER": cluster.username,
        "AIRFLOW_PASSWORD": cluster.password,
        **variables,
    }
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, f"recipes {names} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def marts_checksums(warehouse: Warehouse) -> dict[str, tuple[int, str]]:
    with psycopg.connect(warehouse.url()) as conn:
        tables = [
            r[0]
            for r in conn.execute(
                "select table_name from information_schema.tables where table_schema = 'marts' order by 1"
            )
        ]
        return {t: tuple(conn.execute(checksum_sql("marts", t)).fetchone() or ()) for t in tables}


@pytest.fixture
def cluster_env(
    settings: Settings, warehouse: Warehouse, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[dict[str, str], Warehouse, Path]]:
    """The settings of a second deployment: its own OUTCOMES_HOME, warehouse database (beside the
    session's, on the same server) and Airflow metadata database; every schedule manual."""
    if not redis_available():
        pytest.fail("the CeleryExecutor test needs Redis on 127.0.0.1:6379 (OUTCOMES_TEST_REDIS_URL)")
    home = tmp_path_factory.mktemp("celery")
    name = f"{warehouse.database}_celery"
    cluster_wh = warehouse.for_database(name)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "OUTCOMES_"))}
    env.update(
        {
            "OUTCOMES_HOME": str(home / "home"),
            "OUTCOMES_WAREHOUSE_URL": cluster_wh.url(),
            "OUTCOMES_LANDING": str(home / "landing"),
            "OUTCOMES_PSEUDONYM_KEY": KEY,
            "OUTCOMES_RETRY_DELAY_SECONDS": "1",
            **{f"OUTCOMES_SCHEDULE_{s.upper()}": "manual" for s in (*SOURCES, "build")},
        }
    )
    cluster_settings = load_settings(env)
    env.update(airflow_env.airflow_environ(cluster_settings, cluster_wh))
    try:
        yield env, cluster_wh, home
    finally:
        with psycopg.connect(warehouse.url(database="postgres"), autocommit=True) as conn:
            for database in (name, cluster_wh.airflow_database):
                conn.execute(f'drop database if exists "{database}" with (force)')


def test_ingest_and_build_under_celery_with_two_workers_publish_the_in_process_results(
    settings: Settings,
    warehouse: Warehouse,
    cluster_env: tuple[dict[str, str], Warehouse, Path],
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    from outcomes.demo.sources import generate_sources

    env, cluster_wh, home = cluster_env
    today = dt.datetime.now(dt.UTC).date()  # the build's as-of when the Assets trigger it
    landing = Path(env["OUTCOMES_LANDING"])
    generate_sources(landing, seed=42, until=today)
    timings: dict[str, float] = {}
    started = time.monotonic()

    # the deployment's one-off preparation (compose: airflow-init): warehouse, Airflow DB, manifest
    prepared = subprocess.run(
        [
            sys.executable,
            "-c",
            "from outcomes.runners import inprocess; from outcomes.settings import load_settings; "
            "inprocess.prepare(load_settings())",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert prepared.returncode == 0, prepared.stdout + prepared.stderr
    timings["prepare"] = time.monotonic() - started

    folder = home / "logs"
    folder.mkdir()
    cluster = Cluster.celery(env, folder, workers=2)
    try:
        cluster.start()
        timings["start"] = time.monotonic() - started
        # the reference, in this process, while the deployment starts: the same deliveries and key,
        # loaded, built, gated and published by the same task functions without Airflow
        reference_db = f"{warehouse.database}_ref_{secrets.token_hex(3)}"
        with published_scratch(settings, warehouse, landing, today, reference_db) as reference:
            expected = marts_checksums(reference)
        timings["reference"] = time.monotonic() - started

        token = cluster.token()
        from outcomes.runners.standalone import unpause

        unpause(cluster.url, cluster.username, cluster.password)
        runs: dict[str, str] = {}

        def trigger(source: str) -> None:
            out = run_recipes(
                cluster, "token", "trigger", DAG=f"ingest_{source}", CONF=json.dumps({"wait": False})
            )
            runs[source] = out.strip().splitlines()[-1]

        def finished(source: str) -> str | None:
            run = cluster.api("GET", f"/api/v2/dags/ingest_{source}/dagRuns/{runs[source]}", token)
            return run["state"] if run["state"] in {"success", "failed"} else None

        # the nightly order: the trial's enrolment first (its schedule is 01:00, the others' later),
        # because employment rows name enrolled participants; then the other three side by side
        trigger("trial")
        assert wait_until("ingest_trial", cluster, lambda: finished("trial"), 300) == "success"
        for source in SOURCES[1:]:
            trigger(source)

        def build_done() -> dict[str, Any] | None:
            found = cluster.api("GET", "/api/v2/dags/build_outcomes/dagRuns?limit=5", token)["dag_runs"]
            finished = [r for r in found if r["state"] in {"success", "failed"}]
            return finished[0] if finished else None

        build = wait_until("the Asset-triggered build", cluster, build_done, 1500)
        timings["build"] = time.monotonic() - started
        listed = run_recipes(cluster, "token", "list-runs")
        assert build["dag_run_id"] in listed and "\tsuccess\t" in listed, listed
        failed = run_recipes(cluster, "token", "failed-tasks")
        assert build["state"] == "success", (
            f"build {build['state']}; failed tasks:\n{failed}\n{cluster.tail()}"
        )
        assert failed.strip() == ""
        assert build["run_type"] == "asset_triggered"

        # every ingest ran and loaded; the tasks were shared between both workers
        hosts: dict[str, int] = {}
        for source, run_id in runs.items():
            tis = cluster.api("GET", f"/api/v2/dags/ingest_{source}/dagRuns/{run_id}/taskInstances", token)
            states = {t["task_id"]: t["state"] for t in tis["task_instances"]}
            assert set(states.values()) == {"success"}, (source, states)
            for t in tis["task_instances"]:
                hosts[t["hostname"]] = hosts.get(t["hostname"], 0) + 1
        tis = cluster.api(
            "GET", f"/api/v2/dags/build_outcomes/dagRuns/{build['dag_run_id']}/taskInstances?limit=500", token
        )["task_instances"]
        for t in tis:
            if t["state"] == "skipped":  # a skipped task never reached a worker: no hostname
                continue
            if not t["hostname"]:  # the scheduler completes an EmptyOperator itself (Cosmos' "_done")
                assert t["operator"] == "EmptyOperator", t
                continue
            hosts[t["hostname"]] = hosts.get(t["hostname"], 0) + 1
        assert set(hosts) == {"worker-1", "worker-2"}, hosts

        log = run_recipes(
            cluster, "token", "task-log", DAG="build_outcomes", RUN=build["dag_run_id"], TASK="publish"
        )
        assert "pushing xcom" in log.lower(), log[-2000:]  # publish returned its summary

        # the same warehouse results as the in-process build, table by table
        assert marts_checksums(cluster_wh) == expected
        with psycopg.connect(cluster_wh.url()) as conn:
            published = conn.execute("select as_of_date, gate_result from meta.published_builds").fetchall()
        assert published == [(today, "passed")]
        assert (Path(env["OUTCOMES_HOME"]) / "dashboards" / "latest.html").exists()
    finally:
        cluster.stop()
        print("celery timings (s since start):", {k: round(v) for k, v in timings.items()})
