"""One in-process run at a time per warehouse (``outcomes run``, ``demo``, ``rebuild``, ``backfill``).

Two runs at once would build into the same candidate schema and publish over each other. The
first run holds a session-level advisory lock for as long as it lives; a second exits at once with
a message naming the run that holds it (exit code 4). The lock lives in the server's ``postgres``
database (the warehouse's database may not exist yet before the first bootstrap), keyed by the
warehouse database's name, so warehouses on one server do not wait for each other. A run that is
killed (SIGKILL) loses its connection and PostgreSQL releases the lock with it, at once on the
same machine and within about two minutes (TCP keepalives) when the machine itself is lost: there
is never a stale lock to clean. The lock is reentrant within a process (``outcomes demo`` holds it
around its generation and its pipeline).

The scheduler's DAG runs are not behind this lock: ``build_outcomes`` allows one active run at a
time (``max_active_runs=1``), and an operator runs ``outcomes run`` only where no scheduler runs
the same DAGs (docs/operations.md).
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from outcomes.warehouse.connection import Warehouse

log = logging.getLogger(__name__)

#: The lock's two keys: this constant, and the hash of the warehouse database's name.
SPACE = "outcomes.run"
_HELD: dict[str, int] = {}  # warehouse database -> depth, in this process


class RunInProgress(RuntimeError):
    """Another run holds the warehouse; the message says which and what to do."""


@contextmanager
def one_run(warehouse: Warehouse, command: str) -> Iterator[None]:
    """Hold the warehouse's run lock for the block; RunInProgress at once if another run holds it."""
    import psycopg

    database = warehouse.database
    if _HELD.get(database):
        _HELD[database] += 1
        try:
            yield
        finally:
            _HELD[database] -= 1
        return
    me = f"outcomes {command} (pid {os.getpid()} on {socket.gethostname()})"
    conn = psycopg.connect(
        warehouse.url(database="postgres"),
        autocommit=True,
        application_name=me[:63],
        keepalives=1,
        keepalives_idle=60,
        keepalives_interval=10,
        keepalives_count=6,
    )
    try:
        conn.execute("set idle_session_timeout = 0")  # held while the run works elsewhere
        keys = (SPACE, database)
        got = conn.execute("select pg_try_advisory_lock(hashtext(%s), hashtext(%s))", keys).fetchone()
        if not got or not got[0]:
            holder = conn.execute(
                """
                select a.application_name, date_trunc('second', a.backend_start)
                from pg_locks as l join pg_stat_activity as a using (pid)
                where l.locktype = 'advisory' and l.granted and l.objsubid = 2
                  and l.classid = hashtext(%s)::oid and l.objid = hashtext(%s)::oid
                  and a.pid <> pg_backend_pid()
                """,
                keys,
            ).fetchone()
            who = f"{holder[0]}, since {holder[1]}" if holder else "another run"
            raise RunInProgress(
                f"another run is using the warehouse {database}: {who}. "
                "Wait for it to finish and run again; a run that was killed lets go at once."
            )
        _HELD[database] = 1
        try:
            yield
        finally:
            _HELD.pop(database, None)
            try:
                conn.execute("select pg_advisory_unlock(hashtext(%s), hashtext(%s))", keys)
            except psycopg.Error as error:  # the session is gone, and the lock with it
                log.warning("the run lock's connection was lost during the run: %s", error)
    finally:
        with suppress(psycopg.Error):  # closing a broken connection
            conn.close()
