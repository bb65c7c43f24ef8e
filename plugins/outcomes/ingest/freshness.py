"""Late sources: has every source delivered within its freshness interval?

``warehouse_maintenance.check_sources`` runs this every night and sends one ``late_delivery`` alert
per late source; ``outcomes status`` shows the same verdicts. The interval per source is the quality
gate's own setting (``OUTCOMES_FRESHNESS_<SOURCE>_DAYS``, :mod:`outcomes.quality.config`): one
definition of "fresh" for the whole project.

The two differ in what they count, on purpose. The gate's freshness expectation asks whether the
*build* rests on recent data (loaded or released deliveries before the as-of date). This check asks
whether the *source* delivered at all: any delivery the warehouse received counts, a quarantined or
duplicate one too (the source did deliver; what is wrong with it is the quarantine alert's news),
and its age runs from the delivery's extract time to now. A source that never delivered is late
once the warehouse has been receiving (from any source) for longer than that source's interval; a
warehouse that has received nothing yet (a new deployment, the first demo run) has no late source.

:func:`assess` is the decision (pure); :func:`last_deliveries` reads the ledger as the read-only
analyst role; :func:`check_sources` is the maintenance task's body. Importing this module is cheap
(no psycopg, no Airflow): ``outcomes status`` uses it.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from outcomes.contracts.registry import source_names

if TYPE_CHECKING:
    from outcomes.warehouse.connection import Warehouse

log = logging.getLogger(__name__)

#: The UTC extract time a delivery_id carries (docs/sources.md: ``^\\d{8}T\\d{4}Z(-\\d+)?$``).
DELIVERY_ID_TIME = re.compile(r"^(\d{8}T\d{4})Z(?:-\d+)?$")
DAY = dt.timedelta(days=1)


@dataclass(frozen=True)
class LastDelivery:
    """The newest delivery the warehouse received from one source (any status)."""

    delivery_id: str
    status: str
    extracted_at: dt.datetime  # UTC


@dataclass(frozen=True)
class SourceFreshness:
    """One source's verdict: its newest delivery, how old it is, and whether that is too old."""

    source: str
    interval_days: float
    last: LastDelivery | None
    age_days: float | None
    late: bool

    def message(self) -> str:
        """One line for the alert and the log."""
        expected = f"expected every {self.interval_days:g} days"
        if self.last is None:
            state = "is late" if self.late else "has not delivered yet"
            return f"source {self.source} {state}: no delivery yet ({expected})"
        state = "is late" if self.late else "is on time"
        return (
            f"source {self.source} {state}: its last delivery {self.last.delivery_id} "
            f"({self.last.status}) is {self.age_days:.1f} days old ({expected})"
        )

    def summary(self) -> dict[str, Any]:
        """Counts only: what the task returns as its XCom."""
        return {"age_days": self.age_days, "interval_days": self.interval_days, "late": self.late}


def extract_time(
    delivery_id: str, extracted_at: dt.datetime | None, received_at: dt.datetime | None = None
) -> dt.datetime | None:
    """When a delivery was extracted (UTC): the manifest's ``extracted_at``, else the time its
    ``delivery_id`` names, else (an id that breaks the contract, no manifest) when it was received."""
    if extracted_at is not None:
        return _utc(extracted_at)
    match = DELIVERY_ID_TIME.match(delivery_id)
    if match:
        try:
            return dt.datetime.strptime(match.group(1), "%Y%m%dT%H%M").replace(tzinfo=dt.UTC)
        except ValueError:  # matches the pattern but is no date (e.g. month 13)
            pass
    return _utc(received_at) if received_at is not None else None


def _utc(moment: dt.datetime) -> dt.datetime:
    return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment.astimezone(dt.UTC)


def newest(rows: Iterable[Mapping[str, Any]]) -> dict[str, LastDelivery]:
    """The newest delivery per source among ledger ``rows`` (``source``, ``delivery_id``,
    ``status``, ``extracted_at``, ``applied_at``), by extract time, then ``delivery_id``."""
    found: dict[str, LastDelivery] = {}
    for row in rows:
        moment = extract_time(row["delivery_id"], row.get("extracted_at"), row.get("applied_at"))
        if moment is None:
            continue
        candidate = LastDelivery(row["delivery_id"], row["status"], moment)
        current = found.get(row["source"])
        if current is None or (moment, candidate.delivery_id) > (current.extracted_at, current.delivery_id):
            found[row["source"]] = candidate
    return found


