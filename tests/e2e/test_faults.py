"""Faults: a run killed anywhere recovers without loss (docs/reliability.md, "Faults").

A warehouse of its own (its own OUTCOMES_HOME; on the server, its own database) runs the demo
once: the published marts of that run are the reference. Each fault is then injected into an
``outcomes run`` of the same as-of date: SIGKILL at a fault point inside a critical section
(``outcomes.runners.faults``), SIGKILL from outside while dbt builds or the history snapshot runs, the
warehouse's server restarted (embedded; on a shared server, every connection of the run cut) in
the middle of dbt, a second run started beside a first. After each fault the published marts
are still the reference (or, for a fault after the publish committed, the same marts again), the
dashboard's latest page is a whole page, every delivery reconciles; a re-run succeeds and
reaches the reference marts, checksum by checksum, and a history whose aggregates agree with its
rows at every build. ``FAULTS`` counts what was injected and survived (the README reports it).
"""

from __future__ import annotations

import csv
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from support.deliveries import write_delivery
from support.deployments import own_environment
from support.history import history_counts

from outcomes.settings import load_settings
from outcomes.warehouse.connection import Warehouse, resolve
from outcomes.warehouse.locks import checksum_sql

pytestmark = pytest.mark.slow
OUTCOMES = str(Path(sys.executable).parent / "outcomes")
#: The published marts (with the analysis datasets and the effect marts).
MARTS = 13

#: Faults injected and survived in this module, by name (a test adds its own when it passes).
FAULTS: list[str] = []


class Started:
    """A run started in the background, its output in a file; killed with its children if the
    test leaves it running."""

    def __init__(self, process: subprocess.Popen[str], output: Path) -> None:
        self.process, self.output = process, output

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def text(self) -> str:
        return self.output.read_text(errors="replace")

    def kill(self) -> None:
        if self.alive():
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=60)

    def finish(self, timeout: float = 900) -> int:
        try:
            return self.process.wait(timeout=timeout)
        finally:
            self.kill()


