"""The maintenance DAG, run for real with ``dag.test()`` against the session's warehouse."""

from __future__ import annotations

import json
from typing import Any

import psycopg
import pytest

from outcomes.contracts.registry import source_names
from outcomes.runners import inprocess
from outcomes.settings import Settings
from outcomes.warehouse.bootstrap import current_revision, head_revision
from outcomes.warehouse.connection import Warehouse

pytestmark = pytest.mark.slow


def test_the_shape_migrate_first_then_three_tasks_side_by_side(airflow_ready: Settings) -> None:
    dag = inprocess.load_dag(airflow_ready, "warehouse_maintenance")
    assert {t.task_id for t in dag.tasks} == {
        "migrate_warehouse",
        "purge_pending",
        "check_sources",
        "prune_state",
    }
    assert dag.get_task("migrate_warehouse").downstream_task_ids == {
        "purge_pending",
        "check_sources",
        "prune_state",
    }
    for task_id in ("purge_pending", "check_sources", "prune_state"):
        task = dag.get_task(task_id)
        assert task.upstream_task_ids == {"migrate_warehouse"} and task.downstream_task_ids == set(), task_id


def xcom(warehouse: Warehouse, run_id: str, task_id: str) -> Any:
    with psycopg.connect(warehouse.url(database=warehouse.airflow_database)) as conn:
        row = conn.execute(
            "select value from xcom where dag_id = 'warehouse_maintenance' and run_id = %s "
            "and task_id = %s and key = 'return_value'",
            (run_id, task_id),
        ).fetchone()
    assert row is not None, task_id
    value = row[0]
    return json.loads(value) if isinstance(value, str | bytes) else value


def late_alerts(settings: Settings) -> list[dict[str, Any]]:
    if not settings.alerts_log.exists():
        return []
    lines = [json.loads(line) for line in settings.alerts_log.read_text().splitlines()]
    return [a for a in lines if a["details"].get("check") == "warehouse_maintenance.check_sources"]


def test_maintenance_dag_migrates_and_is_idempotent(airflow_ready: Settings, warehouse: Warehouse) -> None:
    before = len(late_alerts(airflow_ready))
    first = inprocess.run_dag(airflow_ready, "warehouse_maintenance")
    assert first.succeeded, first
    assert first.task_states == dict.fromkeys(
        ("migrate_warehouse", "purge_pending", "check_sources", "prune_state"), "success"
    )
    # late sources are news, not a failure: one alert each, and counts in the XCom
    checked = xcom(warehouse, first.run_id, "check_sources")
    assert set(checked["sources"]) == set(source_names())
    late = sorted(s for s, verdict in checked["sources"].items() if verdict["late"])
    assert checked["late"] == len(late)
    new = late_alerts(airflow_ready)[before:]
    assert sorted(a["details"]["source"] for a in new) == late
    assert all(a["kind"] == "late_delivery" for a in new)
    pruned = xcom(warehouse, first.run_id, "prune_state")
    assert set(pruned) == {"dashboards", "gx_results", "bytes_freed"}
    assert pruned["bytes_freed"] == pruned["dashboards"]["bytes"] + pruned["gx_results"]["bytes"]

    second = inprocess.run_dag(airflow_ready, "warehouse_maintenance")
    assert second.succeeded, second
    assert current_revision(warehouse) == head_revision()