def assess(
    source: str,
    last: LastDelivery | None,
    interval_days: float,
    now: dt.datetime,
    receiving_since: dt.datetime | None = None,
) -> SourceFreshness:
    """The decision: late when the newest delivery is older than ``interval_days`` at ``now``, or,
    when there is none, once the warehouse has been receiving (its first delivery from any source,
    ``receiving_since``) for longer than that. A delivery "from the future" (a clock ahead) is age
    0, not late."""
    if last is None:
        waited = (_utc(now) - receiving_since) / DAY if receiving_since is not None else 0.0
        return SourceFreshness(source, interval_days, None, None, late=waited > interval_days)
    age = max((_utc(now) - last.extracted_at) / DAY, 0.0)
    return SourceFreshness(source, interval_days, last, round(age, 1), late=age > interval_days)


def assess_all(
    last: Mapping[str, LastDelivery], now: dt.datetime, intervals: Mapping[str, float] | None = None
) -> list[SourceFreshness]:
    """Every source's verdict, in the contract's order; ``intervals`` default to the gate's
    (``OUTCOMES_FRESHNESS_<SOURCE>_DAYS``)."""
    if intervals is None:
        from outcomes.quality.config import load_gate_config

        intervals = load_gate_config().freshness_days
    since = min((d.extracted_at for d in last.values()), default=None)
    return [assess(source, last.get(source), intervals[source], now, since) for source in source_names()]


def last_deliveries(warehouse: Warehouse) -> dict[str, LastDelivery]:
    """The newest delivery of each source in ``meta.deliveries`` (read as the analyst role)."""
    import psycopg
    from psycopg.rows import dict_row

    from outcomes.warehouse.connection import Role

    with psycopg.connect(
        warehouse.url(), row_factory=dict_row, application_name="outcomes-freshness"
    ) as conn:
        conn.execute(f"set role {Role.ANALYST}")  # reading the ledger needs nothing more
        if conn.execute("select to_regclass('meta.deliveries') as t").fetchone()["t"] is None:  # type: ignore[index]
            return {}
        # a few rows per source and day: reading them all keeps the choice in one tested place
        rows = conn.execute(
            "select source, delivery_id, status, extracted_at, applied_at from meta.deliveries"
        ).fetchall()
    return newest(rows)


def source_freshness(
    warehouse: Warehouse, now: dt.datetime | None = None, intervals: Mapping[str, float] | None = None
) -> list[SourceFreshness]:
    """Every source's verdict from the warehouse's ledger, at ``now`` (default: now, UTC)."""
    return assess_all(last_deliveries(warehouse), now or dt.datetime.now(dt.UTC), intervals)


def hint(source: str) -> str:
    return (
        f"docs/runbook.md, 'A late source': check `outcomes status` and `outcomes deliveries "
        f"--source {source}`, then ask the {source} extract's owners whether the extract ran and "
        "when it will be delivered; meanwhile the gate's freshness check warns"
    )


def alert_late(results: Iterable[SourceFreshness]) -> int:
    """One ``late_delivery`` alert per late source; returns how many were sent."""
    from outcomes.operations import alerts

    sent = 0
    for result in results:
        if not result.late:
            continue
        alerts.send(
            alerts.Alert(
                "late_delivery",
                result.message(),
                {
                    "source": result.source,
                    "delivery_id": result.last.delivery_id if result.last else None,
                    "delivery_status": result.last.status if result.last else None,
                    "extracted_at": result.last.extracted_at.isoformat() if result.last else None,
                    "age_days": result.age_days,
                    "interval_days": result.interval_days,
                    "check": "warehouse_maintenance.check_sources",
                    "hint": hint(result.source),
                },
            )
        )
        sent += 1
    return sent


def check_sources(warehouse: Warehouse, now: dt.datetime | None = None) -> dict[str, Any]:
    """Alert on every late source. A late source is news, not a failure: nothing here raises for
    one. Returns counts only: per source its age and late flag, and how many are late."""
    results = source_freshness(warehouse, now)
    for result in results:
        log.log(logging.WARNING if result.late else logging.INFO, "%s", result.message())
    late = alert_late(results)
    return {"late": late, "sources": {r.source: r.summary() for r in results}}
