"""Ingestion as the DAG tasks and the CLI call it: settings in, counts out (never rows, never fnr)."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from outcomes.settings import Settings, setting

if TYPE_CHECKING:
    import psycopg

    from outcomes.ingest.loader import DeliveryOutcome

log = logging.getLogger(__name__)

THRESHOLD_ENV = "OUTCOMES_QUARANTINE_THRESHOLD"
RETENTION_ENV = "OUTCOMES_PENDING_RETENTION_DAYS"
LANDING_CONN_ENV = "OUTCOMES_LANDING_CONN_ID"


@contextmanager
def loader_connection(settings: Settings) -> Iterator[psycopg.Connection]:
    """A connection with the loader role's privileges (``set role``: least privilege, no password)."""
    import psycopg

    from outcomes.warehouse.connection import Role, resolve

    warehouse = resolve(settings, start=True)
    with psycopg.connect(warehouse.url(), autocommit=True, application_name="outcomes-loader") as conn:
        conn.execute(f"set role {Role.LOADER}")
        yield conn


def threshold() -> float:
    return float(setting(THRESHOLD_ENV))


def retention_days() -> int:
    return int(setting(RETENTION_ENV))


def landing(settings: Settings, url: str | None = None) -> Any:
    from outcomes.ingest.landing import landing_root

    return landing_root(url or settings.landing, setting(LANDING_CONN_ENV) or None)


def pending_deliveries(settings: Settings, source: str, url: str | None = None) -> list[str]:
    """Complete deliveries of ``source`` not yet in the ledger, in delivery_id order. A landing
    zone that cannot be read raises ``LandingUnreachable`` (the sensor waits on it)."""
    from outcomes.ingest.landing import complete_deliveries

    with _reading(settings, source, url):
        found = [p.name for p in complete_deliveries(landing(settings, url), source)]
    if not found:
        return []
    with loader_connection(settings) as conn:
        applied = {
            r[0] for r in conn.execute("select delivery_id from meta.deliveries where source = %s", (source,))
        }
    return [d for d in found if d not in applied]


@contextmanager
def _reading(settings: Settings, source: str, url: str | None) -> Iterator[None]:
    """Turn the landing file system's network errors into ``LandingUnreachable``, naming the
    landing zone (without credentials) and the source."""
    from outcomes.ingest.landing import LandingUnreachable, shown, unreachable_errors

    try:
        yield
    except unreachable_errors() as error:
        where = shown(url or settings.landing)
        raise LandingUnreachable(
            f"the landing zone {where} cannot be read for {source}: {type(error).__name__}: {error}"
        ) from error


def apply_source(settings: Settings, source: str, url: str | None = None) -> list[DeliveryOutcome]:
    """Apply every complete, not yet applied delivery of ``source`` in delivery_id order. Each
    delivery is one transaction: a landing zone that fails halfway through one (its server
    down) leaves nothing of it applied, and it is applied whole by the next run."""
    from outcomes.contracts import load_contract
    from outcomes.contracts.registry import source as registered
    from outcomes.ingest.landing import complete_deliveries
    from outcomes.ingest.loader import apply_delivery
    from outcomes.ingest.pseudonym import pseudonymiser
    from outcomes.runners import faults

    registered(source)  # ValueError naming the known sources
    pseudonymise = pseudonymiser()  # fails early and clearly without a key
    contract = load_contract()
    outcomes: list[DeliveryOutcome] = []
    with loader_connection(settings) as conn, _reading(settings, source, url):
        for delivery in complete_deliveries(landing(settings, url), source):
            if faults.armed() and any(o.status != "skipped" for o in outcomes):
                faults.point("ingest.between_deliveries")
            outcomes.append(
                apply_delivery(
                    conn, delivery, pseudonymise=pseudonymise, contract=contract, threshold=threshold()
                )
            )
    return outcomes


def purge(settings: Settings, now: dt.datetime | None = None) -> int:
    """Purge pending rows past the retention window (maintenance)."""
    from outcomes.contracts import load_contract
    from outcomes.ingest.pending import purge_pending

    with loader_connection(settings) as conn, conn.transaction():
        return purge_pending(conn, load_contract(), now or dt.datetime.now(dt.UTC), retention_days())
