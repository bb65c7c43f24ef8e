"""Every DAG file parses, is wiring only, and carries the conventions the operators rely on."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from outcomes.settings import Settings

DAGS_DIR = Path(__file__).resolve().parents[2] / "dags"
DAG_FILES = sorted(p for p in DAGS_DIR.glob("*.py") if not p.name.startswith("_"))
HEAVY_MODULES = ("pandas", "great_expectations", "dbt", "cosmos", "psycopg", "outcomes.warehouse.bootstrap")
#: Cosmos renders the build DAG from the parsed manifest at parse time (without importing dbt).
ALLOWED = {"build_outcomes.py": ("cosmos",)}


@pytest.fixture(scope="module")
def dagbag(airflow_ready: Settings) -> Any:
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(airflow_ready.dags_folder))


def test_there_are_dag_files() -> None:
    assert DAG_FILES, f"no DAG files in {DAGS_DIR}"


def test_no_import_errors(dagbag: Any) -> None:
    assert dagbag.import_errors == {}


def test_every_file_defines_a_dag(dagbag: Any) -> None:
    files = {Path(dag.fileloc).name for dag in dagbag.dags.values()}
    assert files == {p.name for p in DAG_FILES}


def test_conventions(dagbag: Any) -> None:
    problems = []
    for dag_id, dag in dagbag.dags.items():
        if not dag.tags or "outcomes" not in dag.tags:
            problems.append(f"{dag_id}: tag 'outcomes' missing")
        if not dag.doc_md:
            problems.append(f"{dag_id}: no doc_md")
        if dag.catchup:
            problems.append(f"{dag_id}: catchup must be off")
        for task in dag.tasks:
            if task.retries < 1:
                problems.append(f"{dag_id}.{task.task_id}: no retries")
            if task.owner in ("", "airflow"):
                problems.append(f"{dag_id}.{task.task_id}: owner not set")
    assert problems == []


def test_every_task_alerts_through_the_outcomes_notifier(dagbag: Any) -> None:
    """One notifier for every failure (alerts.py): the log, the webhook and email as configured."""
    from outcomes.orchestration.notifier import OutcomesNotifier

    missing = []
    for dag_id, dag in dagbag.dags.items():
        for task in dag.tasks:
            callbacks = task.on_failure_callback
            callbacks = callbacks if isinstance(callbacks, list) else [callbacks]
            if not any(isinstance(callback, OutcomesNotifier) for callback in callbacks):
                missing.append(f"{dag_id}.{task.task_id}")
    assert missing == []


@pytest.mark.parametrize("dag_file", DAG_FILES, ids=lambda p: p.name)
def test_dag_file_is_wiring_only(dag_file: Path, airflow_ready: Settings) -> None:
    """Parsing a DAG file touches no database and imports nothing heavy (no top-level work)."""
    probe = (
        "import json, runpy, sys; import airflow.sdk; before = set(sys.modules); "
        f"runpy.run_path({str(dag_file)!r}); "
        "new = set(sys.modules) - before; "
        f"heavy = {tuple(m for m in HEAVY_MODULES if m not in ALLOWED.get(dag_file.name, ()))!r}; "
        "print(json.dumps(sorted(m for m in new if m.split('.')[0] in heavy or m in heavy)))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []
