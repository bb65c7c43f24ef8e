"""Benchmark parts for the nightly job at a given cohort size (used by ``bench/run.py``).

Every measurement runs the real thing, as a user would: ``outcomes demo-sources`` writes the four
source systems' deliveries, ``outcomes run`` applies them and builds through the real DAGs
(in-process Airflow, Cosmos, dbt, Great Expectations), ``outcomes rebuild`` runs the nightly build
again from raw. Each command runs in a child process under an ``OUTCOMES_HOME`` of its own (its own
embedded PostgreSQL), and each stage's time is read back from Airflow's own record of the run
(``task_instance`` start and end in the metadata database), so the figures are what the DAG run
spent, not an estimate.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: The history the synthetic sources end on, and every build's as-of date: fixed, so that a
#: bench run builds the same marts whatever day it runs (their checksums are in the results).
UNTIL = dt.date(2026, 11, 21)
AS_OF = UNTIL.isoformat()
#: The last night's deliveries (extracted on UNTIL): held back for the incremental night.
TONIGHT = UNTIL.strftime("%Y%m%dT")
#: A fixed, public benchmark key: synthetic data only, never a deployment's key.
BENCH_KEY = "bench-key-synthetic-data-only-0123456789"

#: The build's stages: (name in the results, task ids of ``build_outcomes`` whose time it is).
STAGES: tuple[tuple[str, tuple[str, ...]], ...] = (
    # by OUTCOMES_DBT_EXECUTION: the watcher's producer and sensors, one dbt_build task, or a
    # task per model; a stage's time is the span from its first task's start to its last's end
    ("dbt", ("dbt_build", "dbt.*")),
    ("effects", ("estimate_effects",)),
    ("gate", ("quality_gate",)),
    ("publish", ("publish",)),
    ("history", ("snapshot_history",)),
    ("dashboard", ("refresh_dashboard",)),
    ("docs", ("docs_outdated", "generate_docs")),
)
OUTCOMES = str(Path(sys.executable).with_name("outcomes"))
#: Variables that say where things are: each bench home sets its own.
LOCATION = frozenset(
    {
        "OUTCOMES_HOME",
        "OUTCOMES_WAREHOUSE_URL",
        "OUTCOMES_LANDING",
        "OUTCOMES_PSEUDONYM_KEY",
        "OUTCOMES_PSEUDONYM_KEY_FILE",
        "OUTCOMES_PROJECT_DIR",
    }
)


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


@dataclass
class Home:
    """One ``OUTCOMES_HOME`` (embedded warehouse, Airflow home, landing zone) for one cohort size."""

    path: Path
    participants: int

    @property
    def landing(self) -> Path:
        return self.path / "landing"

    @property
    def held_back(self) -> Path:
        return self.path / "tonight"

    def env(self, **extra: str) -> dict[str, str]:
        """The environment of this home's commands: where things are is the bench's; settings a
        user exported (``OUTCOMES_DBT_THREADS``, say) are kept, and recorded in the results."""
        env = {k: v for k, v in os.environ.items() if k not in LOCATION and not k.startswith("AIRFLOW")}
        env.update(
            OUTCOMES_HOME=str(self.path),
            OUTCOMES_LANDING=str(self.landing),
            OUTCOMES_PSEUDONYM_KEY=BENCH_KEY,
            **extra,
        )
        return env

    def outcomes(self, *args: str, check: bool = True, **extra: str) -> float:
        """``outcomes <args>`` in a child process (``extra``: more environment); its wall time."""
        started = time.perf_counter()
        done = subprocess.run(
            [OUTCOMES, *args], env=self.env(**extra), capture_output=True, text=True, check=False
        )
        seconds = time.perf_counter() - started
        if check and done.returncode != 0:
            tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-25:])
            raise RuntimeError(f"outcomes {' '.join(args)} exited {done.returncode}:\n{tail}")
        return seconds

    def url(self, database: str = "outcomes") -> str:
        from urllib.parse import quote

        return f"postgresql://postgres@/{database}?host={quote(str(self.path / 'pg'), safe='')}"

    def stop(self) -> None:
        self.outcomes("stop", check=False)

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.path, ignore_errors=True)


def new_home(root: Path, participants: int, tag: str = "") -> Home:
    """A fresh home under ``root`` (short paths: unix sockets are limited to ~107 bytes)."""
    path = root / f"n{participants}{tag}"
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return Home(path, participants)


def generate(home: Home) -> float:
    """Write the synthetic deliveries of all four sources (setup; its time is reported apart)."""
    return home.outcomes(
        "demo-sources",
        "--out",
        str(home.landing),
        "--participants",
        str(home.participants),
        "--until",
        AS_OF,
    )


def hold_back_tonight(home: Home) -> int:
    """Move the last night's deliveries out of the landing zone; how many."""
    moved = 0
    for delivery in sorted(home.landing.glob(f"*/{TONIGHT}*")):
        target = home.held_back / delivery.parent.name / delivery.name
        target.parent.mkdir(parents=True, exist_ok=True)
        delivery.rename(target)
        moved += 1
    return moved


