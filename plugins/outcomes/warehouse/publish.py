"""Write, audit, publish: the candidate schema and the atomic swap into ``marts``.

``build_outcomes`` builds the marts into :data:`CANDIDATE` (never into ``marts``), the quality gate
audits it, and :func:`publish` swaps it in. PostgreSQL DDL is transactional, so one transaction

1. takes an ACCESS EXCLUSIVE lock on every table of the published and the candidate schema (each
   attempt waits at most ``lock_timeout``, below PostgreSQL's ``deadlock_timeout``, so a reader is
   never chosen as a deadlock victim: the publish backs off and retries instead),
2. drops the published schema, renames the candidate to ``marts`` and grants the analyst role,
3. records the build in ``meta.published_builds`` with the deliveries it included,

and a reader sees yesterday's build or today's, never a missing table or half of each: a query
that arrives during the swap waits for it (milliseconds) and then reads the new build.

A blocked candidate is left in place for inspection (``outcomes psql``) until the next build
replaces it. The previous build is not kept: ``history`` keeps every night's employment numbers,
and a kept copy would outlive an erasure.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from dataclasses import dataclass
from typing import Any

from outcomes.warehouse.connection import Role, Warehouse

log = logging.getLogger(__name__)

PUBLISHED = "marts"
CANDIDATE = "marts_candidate"
#: Each attempt's lock wait, below PostgreSQL's default deadlock_timeout (1 s).
LOCK_TIMEOUT_MS = 500


class PublishError(RuntimeError):
    """The candidate cannot be published (missing, empty, or the locks could not be taken)."""


@dataclass(frozen=True)
class PublishedBuild:
    build_id: str
    as_of_date: dt.date
    tables: int
    deliveries: dict[str, int]
    attempts: int
    seconds: float


def prepare_candidate(warehouse: Warehouse) -> None:
    """An empty candidate schema: a failed or blocked build's leftovers never reach a publish."""
    import psycopg

    with psycopg.connect(warehouse.url(), autocommit=True) as conn:
        conn.execute(f"set role {Role.OWNER}")
        conn.execute(f"drop schema if exists {CANDIDATE} cascade")
        conn.execute(f"create schema {CANDIDATE}")
        conn.execute(
            f"comment on schema {CANDIDATE} is "
            "'The build being audited by the quality gate: internal, never read by analysts.'"
        )


def schema_build_id(conn: Any, schema: str) -> str | None:
    """The build a published schema (``marts``, a ``lock_<name>``) holds, from the comment that
    ``publish`` (and ``locks.create``) write: ``... build <id>, as of <date>...``."""
    import re

    from psycopg.rows import tuple_row

    row = (
        conn.cursor(row_factory=tuple_row)
        .execute("select obj_description(to_regnamespace(%s), 'pg_namespace')", (schema,))
        .fetchone()
    )
    found = re.search(r"\bbuild (b[0-9T.]+Z)\b", (row[0] if row else None) or "")
    return found.group(1) if found else None


def latest_published(conn: Any) -> dict[str, Any] | None:
    """The build ``marts`` holds now: the latest row of ``meta.published_builds`` (every column),
    or None before the first publish (or before the migrations). The one reader of it: the status,
    the dashboard and the backfill's "where were the marts" all ask here, on their own connection
    (so a caller's transaction sees the same build as its other reads)."""
    from psycopg.rows import dict_row

    cur = conn.cursor(row_factory=dict_row)
    if cur.execute("select to_regclass('meta.published_builds') as t").fetchone()["t"] is None:
        return None
    row: dict[str, Any] | None = cur.execute(
        "select * from meta.published_builds order by published_at desc limit 1"
    ).fetchone()
    return row


def latest_published_build(warehouse: Warehouse) -> dict[str, Any] | None:
    """:func:`latest_published` on a connection of its own."""
    import psycopg

    with psycopg.connect(warehouse.url()) as conn:
        return latest_published(conn)


def schema_tables(conn: Any, schema: str) -> list[str]:
    rows = conn.execute(
        "select tablename from pg_tables where schemaname = %s order by tablename", (schema,)
    ).fetchall()
    return [row[0] for row in rows]


#: The ledger statuses of deliveries whose rows are in raw (what a build can see).
INCLUDED_STATUSES = ("loaded", "released")


def build_cutoff(as_of: dt.date) -> dt.datetime:
    """A build as of ``as_of`` sees the deliveries extracted before the end of that day (UTC)."""
    return dt.datetime.combine(as_of + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)


