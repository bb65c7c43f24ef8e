"""Task bodies of ``build_outcomes`` for the dashboard and the locks (the DAG only wires them)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from outcomes.warehouse.connection import Warehouse

log = logging.getLogger(__name__)


def refresh_dashboard(warehouse: Warehouse | None = None) -> dict[str, Any]:
    """Render the published marts into a new dated snapshot and move ``latest`` to it.

    Runs only after a publish, so a blocked gate leaves the previous snapshot as the latest.
    Returns the snapshot's file name and charts (an XCom: no data, no path outside the home).
    """
    from outcomes.dashboard.snapshots import refresh
    from outcomes.settings import load_settings
    from outcomes.warehouse.connection import resolve

    settings = load_settings()
    path = refresh(settings, warehouse or resolve(settings))
    log.info("dashboard snapshot %s is now the latest", path)
    return {"snapshot": path.name}


def amend_locks(build_id: str | None = None, warehouse: Warehouse | None = None) -> int:
    """Erasure outranks a lock: claim the queued erasures for this build, remove them from every
    lock (whose aggregates are recomputed without them) and from the history (whose aggregates
    are counted again), and record it. The aggregates' SQL is compiled first, outside the
    transaction, and only when an erasure is queued."""
    from outcomes.settings import load_settings
    from outcomes.warehouse.connection import resolve
    from outcomes.warehouse.erasures import Aggregates
    from outcomes.warehouse.locks import apply_erasures, queued

    settings = load_settings()
    warehouse = warehouse or resolve(settings)
    aggregates = Aggregates(settings, warehouse)
    if queued(warehouse):
        aggregates.prepare()
    removed = apply_erasures(warehouse, build_id, aggregates)
    if removed:
        log.info("erasure: %d rows removed from database locks (meta.lock_amendments)", removed)
    return removed


def close_erasures(build_id: str, warehouse: Warehouse | None = None) -> int:
    """After the history snapshot and the dashboard: the erasures this build claimed are done
    everywhere it keeps data. The dashboard snapshots rendered before it (their numbers counted
    the erased people) are removed, and recorded at once; then the erasures leave the queue.
    ``meta.erasure_sweeps`` records each store cleaned (a count in the log and the XCom, never
    whom)."""
    import psycopg

    from outcomes.dashboard.snapshots import remove_earlier_builds
    from outcomes.settings import load_settings
    from outcomes.warehouse.connection import Role, resolve
    from outcomes.warehouse.erasures import Aggregates, record_sweeps
    from outcomes.warehouse.locks import close_erasures as close
    from outcomes.warehouse.locks import queued

    settings = load_settings()
    warehouse = warehouse or resolve(settings)
    aggregates = Aggregates(settings, warehouse)
    claimed = queued(warehouse, build_id)
    if claimed:
        aggregates.prepare()  # a lock made while the build ran is amended as the others were
        removed = remove_earlier_builds(settings, build_id)
        with psycopg.connect(warehouse.url()) as conn:  # recorded now: a retry finds nothing to remove
            conn.execute(f"set local role {Role.OWNER}")
            record_sweeps(conn, "build", build_id, claimed, {"dashboards": removed}, "files")
        log.info("erasure: %d dashboard snapshot files of earlier builds removed", removed)
    closed = close(warehouse, build_id, aggregates)
    if closed:
        log.info(
            "erasure: %d erased participants are gone from the locks, the history and the dashboards", closed
        )
    return closed
