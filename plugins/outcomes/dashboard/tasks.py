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
    lock and record it."""
    from outcomes.settings import load_settings
    from outcomes.warehouse.connection import resolve
    from outcomes.warehouse.locks import apply_erasures

    removed = apply_erasures(warehouse or resolve(load_settings()), build_id)
    if removed:
        log.info("erasure: %d rows removed from database locks (meta.lock_amendments)", removed)
    return removed


def close_erasures(build_id: str, warehouse: Warehouse | None = None) -> int:
    """After the history snapshot: the erasures this build claimed are done everywhere it keeps
    data, and leave the queue (a count in the log and the XCom, never whom)."""
    from outcomes.settings import load_settings
    from outcomes.warehouse.connection import resolve
    from outcomes.warehouse.locks import close_erasures as close

    closed = close(warehouse or resolve(load_settings()), build_id)
    if closed:
        log.info("erasure: %d erased participants are gone from the locks and the history", closed)
    return closed