def included_deliveries(conn: Any, as_of: dt.date) -> list[tuple[str, str]]:
    """The deliveries a build as of ``as_of`` saw: applied rows extracted before its cutoff."""
    rows = conn.execute(
        """
        select source, delivery_id from meta.deliveries
        where status = any(%s) and extracted_at < %s
        order by source, delivery_id
        """,
        (list(INCLUDED_STATUSES), build_cutoff(as_of)),
    ).fetchall()
    return [(row[0], row[1]) for row in rows]


def publish(
    warehouse: Warehouse,
    *,
    build_id: str,
    as_of: dt.date,
    gate_result: str,
    gate_summary: dict[str, Any],
    dag_run_id: str | None = None,
    max_wait_seconds: float = 600.0,
) -> PublishedBuild:
    """Swap the candidate in as ``marts`` in one transaction and record the publish.

    ``gate_result`` is the gate's verdict (``passed`` or ``warned``); a blocked build never gets
    here. Retries the lock until ``max_wait_seconds`` (long-running readers hold the old tables).
    """
    import psycopg

    if gate_result not in {"passed", "warned"}:
        raise PublishError(f"build {build_id}: gate result {gate_result!r} does not allow a publish")
    started = time.monotonic()
    attempts = 0
    while True:
        attempts += 1
        try:
            with psycopg.connect(warehouse.url()) as conn:
                result = _swap(conn, build_id, as_of, gate_result, gate_summary, dag_run_id)
            break
        except psycopg.errors.LockNotAvailable:
            waited = time.monotonic() - started
            if waited > max_wait_seconds:
                raise PublishError(
                    f"build {build_id}: readers held the marts' tables for {waited:.0f} s; "
                    "the candidate stays unpublished (retry the publish task)"
                ) from None
            time.sleep(min(0.05 * attempts, 2.0))
    seconds = time.monotonic() - started
    log.info(
        "published build %s (as of %s): %d tables, %d attempt(s), %.2f s",
        build_id,
        as_of,
        result[0],
        attempts,
        seconds,
    )
    return PublishedBuild(build_id, as_of, result[0], result[1], attempts, seconds)


def _swap(
    conn: Any,
    build_id: str,
    as_of: dt.date,
    gate_result: str,
    gate_summary: dict[str, Any],
    dag_run_id: str | None,
) -> tuple[int, dict[str, int]]:
    from psycopg import sql

    from outcomes.runners import faults

    conn.execute(f"set local role {Role.OWNER}")
    conn.execute(f"set local lock_timeout = {LOCK_TIMEOUT_MS}")
    candidate = schema_tables(conn, CANDIDATE)
    if not candidate:
        raise PublishError(f"build {build_id}: schema {CANDIDATE} has no tables; nothing to publish")
    published = schema_tables(conn, PUBLISHED)
    tables = [sql.Identifier(PUBLISHED, t) for t in published] + [
        sql.Identifier(CANDIDATE, t) for t in candidate
    ]
    conn.execute(sql.SQL("lock table {} in access exclusive mode").format(sql.SQL(", ").join(tables)))
    conn.execute(f"drop schema if exists {PUBLISHED} cascade")
    conn.execute(f"alter schema {CANDIDATE} rename to {PUBLISHED}")
    conn.execute(f"grant usage on schema {PUBLISHED} to {Role.ANALYST}")
    conn.execute(f"grant select on all tables in schema {PUBLISHED} to {Role.ANALYST}")
    # default privileges belong to a schema: give the new `marts` those the old one had
    conn.execute(
        f"alter default privileges for role {Role.OWNER} in schema {PUBLISHED} "
        f"grant select on tables to {Role.ANALYST}"
    )
    conn.execute(
        sql.SQL("comment on schema {} is {}").format(
            sql.Identifier(PUBLISHED),
            sql.Literal(f"The analysts' marts (docs/analysts-guide.md): build {build_id}, as of {as_of}."),
        )
    )
    deliveries = included_deliveries(conn, as_of)
    per_source: dict[str, int] = {}
    for source, _ in deliveries:
        per_source[source] = per_source.get(source, 0) + 1
    latest = {source: max(d for s, d in deliveries if s == source) for source in per_source}
    conn.execute(
        """
        insert into meta.published_builds
            (build_id, dag_run_id, as_of_date, deliveries, gate_result, gate_summary)
        values (%s, %s, %s, %s, %s, %s)
        """,
        (
            build_id,
            dag_run_id,
            as_of,
            json.dumps({s: {"count": n, "latest": latest[s]} for s, n in per_source.items()}),
            gate_result,
            json.dumps(gate_summary, default=str),
        ),
    )
    with conn.cursor() as cur:
        cur.executemany(
            "insert into meta.published_build_deliveries (build_id, source, delivery_id) values (%s, %s, %s)",
            [(build_id, s, d) for s, d in deliveries],
        )
    faults.point("publish.before_commit")
    conn.commit()
    return len(candidate), per_source