def land_tonight(home: Home) -> None:
    """Deliver the held-back night: each delivery's files, then its manifest (complete last)."""
    for delivery in sorted(home.held_back.glob("*/*")):
        target = home.landing / delivery.parent.name / delivery.name
        target.mkdir(parents=True, exist_ok=True)
        for item in sorted(delivery.iterdir(), key=lambda p: p.name == "_manifest.json"):
            item.rename(target / item.name)
        delivery.rmdir()


def query(home: Home, sql: str, database: str = "outcomes") -> list[tuple[Any, ...]]:
    import psycopg

    with psycopg.connect(home.url(database)) as conn:
        return conn.execute(sql).fetchall()


def rows_received(home: Home) -> int:
    """Rows received by the warehouse so far (every delivery's file rows, meta.deliveries)."""
    return int(query(home, "select coalesce(sum(rows_received), 0) from meta.deliveries")[0][0])


@dataclass
class RunTimes:
    """One DAG-driven command: its wall time and each stage's time from Airflow's task record."""

    wall: float
    stages: dict[str, float] = field(default_factory=dict)
    ingest: float = 0.0

    @property
    def orchestration(self) -> float:
        """Wall time outside the measured stages: start-up, DAG parsing, task bookkeeping."""
        return max(self.wall - sum(self.stages.values()) - self.ingest, 0.0)

    def as_dict(self) -> dict[str, Any]:
        return {
            "wall_s": round(self.wall, 2),
            "ingest_s": round(self.ingest, 2),
            "stages_s": {k: round(v, 2) for k, v in self.stages.items()},
            "orchestration_s": round(self.orchestration, 2),
        }


def last_run_times(home: Home, wall: float, *, with_ingest: bool) -> RunTimes:
    """Stage times of the latest ``build_outcomes`` run (and the ingest runs after ``since``)."""
    rows = query(
        home,
        """
        select ti.task_id, extract(epoch from ti.start_date), extract(epoch from ti.end_date)
        from task_instance as ti
        where ti.run_id = (
            select run_id from dag_run where dag_id = 'build_outcomes' order by start_date desc limit 1
        ) and ti.dag_id = 'build_outcomes'
        """,
        database="outcomes_airflow",
    )
    times = RunTimes(wall=wall)
    for stage, patterns in STAGES:
        # the stage's span: from its first task's start to its last task's end
        spans = [
            (float(start), float(end))
            for task, start, end in rows
            if start is not None and end is not None and any(fnmatch.fnmatchcase(task, p) for p in patterns)
        ]
        times.stages[stage] = max(e for _, e in spans) - min(s for s, _ in spans) if spans else 0.0
    if with_ingest:
        # the ingest DAGs' runs of this command: the latest run of each
        ingest = query(
            home,
            """
            select coalesce(sum(extract(epoch from ti.end_date - ti.start_date)), 0)
            from task_instance as ti
            join (
                select distinct on (dag_id) dag_id, run_id from dag_run
                where dag_id like 'ingest\\_%' order by dag_id, start_date desc
            ) as latest on latest.dag_id = ti.dag_id and latest.run_id = ti.run_id
            where ti.task_id = 'apply_deliveries'
            """,
            database="outcomes_airflow",
        )
        times.ingest = float(ingest[0][0])
    return times


