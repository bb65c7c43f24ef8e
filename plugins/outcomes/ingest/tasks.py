"""Task bodies of the ingest DAGs. They return counts and messages only: XComs never hold rows or fnr."""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)


def apply_deliveries(source: str) -> list[dict[str, Any]]:
    """Apply every complete, not yet applied delivery of ``source``; one summary per delivery."""
    from outcomes.ingest.service import apply_source
    from outcomes.operations import alerts
    from outcomes.settings import load_settings

    outcomes = [o for o in apply_source(load_settings(), source) if o.status != "skipped"]
    for outcome in outcomes:
        level = logging.WARNING if outcome.status == "quarantined" else logging.INFO
        log.log(level, "%s/%s %s: %s", source, outcome.delivery_id, outcome.status, outcome.message)
    summaries = [o.as_dict() for o in outcomes]
    alerts.quarantined(source, summaries)
    return summaries


def purge_pending() -> int:
    """Purge pending rows of people not enrolled within the retention window."""
    from outcomes.ingest.service import purge
    from outcomes.settings import load_settings

    purged = purge(load_settings())
    log.info("purged %d pending rows past the retention window", purged)
    return purged
