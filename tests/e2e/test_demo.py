"""``outcomes demo`` end to end, as `make demo` runs it: the installed command, a real warehouse."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from outcomes.settings import Settings
from outcomes.warehouse.bootstrap import current_revision, head_revision
from outcomes.warehouse.connection import Warehouse

pytestmark = pytest.mark.slow
OUTCOMES = str(Path(sys.executable).parent / "outcomes")


def test_demo_generates_bootstraps_runs_and_says_where_to_look(
    settings: Settings, warehouse: Warehouse
) -> None:
    done = subprocess.run(
        [OUTCOMES, "demo"], capture_output=True, text=True, env=dict(os.environ), timeout=600, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "warehouse_maintenance" in done.stdout and "success" in done.stdout
    assert "Where to look" in done.stdout
    assert "outcomes_analyst@" in done.stdout
    landing = Path(settings.landing)
    for source in ("trial", "registry", "welfare", "employment"):
        assert list((landing / source).glob("*/_manifest.json")), source
    assert current_revision(warehouse) == head_revision()
    with psycopg.connect(warehouse.url(database=warehouse.airflow_database)) as conn:
        runs = conn.execute(
            "select state from dag_run where dag_id = 'warehouse_maintenance' order by id desc limit 1"
        ).fetchone()
    assert runs == ("success",)

    # A second demo reuses the landing zone and the warehouse.
    again = subprocess.run(
        [OUTCOMES, "demo"], capture_output=True, text=True, env=dict(os.environ), timeout=600, check=False
    )
    assert again.returncode == 0, again.stdout + again.stderr
    assert "existing deliveries" in again.stdout