def checksums(home: Home) -> dict[str, list[Any]]:
    """Every published mart: [rows, md5 of all its rows in text order] (equal iff the rows are)."""
    tables = [
        r[0]
        for r in query(
            home,
            "select table_name from information_schema.tables where table_schema = 'marts' order by 1",
        )
    ]
    import psycopg

    from outcomes.warehouse.locks import checksum_sql  # the database locks' checksum

    out: dict[str, list[Any]] = {}
    with psycopg.connect(home.url()) as conn:
        for name in tables:
            n, digest = conn.execute(checksum_sql("marts", name)).fetchone() or (0, "")
            out[name] = [int(n), digest]
    return out


def median(values: list[float]) -> float:
    import statistics

    return float(statistics.median(values)) if values else 0.0


def median_times(runs: list[RunTimes]) -> dict[str, Any]:
    """Per stage and overall, the median over the runs (each field on its own)."""
    return {
        "wall_s": round(median([r.wall for r in runs]), 2),
        "ingest_s": round(median([r.ingest for r in runs]), 2),
        "stages_s": {s: round(median([r.stages[s] for r in runs]), 2) for s, _ in STAGES},
        "orchestration_s": round(median([r.orchestration for r in runs]), 2),
        "repeats": len(runs),
    }


def nightly(
    root: Path,
    participants: int,
    repeats: int,
    *,
    keep: bool = False,
    after: Callable[[Home], Any] | None = None,
) -> dict[str, Any]:
    """The whole story at one cohort size.

    1. generate the deliveries (setup), hold back the last night's;
    2. ``outcomes run``: every delivery but tonight's applied, the first build (timed, not the
       headline: it also migrates and parses);
    3. the incremental night: tonight's deliveries land, ``outcomes run`` end to end (timed);
    4. the nightly build, ``outcomes rebuild`` ``repeats`` times (the headline: medians);
    5. checksums of every published mart;
    6. ``after(home)``, if given, on the same warehouse (its result under ``"after"``).
    """
    home = new_home(root, participants)
    try:
        log(f"{participants:,} participants: generating the deliveries ...")
        generated = generate(home)
        held = hold_back_tonight(home)
        log(f"  generated in {generated:.1f} s; {held} deliveries of the last night held back")
        log("  first run: ingest + build of every delivery but tonight's ...")
        wall = home.outcomes("run", "--as-of", AS_OF)
        first = last_run_times(home, wall, with_ingest=True)
        backlog_rows = rows_received(home)
        log(f"  first run {wall:.1f} s ({backlog_rows:,} rows)")

        land_tonight(home)
        log("  incremental night: tonight's deliveries, then outcomes run ...")
        wall = home.outcomes("run", "--as-of", AS_OF)
        incremental = last_run_times(home, wall, with_ingest=True)
        total_rows = rows_received(home)
        log(f"  incremental night {wall:.1f} s ({total_rows - backlog_rows:,} new rows)")

        builds: list[RunTimes] = []
        for i in range(repeats):
            wall = home.outcomes("rebuild", "--as-of", AS_OF)
            builds.append(last_run_times(home, wall, with_ingest=False))
            log(f"  nightly build {i + 1}/{repeats}: {wall:.1f} s {builds[-1].stages}")
        marts = checksums(home)
        extra = {"after": after(home)} if after is not None else {}
        return {
            **extra,
            "participants": participants,
            "rows": total_rows,
            "generate_s": round(generated, 2),
            "first_run": first.as_dict(),
            "incremental_night": {
                **incremental.as_dict(),
                "new_rows": total_rows - backlog_rows,
                "new_rows_pct": round(100.0 * (total_rows - backlog_rows) / max(total_rows, 1), 2),
            },
            "build": median_times(builds),
            "build_runs": [b.as_dict() for b in builds],
            "checksums": marts,
        }
    finally:
        if keep:
            home.stop()
            log(f"  kept {home.path}")
        else:
            home.remove()


