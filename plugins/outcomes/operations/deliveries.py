"""``outcomes deliveries``: the ledger, what was wrong with a delivery, and releasing one."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from outcomes.contracts.registry import source_names
from outcomes.settings import Settings

COLUMNS = (
    "source",
    "delivery_id",
    "status",
    "rows_received",
    "rows_loaded",
    "rows_pending",
    "rows_purged",
    "rows_quarantined",
    "message",
)


def _connect(settings: Settings) -> Any:
    from outcomes.ingest.service import loader_connection

    return loader_connection(settings)


def list_deliveries(settings: Settings, source: str | None = None) -> list[dict[str, Any]]:
    """Every delivery in the ledger (newest last per source), with its reconciliation."""
    with _connect(settings) as conn:
        cur = conn.execute(
            f"""
            select {", ".join(COLUMNS)},
                   rows_received = rows_loaded + rows_pending + rows_purged + rows_quarantined
                       or status = 'duplicate' as reconciled
            from meta.deliveries
            where %(source)s::text is null or source = %(source)s
            order by array_position(%(sources)s::text[], source),
                     delivery_id
            """,
            {"source": source, "sources": list(source_names())},
        )
        names = [d.name for d in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def ledger_summary(settings: Settings) -> list[str]:
    """One line per source: deliveries by status and rows by destination."""
    with _connect(settings) as conn:
        rows = conn.execute(
            """
            select source, count(*), count(*) filter (where status = 'loaded'),
                   count(*) filter (where status = 'quarantined'),
                   count(*) filter (where status = 'duplicate'),
                   coalesce(sum(rows_received), 0), coalesce(sum(rows_loaded), 0),
                   coalesce(sum(rows_pending), 0), coalesce(sum(rows_purged), 0),
                   coalesce(sum(rows_quarantined), 0)
            from meta.deliveries
            group by source
            order by array_position(%(sources)s::text[], source)
            """,
            {"sources": list(source_names())},
        ).fetchall()
    return [
        f"{s:<10} {n:>3} deliveries ({ok} loaded, {q} quarantined, {d} duplicate): "
        f"{rec:,} rows received = {ld:,} loaded + {pe:,} pending + {pu:,} purged + {qu:,} quarantined"
        for s, n, ok, q, d, rec, ld, pe, pu, qu in rows
    ]


@dataclass(frozen=True)
class DeliveryDetail:
    delivery: dict[str, Any]
    problems: list[dict[str, Any]]
    rows: list[dict[str, Any]]
    rows_total: int
    events: list[dict[str, Any]]


def show_delivery(
    settings: Settings, source: str, delivery_id: str, limit: int = 200
) -> DeliveryDetail | None:
    """What was wrong with one delivery, line by line (pseudonymised: never an fnr)."""
    with _connect(settings) as conn:

        def fetch(sql: str, *params: Any) -> list[dict[str, Any]]:
            cur = conn.execute(sql, params)
            names = [d.name for d in cur.description]
            return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]

        found = fetch(
            f"select {', '.join(COLUMNS)}, extracted_at, applied_at, applied_by, duplicate_of "
            "from meta.deliveries where source = %s and delivery_id = %s",
            source,
            delivery_id,
        )
        if not found:
            return None
        problems = fetch(
            "select file, line, column_name, rule, message from quarantine.delivery_problems "
            "where source = %s and delivery_id = %s order by file nulls first, line nulls first",
            source,
            delivery_id,
        )
        rows = fetch(
            "select file, source_line as line, violations, released from quarantine.rows "
            "where source = %s and delivery_id = %s and violations <> '[]'::jsonb "
            "order by file, source_line limit %s",
            source,
            delivery_id,
            limit,
        )
        total = conn.execute(
            "select count(*) from quarantine.rows "
            "where source = %s and delivery_id = %s and violations <> '[]'",
            (source, delivery_id),
        ).fetchone()[0]
        events = fetch(
            "select happened_at, event, rows, detail, happened_by from meta.delivery_events "
            "where source = %s and delivery_id = %s order by event_id",
            source,
            delivery_id,
        )
    return DeliveryDetail(found[0], problems, rows, int(total), events)


def release(settings: Settings, source: str, delivery_id: str, *, operator: str, reason: str) -> Any:
    """Release a quarantined delivery (see :func:`outcomes.ingest.loader.release_delivery`)."""
    from outcomes.ingest.loader import release_delivery
    from outcomes.ingest.pseudonym import pseudonymiser

    pseudonymise = pseudonymiser()  # the erasure register is read with the key; fails clearly without
    with _connect(settings) as conn:
        return release_delivery(
            conn, source, delivery_id, operator=operator, reason=reason, pseudonymise=pseudonymise
        )
