"""People not (yet) enrolled. Rows held in ``pending`` move into ``raw`` at an enrolment and are
purged after the retention window, moving the counts in the ledger (:func:`shift_counts`; an
erasure, :mod:`outcomes.ingest.erasure`, moves them the same way)."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from outcomes.contracts.spec import Contract

if TYPE_CHECKING:
    import psycopg
from outcomes.ingest.ledger import event
from outcomes.ingest.storage import FNR_KEYED, PSEUDONYM, _columns, raw_table


def shift_counts(
    conn: psycopg.Connection,
    source: str,
    per_delivery: list[tuple[str, int]],
    *,
    from_column: str,
    to_column: str,
    event_name: str,
    reason: str,
) -> int:
    """Move row counts between two ledger columns, per delivery, with an audit event each, so
    every delivery stays reconciled when its rows move on (pending -> raw, -> purged)."""
    total = 0
    for delivery_id, n in per_delivery:
        conn.execute(
            f"""
            update meta.deliveries set {from_column} = {from_column} - %s, {to_column} = {to_column} + %s
            where source = %s and delivery_id = %s
            """,
            (n, n, source, delivery_id),
        )
        event(conn, source, delivery_id, event_name, n, reason)
        total += n
    return total


def _shift(
    conn: psycopg.Connection, source: str, per_delivery: list[tuple[str, int]], column: str, reason: str
) -> int:
    """Rows removed for an erasure: from ``column`` to ``rows_purged``."""
    return shift_counts(
        conn,
        source,
        per_delivery,
        from_column=column,
        to_column="rows_purged",
        event_name="purged",
        reason=reason,
    )


def move_enrolled_from_pending(conn: psycopg.Connection, contract: Contract) -> int:
    """Move pending rows whose person is now enrolled into raw; keep each delivery reconciled."""
    moved_total = 0
    for source in FNR_KEYED:
        for file, spec in contract.sources[source].files.items():
            target = raw_table(source, file)
            names = ", ".join(n for n, _ in _columns(spec))
            # Which enrolled people have rows held: one index probe per enrolled person (the
            # lateral subquery with a limit is never flattened into a join), so the cost follows
            # the enrolment, not the size of pending. As a join of the two tables the planner
            # read the whole of pending (17 M rows at 100,000 participants: 8 s every trial
            # delivery, for, nearly always, no row to move).
            held = [
                row[0]
                for row in conn.execute(
                    f"""
                    select enrolled.{PSEUDONYM}
                    from (select distinct {PSEUDONYM} from raw.trial_enrolment) as enrolled
                    cross join lateral (
                        select from pending.{target} as held
                        where held.{PSEUDONYM} = enrolled.{PSEUDONYM}
                        limit 1
                    ) as held_rows
                    """
                )
            ]
            if not held:
                continue
            moved = conn.execute(
                f"""
                with moved as (
                    delete from pending.{target} p
                    where p.{PSEUDONYM} = any(%s)
                    returning p.*
                ), inserted as (
                    insert into raw.{target} (delivery_id, source_line, {names})
                    select delivery_id, source_line, {names} from moved
                    returning delivery_id
                )
                select delivery_id, count(*) from inserted group by delivery_id order by delivery_id
                """,
                (held,),
            ).fetchall()
            moved_total += shift_counts(
                conn,
                source,
                [(d, int(n)) for d, n in moved],
                from_column="rows_pending",
                to_column="rows_loaded",
                event_name="moved_from_pending",
                reason="their person is now enrolled",
            )
    return moved_total


def purge_pending(conn: psycopg.Connection, contract: Contract, now: dt.datetime, retention_days: int) -> int:
    """Purge pending rows held longer than the retention window; count them per delivery."""
    cutoff = now - dt.timedelta(days=retention_days)
    purged_total = 0
    for source in FNR_KEYED:
        for file in contract.sources[source].files:
            target = raw_table(source, file)
            purged = conn.execute(
                f"""
                with purged as (delete from pending.{target} where held_since < %s returning delivery_id)
                select delivery_id, count(*) from purged group by delivery_id order by delivery_id
                """,
                (cutoff,),
            ).fetchall()
            purged_total += _shift(
                conn,
                source,
                [(d, int(n)) for d, n in purged],
                "rows_pending",
                f"not enrolled within {retention_days} days",
            )
    return purged_total


def _enrolled_participants(conn: psycopg.Connection) -> set[str]:
    return {r[0] for r in conn.execute("select distinct participant_id from raw.trial_enrolment")}