# --- the orchestration overhead: the same work called directly -----------------------------

DIRECT = r"""
import datetime as dt, json, sys, time
t0 = time.perf_counter()
marks = {}
def mark(name, since):
    marks[name] = round(time.perf_counter() - since, 3)
    return time.perf_counter()

from outcomes.settings import load_settings
from outcomes.warehouse.bootstrap import bootstrap
settings = load_settings()
warehouse = bootstrap(settings)
from outcomes.runners import airflow_env
airflow_env.configure(settings, warehouse)
t = mark("bootstrap", t0)
from outcomes.contracts.registry import source_names
from outcomes.ingest.service import apply_source
for source in source_names():  # in the contract's order: the enrolment first
    apply_source(settings, source)
t = mark("ingest", t)
as_of = sys.argv[1]
day = dt.date.fromisoformat(as_of)
from outcomes.quality import tasks as quality
from outcomes.dashboard import tasks as dashboard
from outcomes.transform.dbt import run_dbt
build_id = quality.start_build()
dashboard.amend_locks(build_id, warehouse)
done = run_dbt(settings, warehouse, ["build", "--exclude", "path:snapshots"], as_of=day)
assert done.success, done.failures
t = mark("dbt", t)
from outcomes.analysis import tasks as analysis
analysis.estimate_effects(warehouse)
t = mark("effects", t)
gate = quality.quality_gate(build_id, as_of, None, None, warehouse)
t = mark("gate", t)
quality.publish_build(build_id, as_of, gate, None, warehouse)
t = mark("publish", t)
done = run_dbt(settings, warehouse, ["snapshot"], as_of=day, marts_schema="marts")
assert done.success, done.failures
t = mark("history", t)
dashboard.refresh_dashboard(warehouse)
dashboard.close_erasures(build_id, warehouse)  # after the history and the dashboard, as in the DAG
t = mark("dashboard", t)
done = run_dbt(settings, warehouse, ["docs", "generate"], as_of=day, marts_schema="marts")
assert done.success, done.failures
t = mark("docs", t)
print(json.dumps(marks))
"""


def direct(root: Path, participants: int) -> dict[str, Any]:
    """The nightly job's work called directly in one process (no Airflow): ingest every delivery,
    dbt build, gate, publish, history, dashboard, docs. Its wall time includes the interpreter's
    start and every import, as ``outcomes run``'s does."""
    import json

    home = new_home(root, participants, "-direct")
    try:
        generate(home)
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-c", DIRECT, AS_OF], env=home.env(), capture_output=True, text=True, check=False
        )
        wall = time.perf_counter() - started
        if done.returncode != 0:
            raise RuntimeError("direct run failed:\n" + "\n".join(done.stderr.splitlines()[-25:]))
        marks = json.loads(done.stdout.strip().splitlines()[-1])
        return {"wall_s": round(wall, 2), "steps_s": marks, "checksums": checksums(home)}
    finally:
        home.remove()


def orchestrated(root: Path, participants: int) -> dict[str, Any]:
    """``outcomes run`` on fresh deliveries and a fresh warehouse: what a user types."""
    home = new_home(root, participants, "-run")
    try:
        generate(home)
        wall = home.outcomes("run", "--as-of", AS_OF)
        times = last_run_times(home, wall, with_ingest=True)
        return {**times.as_dict(), "checksums": checksums(home)}
    finally:
        home.remove()


# --- DAG parse times ------------------------------------------------------------------------

