"""Task bodies for the maintenance DAG: the DAG file only wires them."""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)


def migrate_warehouse() -> str:
    """Create databases if missing and apply every pending migration; returns the revision."""
    from outcomes.settings import load_settings
    from outcomes.warehouse.bootstrap import bootstrap, current_revision

    warehouse = bootstrap(load_settings())
    revision = current_revision(warehouse) or "none"
    log.info("warehouse %s is at migration %s", warehouse.display_url(), revision)
    return revision
