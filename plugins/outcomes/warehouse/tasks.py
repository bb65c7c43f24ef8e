"""Task bodies for the maintenance DAG: the DAG file only wires them."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from outcomes.warehouse.connection import Warehouse

log = logging.getLogger(__name__)


def migrate_warehouse() -> str:
    """Create databases if missing and apply every pending migration; returns the revision."""
    from outcomes.settings import load_settings
    from outcomes.warehouse.bootstrap import bootstrap, current_revision

    warehouse = bootstrap(load_settings())
    revision = current_revision(warehouse) or "none"
    log.info("warehouse %s is at migration %s", warehouse.display_url(), revision)
    return revision


def check_sources(warehouse: Warehouse | None = None) -> dict[str, Any]:
    """One ``late_delivery`` alert per source whose newest delivery is older than its freshness
    interval (``OUTCOMES_FRESHNESS_<SOURCE>_DAYS``, the gate's). A late source never fails the
    task; returns counts only (per source its age and late flag)."""
    from outcomes.ingest.freshness import check_sources as check
    from outcomes.settings import load_settings
    from outcomes.warehouse.connection import resolve

    summary = check(warehouse or resolve(load_settings()))
    log.info("%d of %d sources late", summary["late"], len(summary["sources"]))
    return summary


def prune_state(warehouse: Warehouse | None = None) -> dict[str, Any]:
    """Delete dashboard snapshots and GX validation results past their retention (the latest and
    newest snapshot, locked as-of dates and the newest gate run are kept); returns counts and bytes."""
    from outcomes.operations.retention import prune_state as prune
    from outcomes.settings import load_settings
    from outcomes.warehouse.connection import resolve

    settings = load_settings()
    return prune(settings, warehouse or resolve(settings))