class Home:
    """The module's own warehouse: its environment, and what the tests read of it."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.settings = load_settings(env)
        self.warehouse: Warehouse = resolve(self.settings, start=True)
        self.as_of = ""
        self.reference: dict[str, tuple[int, str]] = {}

    def run(
        self, *args: str, fault: str | None = None, timeout: int = 900
    ) -> subprocess.CompletedProcess[str]:
        env = {**self.env, **({"OUTCOMES_FAULT": fault} if fault else {})}
        return subprocess.run(
            [OUTCOMES, *args], capture_output=True, text=True, env=env, timeout=timeout, check=False
        )

    def start(self, *args: str) -> Started:
        output = Path(self.env["OUTCOMES_HOME"]) / f"run-{time.monotonic_ns()}.out"
        with output.open("w") as out:  # a file, not a pipe nobody reads while the test waits
            process = subprocess.Popen(
                [OUTCOMES, *args],
                stdout=out,
                stderr=subprocess.STDOUT,
                text=True,
                env=self.env,
                start_new_session=True,  # its own process group: a kill reaches its children too
            )
        return Started(process, output)

    def nightly(self, fault: str | None = None) -> subprocess.CompletedProcess[str]:
        return self.run("run", "--as-of", self.as_of, fault=fault)

    def query(self, statement: str, *args: Any) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.warehouse.url()) as conn:
            return conn.execute(statement, args or None).fetchall()

    def marts(self) -> dict[str, tuple[int, str]]:
        with psycopg.connect(self.warehouse.url()) as conn:
            tables = [
                r[0]
                for r in conn.execute(
                    "select table_name from information_schema.tables where table_schema = 'marts' order by 1"
                )
            ]
            return {t: tuple(conn.execute(checksum_sql("marts", t)).fetchone()) for t in tables}  # type: ignore[misc]

    def whole(self) -> None:
        """What a reader sees is whole: the reference marts, a latest dashboard page that is a
        complete snapshot with its sidecar, every delivery reconciled."""
        from outcomes.dashboard.snapshots import latest, list_snapshots

        assert self.marts() == self.reference
        page = latest(self.settings)
        assert page is not None and page.read_text(encoding="utf-8").rstrip().endswith("</html>")
        assert page.with_suffix(".json").exists()
        for snapshot in list_snapshots(self.settings):
            assert snapshot.path.with_suffix(".json").exists(), snapshot.name
        assert self.unreconciled() == []

    def unreconciled(self) -> list[tuple[Any, ...]]:
        return self.query(
            """
            select source, delivery_id from meta.deliveries
            where status <> 'duplicate'
              and rows_received <> rows_loaded + rows_pending + rows_purged + rows_quarantined
            """
        )

    def recovers(self) -> None:
        """A re-run succeeds and reaches the reference, and the history agrees with itself."""
        done = self.nightly()
        assert done.returncode == 0, done.stdout + done.stderr
        self.whole()
        agreeing, _, _ = history_counts(self.warehouse)
        assert agreeing


@pytest.fixture(scope="module")
def home() -> Iterator[Home]:
    path = Path(tempfile.mkdtemp(prefix="of-", dir="/tmp"))  # short: unix socket paths
    env = own_environment(path)
    server = os.environ.get("OUTCOMES_TEST_WAREHOUSE_URL")
    database = f"outcomes_faults_{secrets.token_hex(3)}"
    if server:
        from sqlalchemy.engine import make_url

        env["OUTCOMES_WAREHOUSE_URL"] = make_url(server).set(database=database).render_as_string(False)
    try:
        demo = subprocess.run([OUTCOMES, "demo"], capture_output=True, text=True, env=env, timeout=900)
        assert demo.returncode == 0, demo.stdout + demo.stderr
        env["OUTCOMES_PSEUDONYM_KEY_FILE"] = str(path / "pseudonym.key")  # the demo's own key
        kept = Home(env)
        ((as_of,),) = kept.query(
            "select as_of_date::text from meta.published_builds order by published_at desc limit 1"
        )
        kept.as_of = as_of
        kept.reference = kept.marts()
        assert len(kept.reference) == MARTS
        yield kept
    finally:
        if server:
            with psycopg.connect(server, autocommit=True) as conn:
                for name in (database, f"{database}_airflow"):
                    conn.execute(f"drop database if exists {name} with (force)")
        else:
            subprocess.run([OUTCOMES, "stop"], env=env, capture_output=True, timeout=120, check=False)
        import shutil

        shutil.rmtree(path, ignore_errors=True)


def _killed(done: subprocess.CompletedProcess[str]) -> None:
    assert done.returncode == -signal.SIGKILL, done.stdout + done.stderr


def _wait_for(run: Started, ready: Callable[[], bool], limit: float = 300) -> None:
    deadline = time.monotonic() + limit
    while not ready():
        assert run.alive(), f"the run ended before the moment came: {run.text()}"
        assert time.monotonic() < deadline, "the moment never came"
        time.sleep(0.05)


def _kill_when(home: Home, ready: Callable[[], bool]) -> None:
    """Start a run, SIGKILL its process group the moment ``ready()``."""
    run = home.start("run", "--as-of", home.as_of)
    try:
        _wait_for(run, ready)
    finally:
        run.kill()
    assert run.process.returncode == -signal.SIGKILL, run.text()


def _running(home: Home, task_id: str) -> bool:
    """The build's task ``task_id`` is running now (Airflow's record of the run)."""
    with psycopg.connect(home.warehouse.url(database=home.warehouse.airflow_database)) as conn:
        row = conn.execute(
            """
            select count(*) from task_instance
            where dag_id = 'build_outcomes' and task_id = %s and state = 'running' and run_id = (
                select run_id from dag_run where dag_id = 'build_outcomes' order by id desc limit 1
            )
            """,
            (task_id,),
        ).fetchone()
    return bool(row and row[0])


def _mid_dbt(home: Home) -> bool:
    """dbt is building the candidate: the build's dbt task runs and has made some of the marts."""
    if not _running(home, "dbt_build"):
        return False
    made = home.query("select count(*) from pg_tables where schemaname = 'marts_candidate'")
    return made[0][0] > 0


