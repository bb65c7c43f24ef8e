"""The maintenance DAG, run for real with ``dag.test()`` against the session's warehouse."""

from __future__ import annotations

import pytest

from outcomes import orchestration
from outcomes.settings import Settings
from outcomes.warehouse.bootstrap import current_revision, head_revision
from outcomes.warehouse.connection import Warehouse

pytestmark = pytest.mark.slow


def test_maintenance_dag_migrates_and_is_idempotent(airflow_ready: Settings, warehouse: Warehouse) -> None:
    first = orchestration.run_dag(airflow_ready, "warehouse_maintenance")
    assert first.succeeded, first
    assert first.task_states == {"migrate_warehouse": "success", "purge_pending": "success"}
    second = orchestration.run_dag(airflow_ready, "warehouse_maintenance")
    assert second.succeeded, second
    assert current_revision(warehouse) == head_revision()
