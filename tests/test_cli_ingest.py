"""``outcomes run`` and ``outcomes deliveries``, as an operator runs them (installed command, subprocess).

A whole ``outcomes run`` that applies a landing zone, builds and is stopped by the gate (exit 3),
and one that publishes (exit 0, through ``outcomes demo``), are in tests/e2e/test_demo.py."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from support.deliveries import prom_rows, write_delivery

from outcomes.settings import Settings
from outcomes.warehouse.connection import Warehouse

pytestmark = pytest.mark.slow
OUTCOMES = str(Path(sys.executable).parent / "outcomes")
KEY = "c0ffee" * 11


def outcomes(*args: str, env: dict[str, str], check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [OUTCOMES, *args], capture_output=True, text=True, env=env, timeout=600, check=check
    )


def test_run_without_a_key_is_a_clear_error(tmp_path: Path, warehouse: Warehouse) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OUTCOMES_PSEUDONYM")}
    done = outcomes("run", "--landing", str(tmp_path), env=env, check=False)
    assert done.returncode == 1
    assert "no pseudonymisation key" in done.stderr
    assert "Traceback" not in done.stderr


def test_deliveries_list_show_and_release(tmp_path: Path, settings: Settings, warehouse: Warehouse) -> None:
    env = {**os.environ, "OUTCOMES_PSEUDONYM_KEY": KEY, "OUTCOMES_LANDING": str(tmp_path)}
    rows = [row for form in range(5) for row in prom_rows(f"REL{form}", 950_010)]
    rows[2] = {**rows[2], "value": 77}  # eq5d_mobility is 1..3; 1 bad row of 20 = 5 %: still loads
    rows[7] = {**rows[7], "answered_on": "2025-13-01"}  # 2 of 20 = 10 %: over it, quarantined
    write_delivery(tmp_path, "registry", "20250302T0200Z-32", {"proms.csv": rows})
    from outcomes.ingest.service import apply_source

    os.environ["OUTCOMES_PSEUDONYM_KEY"] = KEY
    try:
        [outcome] = apply_source(settings, "registry", url=str(tmp_path))
    finally:
        del os.environ["OUTCOMES_PSEUDONYM_KEY"]
    assert outcome.status == "quarantined"

    listed = outcomes("deliveries", "--source", "registry", env=env).stdout
    assert "20250302T0200Z-32" in listed and "quarantined" in listed

    shown = outcomes("deliveries", "show", "registry/20250302T0200Z-32", env=env).stdout
    assert "2 of 20 rows (10.0%) break the contract" in shown
    assert "proms.csv line 4, column value: '77'" in shown
    assert "line 9, column answered_on" in shown

    released = outcomes("deliveries", "release", "registry/20250302T0200Z-32", "--reason", "checked", env=env)
    assert "18 loaded" in released.stdout or "18 pending" in released.stdout
    with psycopg.connect(warehouse.url()) as conn:
        row = conn.execute(
            "select status, rows_received, rows_loaded + rows_pending, rows_quarantined from meta.deliveries "
            "where source = 'registry' and delivery_id = '20250302T0200Z-32'"
        ).fetchone()
        who = conn.execute(
            "select event, detail from meta.delivery_events "
            "where delivery_id = '20250302T0200Z-32' order by event_id"
        ).fetchall()
    assert row == ("released", 20, 18, 2)
    assert [e for e, _ in who] == ["quarantined", "released"]
    assert "checked" in who[-1][1]

    refused = outcomes(
        "deliveries", "release", "registry/20250302T0200Z-32", "--reason", "again", env=env, check=False
    )
    assert refused.returncode == 1 and "only a quarantined delivery can be released" in refused.stderr
    usage = outcomes("deliveries", "show", "registry", env=env, check=False)
    assert usage.returncode == 2 and "SOURCE/DELIVERY_ID" in usage.stderr