def test_killed_between_two_deliveries_the_next_run_applies_the_rest(home: Home) -> None:
    from outcomes.ingest.landing import complete_deliveries

    landing = Path(home.env["OUTCOMES_LANDING"])
    latest = complete_deliveries(landing, "trial")[-1]
    with open(Path(str(latest)) / "enrolment.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    stamp = time.strftime("%Y%m%dT%H%MZ", time.gmtime())
    # the same extract twice more, in other row orders (new bytes: not duplicates)
    ids = [f"{max(stamp, latest.name[:14])}-8{n}" for n in (1, 2)]
    write_delivery(landing, "trial", ids[0], {"enrolment.csv": rows[::-1]})
    write_delivery(landing, "trial", ids[1], {"enrolment.csv": rows[1:] + rows[:1]})
    _killed(home.nightly(fault="ingest.between_deliveries"))
    applied = home.query("select delivery_id, status from meta.deliveries where delivery_id = any(%s)", ids)
    assert applied == [(ids[0], "loaded")]  # the first whole, the second not begun
    home.whole()
    home.recovers()
    assert sorted(home.query("select delivery_id from meta.deliveries where delivery_id = any(%s)", ids)) == [
        (ids[0],),
        (ids[1],),
    ]
    FAULTS.append("SIGKILL between two deliveries")


@pytest.mark.parametrize("point", ["gate.before_record", "publish.before_commit", "dashboard.before_rename"])
def test_killed_inside_a_critical_section_nothing_half_done_shows(home: Home, point: str) -> None:
    from outcomes.dashboard.snapshots import latest

    builds = home.query("select count(*) from meta.published_builds")
    gates = home.query("select count(*) from meta.gate_runs")
    page = latest(home.settings)
    _killed(home.nightly(fault=point))
    unfinished = list(home.settings.dashboards_dir.glob(".*.tmp"))
    if point == "dashboard.before_rename":  # after the publish: the same marts, published again
        assert home.query("select count(*) from meta.published_builds")[0][0] == builds[0][0] + 1
        assert latest(home.settings) == page and unfinished  # written, never renamed: not shown
    else:
        assert home.query("select count(*) from meta.published_builds") == builds
        assert not unfinished
    if point == "gate.before_record":
        assert home.query("select count(*) from meta.gate_runs") == gates
    home.whole()
    home.recovers()
    assert not list(home.settings.dashboards_dir.glob(".*.tmp"))  # the next snapshot cleared them
    FAULTS.append(f"SIGKILL at {point}")


def test_killed_while_dbt_builds(home: Home) -> None:
    _kill_when(home, lambda: _mid_dbt(home))
    made = home.query("select count(*) from pg_tables where schemaname = 'marts_candidate'")
    assert 0 < made[0][0] < MARTS  # killed with some of the marts built and not all
    home.whole()
    home.recovers()
    FAULTS.append("SIGKILL while dbt builds the candidate")


def test_killed_during_the_history_snapshot(home: Home) -> None:
    _kill_when(home, lambda: _running(home, "snapshot_history"))
    home.whole()
    home.recovers()
    FAULTS.append("SIGKILL during the history snapshot")


def test_the_warehouse_server_restarts_during_a_run(home: Home) -> None:
    """Embedded: the server itself restarted (pg_ctl, fast shutdown) while dbt builds; on a shared
    server, every connection of the run's database cut (the same to the run, and the server's
    other databases are not this test's to restart)."""
    run = home.start("run", "--as-of", home.as_of)
    try:
        _wait_for(run, lambda: _mid_dbt(home))
        started = home.query("select pg_postmaster_start_time()")
        _restart(home)
        code = run.finish()
    finally:
        run.kill()
    assert code in (0, 1), run.text()  # failed, or carried through by the task's retry
    if home.warehouse.embedded:  # a new server, not the same one
        assert home.query("select pg_postmaster_start_time()") != started
    home.whole()
    home.recovers()
    FAULTS.append("warehouse server restarted during dbt")


def _restart(home: Home) -> None:
    if home.warehouse.embedded:
        from pgserver._commands import pg_ctl  # type: ignore[attr-defined]

        from outcomes.warehouse.embedded import SYSTEM_USER

        pg_ctl(  # as outcomes.warehouse.embedded.stop does: as pgserver's own user when root
            ["-w", "-m", "fast", "restart"],
            pgdata=home.settings.pgdata.resolve(),
            user=SYSTEM_USER if os.geteuid() == 0 else None,
        )
    else:
        with psycopg.connect(home.warehouse.url(database="postgres"), autocommit=True) as conn:
            conn.execute(
                "select pg_terminate_backend(pid) from pg_stat_activity "
                "where datname = %s and pid <> pg_backend_pid()",
                (home.warehouse.database,),
            )


def test_a_second_run_beside_the_first_exits_and_the_first_finishes(home: Home) -> None:
    first = home.start("run", "--as-of", home.as_of)
    holding = f"outcomes run (pid {first.pid} %"
    try:
        _wait_for(  # the first holds the lock (not only its connection)
            first,
            lambda: (
                home.query(
                    "select count(*) from pg_locks as l join pg_stat_activity as a using (pid) "
                    "where l.locktype = 'advisory' and l.granted and a.application_name like %s",
                    holding,
                )[0][0]
                > 0
            ),
        )
        second = home.nightly()
        code = first.finish()
    finally:
        first.kill()
    assert second.returncode == 4, second.stdout + second.stderr
    assert f"pid {first.pid}" in second.stdout and "another run is using the warehouse" in second.stdout
    assert code == 0, first.text()
    home.whole()
    FAULTS.append("a second run started beside a first")


def test_every_fault_was_survived(home: Home) -> None:
    """The count the README reports: every fault above, injected and survived."""
    assert len(FAULTS) == 8, FAULTS
