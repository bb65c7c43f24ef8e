"""People not (yet) enrolled and people erased. Rows held in ``pending`` move into ``raw`` at an
enrolment and are purged after the retention window; an erasure registers the participant, drops
their incoming rows and purges every stored row, moving the counts in the ledger
(:func:`shift_counts`)."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from outcomes.contracts.spec import Contract

if TYPE_CHECKING:
    import psycopg
from outcomes.ingest.ledger import event
from outcomes.ingest.sinks import _Sink
from outcomes.ingest.storage import (
    ERASED_PARTICIPANTS,
    ERASED_PSEUDONYMS,
    FNR_KEYED,
    PSEUDONYM,
    _columns,
    raw_table,
)


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
            moved = conn.execute(
                f"""
                with moved as (
                    delete from pending.{target} p
                    where p.{PSEUDONYM} in (select {PSEUDONYM} from raw.trial_enrolment)
                    returning p.*
                ), inserted as (
                    insert into raw.{target} (delivery_id, source_line, {names})
                    select delivery_id, source_line, {names} from moved
                    returning delivery_id
                )
                select delivery_id, count(*) from inserted group by delivery_id order by delivery_id
                """
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


def _erased_filter(names: list[str]) -> str | None:
    """SQL condition matching rows about an erased person, for a table with these columns."""
    parts = []
    if PSEUDONYM in names:
        parts.append(f"{PSEUDONYM} in ({ERASED_PSEUDONYMS})")
    if "participant_id" in names:
        parts.append(f"participant_id in ({ERASED_PARTICIPANTS})")
    return " or ".join(parts) or None


def register_erasures(conn: psycopg.Connection, file: str) -> int:
    """Register the valid ``erase = true`` rows of an incoming enrolment file; returns new ones."""
    cur = conn.execute(
        f"""
        insert into pending.erasures (person_pseudonym, participant_id)
        select distinct {PSEUDONYM}, participant_id from {_Sink.temp_table(file)}
        where violations is null and erase = 'true'
        on conflict do nothing
        """
    )
    return cur.rowcount


def drop_erased_incoming(conn: psycopg.Connection, contract: Contract, source: str, files: set[str]) -> int:
    """Drop rows about erased people from a delivery being applied; they count as purged."""
    dropped = 0
    for file, spec in contract.sources[source].files.items():
        table = _Sink.temp_table(file)
        if table not in files:
            continue
        condition = _erased_filter([n for n, _ in _columns(spec)])
        if condition:
            dropped += conn.execute(f"delete from {table} where {condition}").rowcount
    return dropped


def purge_erased(conn: psycopg.Connection, contract: Contract) -> int:
    """Delete every stored row about an erased person (raw, pending, quarantine), keeping each
    delivery reconciled: the rows move to ``rows_purged``. Idempotent and cheap when done."""
    reason = "a participant withdrew consent and asked for their data to be deleted"
    total = 0
    for source, source_spec in contract.sources.items():
        for file, spec in source_spec.files.items():
            target = raw_table(source, file)
            condition = _erased_filter([n for n, _ in _columns(spec)])
            if condition is None:
                continue
            for schema, column in (("raw", "rows_loaded"), ("pending", "rows_pending")):
                if schema == "pending" and source not in FNR_KEYED:
                    continue
                removed = conn.execute(
                    f"""
                    with removed as (delete from {schema}.{target} where {condition} returning delivery_id)
                    select delivery_id, count(*) from removed group by delivery_id order by delivery_id
                    """
                ).fetchall()
                total += _shift(conn, source, [(d, int(n)) for d, n in removed], column, reason)
    removed_rows = conn.execute(
        f"""
        with removed as (
            delete from quarantine.rows
            where record->>'{PSEUDONYM}' in ({ERASED_PSEUDONYMS})
               or record->>'participant_id' in ({ERASED_PARTICIPANTS})
            returning source, delivery_id, released
        )
        select source, delivery_id, count(*) filter (where not released) from removed
        group by source, delivery_id order by source, delivery_id
        """
    ).fetchall()
    for source, delivery_id, n in removed_rows:
        if n:
            total += _shift(conn, source, [(delivery_id, int(n))], "rows_quarantined", reason)
    return total


def _enrolled_participants(conn: psycopg.Connection) -> set[str]:
    return {r[0] for r in conn.execute("select distinct participant_id from raw.trial_enrolment")}
