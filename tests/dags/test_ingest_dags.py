"""The ingest DAGs' wiring: schedules (overridable), Assets emitted only when raw changed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from support.deliveries import enrolment_row, write_delivery

from outcomes.contracts.registry import source as registered
from outcomes.contracts.registry import source_names
from outcomes.runners import inprocess
from outcomes.settings import Settings, load_settings
from outcomes.warehouse.connection import Warehouse


@pytest.mark.parametrize("source", source_names())
def test_each_source_has_its_contract_schedule(airflow_ready: Settings, source: str) -> None:
    spec = registered(source)
    dag = inprocess.load_dag(airflow_ready, f"ingest_{source}")
    assert dag.timetable.expression == spec.schedule
    assert dag.catchup is False and dag.max_active_runs == 1
    sensor = dag.get_task("wait_for_delivery")
    assert sensor.deadline.total_seconds() == spec.deadline_hours * 3600
    assert spec.doc in dag.doc_md and f"({spec.deadline_hours:g} h)" in dag.doc_md


def test_a_schedule_is_overridable_by_a_setting(airflow_ready: Settings) -> None:
    probe = (
        "from airflow.dag_processing.dagbag import DagBag; "
        f"bag = DagBag(dag_folder={str(airflow_ready.dags_folder / 'ingest_registry.py')!r}); "
        "print(bag.get_dag('ingest_registry').timetable.expression)"
    )
    env = {**os.environ, "OUTCOMES_SCHEDULE_REGISTRY": "30 5 * * *"}
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, check=True)
    assert done.stdout.strip().splitlines()[-1] == "30 5 * * *"


def asset_events(warehouse: Warehouse, name: str) -> int:
    with psycopg.connect(warehouse.url(database=warehouse.airflow_database)) as conn:
        row = conn.execute(
            "select count(*) from asset_event e join asset a on a.id = e.asset_id where a.name = %s", (name,)
        ).fetchone()
    return int(row[0]) if row else 0


@pytest.mark.slow
def test_the_asset_is_emitted_only_when_raw_changed(
    tmp_path: Path, airflow_ready: Settings, warehouse: Warehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OUTCOMES_LANDING", str(tmp_path))
    monkeypatch.setenv("OUTCOMES_PSEUDONYM_KEY", "b" * 64)
    write_delivery(
        tmp_path, "trial", "20250601T0100Z-61", {"enrolment.csv": [enrolment_row("AST-001", 980_001)]}
    )
    before = asset_events(warehouse, "raw_trial")
    first = inprocess.run_dag(load_settings(), "ingest_trial", conf={"wait": False})
    assert first.succeeded and first.task_states["announce"] == "success"
    assert asset_events(warehouse, "raw_trial") == before + 1

    # The same bytes under a new id: a duplicate, so nothing changed and no Asset event.
    (tmp_path / "trial" / "20250608T0100Z-61").mkdir()
    for path in (tmp_path / "trial" / "20250601T0100Z-61").iterdir():
        content = path.read_bytes().replace(b"20250601T0100Z-61", b"20250608T0100Z-61")
        (tmp_path / "trial" / "20250608T0100Z-61" / path.name).write_bytes(content)
    second = inprocess.run_dag(load_settings(), "ingest_trial", conf={"wait": False})
    assert second.succeeded and second.task_states["announce"] == "skipped"
    assert asset_events(warehouse, "raw_trial") == before + 1
