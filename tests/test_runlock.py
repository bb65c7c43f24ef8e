"""The run lock (outcomes.runners.runlock) on the session's real server: a run beside another is
refused naming the holder; a holder that is gone lets go; another warehouse's run does not block;
the lock is reentrant within a process. Two real `outcomes run` processes: tests/e2e/test_faults.py."""

from __future__ import annotations

import psycopg
import pytest

from outcomes.runners.runlock import SPACE, RunInProgress, one_run
from outcomes.warehouse.connection import Warehouse


def _holder(warehouse: Warehouse, database: str, name: str) -> psycopg.Connection:
    conn = psycopg.connect(warehouse.url(database="postgres"), autocommit=True, application_name=name)
    conn.execute("select pg_advisory_lock(hashtext(%s), hashtext(%s))", (SPACE, database))
    return conn


def test_a_run_beside_another_is_refused_naming_it(warehouse: Warehouse) -> None:
    refused = pytest.raises(RunInProgress, match=r"outcomes backfill \(pid 4242 on elsewhere\), since")
    holder = _holder(warehouse, warehouse.database, "outcomes backfill (pid 4242 on elsewhere)")
    with holder, refused, one_run(warehouse, "run"):
        pytest.fail("ran beside another run")
    with one_run(warehouse, "run"), one_run(warehouse, "demo"):  # gone: free; and reentrant
        pass


def test_another_warehouses_run_does_not_block(warehouse: Warehouse) -> None:
    other = _holder(warehouse, f"{warehouse.database}_other", "outcomes run (pid 1 on elsewhere)")
    with other, one_run(warehouse, "run"):
        pass
