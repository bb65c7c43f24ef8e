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


def _gone(warehouse: Warehouse, database: str) -> None:
    """Wait (up to 10 s) until no session holds the run lock of ``database``: a closed connection's
    server process ends, and lets go of its locks, a moment after the client has closed it (seen
    once under load: the next lock came before it)."""
    import time

    deadline = time.monotonic() + 10
    with psycopg.connect(warehouse.url(database="postgres"), autocommit=True) as conn:
        while conn.execute(
            "select count(*) from pg_locks where locktype = 'advisory' and granted"
            " and classid = hashtext(%s)::oid and objid = hashtext(%s)::oid and objsubid = 2",
            (SPACE, database),
        ).fetchone() != (0,):
            assert time.monotonic() < deadline, "the closed holder's lock was never released"
            time.sleep(0.05)


def test_a_run_beside_another_is_refused_naming_it(warehouse: Warehouse) -> None:
    refused = pytest.raises(RunInProgress, match=r"outcomes backfill \(pid 4242 on elsewhere\), since")
    holder = _holder(warehouse, warehouse.database, "outcomes backfill (pid 4242 on elsewhere)")
    with holder, refused, one_run(warehouse, "run"):
        pytest.fail("ran beside another run")
    _gone(warehouse, warehouse.database)
    with one_run(warehouse, "run"), one_run(warehouse, "demo"):  # gone: free; and reentrant
        pass


def test_another_warehouses_run_does_not_block(warehouse: Warehouse) -> None:
    other = _holder(warehouse, f"{warehouse.database}_other", "outcomes run (pid 1 on elsewhere)")
    with other, one_run(warehouse, "run"):
        pass