PARSE = r"""
import json, os, statistics, sys, time
from pathlib import Path
folder = Path(sys.argv[1]); repeats = int(sys.argv[2])
from outcomes.settings import load_settings
from outcomes.warehouse.connection import resolve
from outcomes.runners import airflow_env
settings = load_settings()
airflow_env.configure(settings, resolve(settings, start=True))
import airflow.sdk  # noqa: F401  (the dag-processor has Airflow imported before it parses a file)
from airflow.dag_processing.dagbag import DagBag
out = {}
for path in sorted(folder.glob("*.py")):
    times = []
    for _ in range(repeats):
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # a fresh child per parse, as the dag-processor does: the package is imported anew
            try:
                started = time.perf_counter()
                bag = DagBag(dag_folder=str(path))
                seconds = time.perf_counter() - started
                os.write(write, json.dumps([seconds, dict(bag.import_errors)]).encode())
            except BaseException as error:
                os.write(write, json.dumps([0, {str(path): repr(error)}]).encode())
            finally:
                os._exit(0)
        os.close(write)
        data = b""
        while chunk := os.read(read, 65536):
            data += chunk
        os.waitpid(pid, 0)
        seconds, errors = json.loads(data)
        if errors:
            raise SystemExit(f"{path.name}: import errors: {errors}")
        times.append(seconds)
    out[path.name] = round(statistics.median(times), 3)
print(json.dumps(out))
"""


def parse_times(root: Path, dags: Path, repeats: int) -> dict[str, float]:
    """Each DAG file's parse time (median of ``repeats``), each parse in a fresh forked child of a
    process that has Airflow imported, as Airflow's dag-processor parses them."""
    import json

    home = new_home(root, 58, "-parse")
    try:
        env = home.env()
        env["OUTCOMES_PROJECT_DIR"] = str(dags.parent)
        # the manifest the build DAG reads (stale or missing: parse it first, not timed)
        subprocess.run([OUTCOMES, "dbt", "parse"], env=env, capture_output=True, check=True)
        done = subprocess.run(
            [sys.executable, "-c", PARSE, str(dags), str(repeats)],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError("parse timing failed:\n" + "\n".join(done.stderr.splitlines()[-25:]))
        return dict(json.loads(done.stdout.strip().splitlines()[-1]))
    finally:
        home.remove()


# --- how Cosmos runs dbt: the settings, measured side by side -------------------------------

#: (OUTCOMES_DBT_EXECUTION, OUTCOMES_DBT_THREADS) combinations the ``modes`` part compares.
MODES: tuple[tuple[str, str], ...] = (("watcher", "4"), ("build", "4"), ("local", "4"), ("build", "1"))


def modes(
    root: Path, participants: int, repeats: int, variants: tuple[tuple[str, str], ...] = MODES
) -> list[dict[str, Any]]:
    """The nightly build (``outcomes rebuild``) under each execution mode and thread count, in
    rounds on one warehouse (one of each per round), after one ``outcomes run``; every variant
    must publish the same marts."""
    home = new_home(root, participants, "-modes")
    try:
        log(f"modes at {participants:,} participants: generating, first run ...")
        generate(home)
        home.outcomes("run", "--as-of", AS_OF)
        return modes_on(home, repeats, variants)
    finally:
        home.remove()


def modes_on(home: Home, repeats: int, variants: tuple[tuple[str, str], ...]) -> list[dict[str, Any]]:
    """:func:`modes` on a warehouse that has published a build (``nightly``'s, at small scale)."""
    reference = checksums(home)
    runs: dict[tuple[str, str], list[RunTimes]] = {combo: [] for combo in variants}
    for i in range(repeats):
        for mode, threads in variants:
            wall = home.outcomes(
                "rebuild", "--as-of", AS_OF, OUTCOMES_DBT_EXECUTION=mode, OUTCOMES_DBT_THREADS=threads
            )
            runs[(mode, threads)].append(last_run_times(home, wall, with_ingest=False))
            log(f"  {mode}, {threads} thread(s), round {i + 1}/{repeats}: {wall:.1f} s")
            if checksums(home) != reference:
                raise RuntimeError(f"execution {mode} with {threads} thread(s) published other marts")
    return [
        {"execution": mode, "threads": int(threads), "build": median_times(runs[(mode, threads)])}
        for mode, threads in variants
    ]
