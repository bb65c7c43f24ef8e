"""Database locks: ``outcomes lock create|verify|list`` (docs/dashboards-and-locks.md).

A lock freezes the published marts as they are now into schema ``lock_<name>`` (a hyphen in the
name becomes an underscore: ``12m-lock`` lives in ``lock_12m_lock``), with a manifest in
``meta.lock_tables``: each table's row count and the md5 of all its rows in a fixed order. It
never changes afterwards:

- privileges: the owner role owns the tables, the analyst may only select, nobody else has any;
- a trigger on every lock table refuses insert, update, delete and truncate from anyone, the
  owner included, unless the transaction declared an erasure amendment;
- ``verify`` recomputes every checksum and compares it with the manifest.

Erasure outranks the freeze: ``apply_erasures`` (run by every build, before dbt) claims the
erasures the loader queued (``pending.erasure_queue``), deletes their rows from every lock,
recomputes the lock's aggregate marts from the rows left (the dbt models' own SQL,
``outcomes.warehouse.erasures``), updates the manifest and records each change in
``meta.lock_amendments`` (table, rows removed, checksums before and after; never whom). It deletes
them from ``history`` too and counts the history's aggregates again without them (the snapshot's
post-hook deletes any that come back). ``close_erasures`` then amends the locks made meanwhile and
empties what the build claimed. ``meta.erasure_sweeps`` records each step's stores, with counts.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import Any

from outcomes.warehouse.connection import Role, Warehouse
from outcomes.warehouse.erasures import Aggregates, history_plan, record_sweeps, recount_history
from outcomes.warehouse.publish import PUBLISHED, schema_build_id, schema_tables

log = logging.getLogger(__name__)
NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")


class LockError(Exception):
    """A lock operation that cannot be done; the message says why and what to do."""


@dataclass(frozen=True)
class TableCheck:
    table: str
    rows: int | None
    checksum: str | None
    expected_rows: int | None
    expected_checksum: str | None

    @property
    def ok(self) -> bool:
        return self.rows == self.expected_rows and self.checksum == self.expected_checksum


@dataclass(frozen=True)
class Lock:
    name: str
    schema_name: str
    build_id: str
    as_of_date: str
    created_at: str
    created_by: str
    note: str | None
    amended_at: str | None
    tables: dict[str, tuple[int, str]] = field(default_factory=dict)
    amendments: int = 0


def schema_for(name: str) -> str:
    if not NAME.match(name):
        raise LockError(
            f"lock name {name!r}: use 1-40 lower-case letters, digits, '-' or '_', starting with a "
            "letter or digit (e.g. 12m-lock)"
        )
    return "lock_" + name.replace("-", "_")


def checksum_sql(schema: str, table: str) -> Any:
    """Row count and md5 of every row's text in the rows' text order: equal iff the rows are."""
    from psycopg import sql

    return sql.SQL(
        "select count(*), md5(coalesce(string_agg(t::text, E'\\n' order by t::text), '')) from {} as t"
    ).format(sql.Identifier(schema, table))


def create(warehouse: Warehouse, name: str, note: str | None = None) -> Lock:
    """Freeze the published marts into ``lock_<name>`` with its manifest, in one transaction."""
    import psycopg
    from psycopg import sql

    schema = schema_for(name)
    with psycopg.connect(warehouse.url()) as conn:
        conn.execute(f"set local role {Role.OWNER}")
        if conn.execute("select 1 from meta.locks where name = %s", (name,)).fetchone():
            raise LockError(f"lock {name!r} exists already; a lock never changes (choose another name)")
        tables = schema_tables(conn, PUBLISHED)
        if not tables:
            raise LockError("nothing is published yet: run the build first (`outcomes run`)")
        # a publish must wait until the copy is done: the lock holds one whole build
        conn.execute(
            sql.SQL("lock table {} in share mode").format(
                sql.SQL(", ").join(sql.Identifier(PUBLISHED, t) for t in tables)
            )
        )
        build_id = schema_build_id(conn, PUBLISHED)
        if build_id is None:
            raise LockError("the published marts do not name their build (publish them with `outcomes run`)")
        build = conn.execute(
            "select as_of_date from meta.published_builds where build_id = %s", (build_id,)
        ).fetchone()
        if build is None:
            raise LockError(f"build {build_id} is not in meta.published_builds")
        conn.execute(sql.SQL("create schema {}").format(sql.Identifier(schema)))
        conn.execute(
            sql.SQL("comment on schema {} is {}").format(
                sql.Identifier(schema),
                sql.Literal(
                    f"Database lock {name}: build {build_id}, as of {build[0].isoformat()}. Read-only."
                ),
            )
        )
        conn.execute(
            "insert into meta.locks (name, schema_name, build_id, as_of_date, note) "
            "values (%s, %s, %s, %s, %s)",
            (name, schema, build_id, build[0], note),
        )
        for table in tables:
            conn.execute(
                sql.SQL("create table {} as table {}").format(
                    sql.Identifier(schema, table), sql.Identifier(PUBLISHED, table)
                )
            )
            rows, checksum = conn.execute(checksum_sql(schema, table)).fetchone()  # type: ignore[misc]
            conn.execute(
                "insert into meta.lock_tables (name, table_name, row_count, checksum) "
                "values (%s, %s, %s, %s)",
                (name, table, rows, checksum),
            )
            _freeze(conn, schema, table)
        conn.execute(sql.SQL("revoke all on schema {} from public").format(sql.Identifier(schema)))
        conn.execute(
            sql.SQL("grant usage on schema {} to {}").format(
                sql.Identifier(schema), sql.Identifier(Role.ANALYST)
            )
        )
    lock = get(warehouse, name)
    assert lock is not None
    return lock


def _freeze(conn: Any, schema: str, table: str) -> None:
    from psycopg import sql

    target = sql.Identifier(schema, table)
    conn.execute(sql.SQL("revoke all on {} from public").format(target))
    conn.execute(sql.SQL("grant select on {} to {}").format(target, sql.Identifier(Role.ANALYST)))
    conn.execute(
        sql.SQL(
            "create trigger lock_is_read_only before insert or update or delete on {} "
            "for each row execute function meta.refuse_lock_change()"
        ).format(target)
    )
    conn.execute(
        sql.SQL(
            "create trigger lock_is_read_only_truncate before truncate on {} "
            "for each statement execute function meta.refuse_lock_change()"
        ).format(target)
    )


def get(warehouse: Warehouse, name: str) -> Lock | None:
    locks = [lock for lock in list_locks(warehouse) if lock.name == name]
    return locks[0] if locks else None


def list_locks(warehouse: Warehouse) -> list[Lock]:
    """Every lock, oldest first, with its manifest."""
    import psycopg
    from psycopg.rows import dict_row

    with psycopg.connect(warehouse.url(), row_factory=dict_row) as conn:
        if conn.execute("select to_regclass('meta.locks') as t").fetchone()["t"] is None:  # type: ignore[index]
            return []
        locks = conn.execute(
            """
            select l.*, (select count(*) from meta.lock_amendments a where a.name = l.name) as amendments
            from meta.locks l order by created_at, name
            """
        ).fetchall()
        manifest = conn.execute("select * from meta.lock_tables order by name, table_name").fetchall()
    return [
        Lock(
            name=lock["name"],
            schema_name=lock["schema_name"],
            build_id=lock["build_id"],
            as_of_date=lock["as_of_date"].isoformat(),
            created_at=str(lock["created_at"])[:19],
            created_by=lock["created_by"],
            note=lock["note"],
            amended_at=str(lock["amended_at"])[:19] if lock["amended_at"] else None,
            tables={
                m["table_name"]: (m["row_count"], m["checksum"])
                for m in manifest
                if m["name"] == lock["name"]
            },
            amendments=lock["amendments"],
        )
        for lock in locks
    ]


def verify(warehouse: Warehouse, name: str) -> list[TableCheck]:
    """Recompute every table's row count and checksum and compare them with the manifest.

    A table in the manifest but missing from the schema, or in the schema but not in the manifest,
    is a mismatch too.
    """
    import psycopg

    lock = get(warehouse, name)
    if lock is None:
        raise LockError(f"no lock named {name!r} (`outcomes lock list` shows them)")
    checks = []
    with psycopg.connect(warehouse.url()) as conn:
        conn.execute("set transaction isolation level repeatable read, read only")
        present = set(schema_tables(conn, lock.schema_name))
        for table in sorted(present | set(lock.tables)):
            expected = lock.tables.get(table, (None, None))
            found = (
                conn.execute(checksum_sql(lock.schema_name, table)).fetchone() if table in present else None
            )
            rows, checksum = found if found is not None else (None, None)
            checks.append(TableCheck(table, rows, checksum, expected[0], expected[1]))
    return checks


QUEUE = "pending.erasure_queue"


def _erased(conn: Any, build_id: str | None) -> str:
    """The participant IDs an erasure step acts on, as a subquery: those ``build_id`` claimed, or
    (without one) the whole queue."""
    from psycopg import sql

    if build_id is None:
        return f"(select participant_id from {QUEUE})"
    claimed = sql.SQL("(select participant_id from {} where claimed_by = {})").format(
        sql.SQL(QUEUE), sql.Literal(build_id)
    )
    return claimed.as_string(conn)


def apply_erasures(
    warehouse: Warehouse, build_id: str | None = None, aggregates: Aggregates | None = None
) -> int:
    """Delete queued erasures' rows from every lock, recompute the lock's aggregate marts from
    the rows left (by ``aggregates``, the dbt models' own SQL), amend the manifests, record each
    change; with ``build_id``, first claim every queued erasure for that build
    (:func:`close_erasures`), delete their rows from the history too, count the history's
    aggregates again without them, and record what each store lost in ``meta.erasure_sweeps``.
    One transaction: a failure leaves every lock and the history as they were.

    Returns the number of rows removed from the locks (0 when nothing was held about an erased
    participant).
    """
    import psycopg

    with psycopg.connect(warehouse.url()) as conn:
        conn.execute(f"set local role {Role.OWNER}")
        if build_id is not None:
            conn.execute(f"update {QUEUE} set claimed_by = %s", (build_id,))
        erased = _erased(conn, build_id)
        claimed = conn.execute(f"select count(*) from {erased} as erased").fetchone()
        participants = int(claimed[0]) if claimed else 0
        if not participants:
            return 0
        removed = _erase_from_locks(conn, erased, aggregates)
        if build_id is None:
            return removed
        plan = history_plan(conn, erased)  # which builds' aggregates counted them, before they go
        history = _erase_from(conn, "history", erased)
        swept = {"locks": removed, "history": history}
        if plan is not None:
            if aggregates is None:
                raise LockError("the history's aggregates need counting again, and no SQL was given")
            swept["history_aggregates"] = recount_history(conn, plan, aggregates)
        record_sweeps(conn, "build", build_id, participants, swept)
        log.info("erasure: %d participants; %s (meta.erasure_sweeps)", participants, swept)
        return removed


def queued(warehouse: Warehouse, build_id: str | None = None) -> int:
    """How many erasures wait in the queue: those ``build_id`` claimed and has yet to close, or
    (without one) all of them."""
    import psycopg

    with psycopg.connect(warehouse.url()) as conn:
        conn.execute(f"set local role {Role.OWNER}")
        row = conn.execute(f"select count(*) from {_erased(conn, build_id)} as erased").fetchone()
    return int(row[0]) if row else 0


def _erase_from(conn: Any, schema: str, erased: str) -> int:
    """Delete the ``erased`` participants' rows from every table of ``schema`` keyed by participant."""
    from psycopg import sql

    deleted = 0
    for (table,) in conn.execute(
        """
        select table_name from information_schema.columns
        where table_schema = %s and column_name = 'participant_id' order by table_name
        """,
        (schema,),
    ).fetchall():
        deleted += conn.execute(
            sql.SQL("delete from {} where participant_id in " + erased).format(sql.Identifier(schema, table))
        ).rowcount
    return deleted


def _erase_from_locks(conn: Any, erased: str, aggregates: Aggregates | None) -> int:
    """Delete the ``erased`` participants' rows from every lock that holds them and recompute
    the lock's aggregates without them; returns the rows deleted from the row-level tables.

    An aggregate is recomputed only when today's rule, run on the lock's rows as they are before
    the deletion, gives back the aggregate as it was frozen (its checksum in the manifest). If it
    does not (the rule changed since the lock, or the lock's rows were altered), the aggregate is
    emptied instead: a lock never keeps a number that counted an erased participant, and never one
    computed by another rule than the one it was frozen with. Either way the amendment records the
    table's checksum before (as found) and after."""
    from psycopg import sql

    if conn.execute("select to_regclass('meta.locks')").fetchone() == (None,):
        return 0
    removed_total = 0
    locks = conn.execute("select name, schema_name from meta.locks order by name").fetchall()
    for name, schema in locks:
        conn.execute("set local outcomes.lock_amendment = 'erasure'")
        keyed = {
            table
            for (table,) in conn.execute(
                """
                select table_name from information_schema.columns
                where table_schema = %s and column_name = 'participant_id'
                """,
                (schema,),
            ).fetchall()
        }
        holding = [
            table
            for table in sorted(keyed)
            if conn.execute(
                sql.SQL("select exists (select 1 from {} where participant_id in " + erased + ")").format(
                    sql.Identifier(schema, table)
                )
            ).fetchone()
            == (True,)
        ]
        if not holding:
            continue
        frozen = dict(
            conn.execute(
                "select table_name, checksum from meta.lock_tables where name = %s order by table_name",
                (name,),
            ).fetchall()
        )
        found = {table: conn.execute(checksum_sql(schema, table)).fetchone()[1] for table in frozen}
        counted = sorted(table for table in frozen if table not in keyed)
        queries: dict[str, str] = {}
        if counted:
            if aggregates is None:
                raise LockError(
                    f"lock {name}: its aggregates {counted} need recomputing, and no SQL was given"
                )
            queries = aggregates.queries(counted)
        reproduced = {
            table: _recounted(conn, schema, table, queries[table]) == frozen[table] for table in counted
        }
        amended = []
        for table in holding:
            deleted = conn.execute(
                sql.SQL("delete from {} where participant_id in " + erased).format(
                    sql.Identifier(schema, table)
                )
            ).rowcount
            amended.append((table, deleted))
            removed_total += deleted
        for table in counted:
            rows_before = conn.execute(checksum_sql(schema, table)).fetchone()[0]
            if reproduced[table]:
                _recompute(conn, schema, table, queries[table])
            else:  # the rule it was frozen with is gone: no number that counted them is kept
                log.warning("lock %s: %s does not recompute to what was frozen; emptied", name, table)
                conn.execute(sql.SQL("delete from {}").format(sql.Identifier(schema, table)))
            rows_after, after = conn.execute(checksum_sql(schema, table)).fetchone()
            if after != found[table]:
                amended.append((table, max(int(rows_before) - int(rows_after), 0)))
        for table, rows_removed in amended:
            _amend(conn, name, schema, table, rows_removed, found[table])
    return removed_total


def _recounted(conn: Any, schema: str, table: str, query: str) -> str:
    """The checksum ``query`` (an aggregate's rule) gives over the rows of ``schema`` as they
    are, as if it were the aggregate ``table`` (a copy of its columns and types)."""
    from psycopg import sql

    conn.execute("drop table if exists pg_temp.erasure_recount")
    conn.execute(
        sql.SQL("create temporary table erasure_recount (like {}) on commit drop").format(
            sql.Identifier(schema, table)
        )
    )
    _fill(conn, sql.Identifier("pg_temp", "erasure_recount"), schema, table, query)
    checksum = conn.execute(checksum_sql("pg_temp", "erasure_recount")).fetchone()
    return str(checksum[1]) if checksum else ""


def _recompute(conn: Any, schema: str, table: str, query: str) -> None:
    """Replace the rows of the aggregate ``schema.table`` by ``query`` over the schema's rows."""
    from psycopg import sql

    conn.execute("set local outcomes.lock_amendment = 'erasure_recount'")  # delete and insert
    conn.execute(sql.SQL("delete from {}").format(sql.Identifier(schema, table)))
    _fill(conn, sql.Identifier(schema, table), schema, table, query)
    conn.execute("set local outcomes.lock_amendment = 'erasure'")  # delete only, again


def _fill(conn: Any, into: Any, schema: str, table: str, query: str) -> None:
    """Insert what ``query`` (an aggregate's rule) gives over the rows of ``schema`` into
    ``into``, by the columns of ``schema.table``. An effect mart's rule is its SQL and then its
    estimates (``outcomes.analysis.estimates``), computed in a scratch copy before the insert: a
    lock's table is only ever deleted from and inserted into."""
    from psycopg import sql

    from outcomes.analysis import estimates
    from outcomes.warehouse.erasures import columns_of, in_schema

    names = sql.SQL(", ").join(sql.Identifier(c) for c in columns_of(conn, schema, table))
    scratch = sql.Identifier("pg_temp", "aggregate_fill")
    conn.execute("drop table if exists pg_temp.aggregate_fill")
    conn.execute(
        sql.SQL("create temporary table aggregate_fill (like {}) on commit drop").format(
            sql.Identifier(schema, table)
        )
    )
    conn.execute(
        sql.SQL("insert into {} ({}) select {} from ({}) as recounted").format(
            scratch, names, names, sql.SQL(in_schema(query, schema))
        )
    )
    estimates.fill(conn, table, scratch, schema)
    conn.execute(sql.SQL("insert into {} ({}) select {} from {}").format(into, names, names, scratch))


def _amend(conn: Any, name: str, schema: str, table: str, rows_removed: int, before: str) -> None:
    """The manifest of lock ``name`` follows ``table``'s change, and the change is recorded with
    the table's checksum ``before`` it (as found, which differs from the manifest's if the lock
    was altered) and after."""
    rows, checksum = conn.execute(checksum_sql(schema, table)).fetchone()
    conn.execute(
        "update meta.lock_tables set row_count = %s, checksum = %s where name = %s and table_name = %s",
        (rows, checksum, name, table),
    )
    conn.execute(
        """
        insert into meta.lock_amendments
            (name, table_name, reason, rows_removed, checksum_before, checksum_after)
        values (%s, %s, 'erasure', %s, %s, %s)
        """,
        (name, table, rows_removed, before, checksum),
    )
    conn.execute("update meta.locks set amended_at = now() where name = %s", (name,))


def close_erasures(
    warehouse: Warehouse,
    build_id: str,
    aggregates: Aggregates | None = None,
) -> int:
    """The erasures ``build_id`` claimed are done (locks amended, history cleaned, dashboards
    swept): their queue entries are deleted, so no participant ID of an erased person is left in
    the warehouse, and ``meta.erasure_sweeps`` records the close (store ``queue``). The locks are
    amended once more first, for the participants this build claimed: a lock made while the build
    ran copied the marts of before, which still held them. An erasure queued while the build ran
    stays for the next build. One transaction. Returns how many closed."""
    import psycopg

    with psycopg.connect(warehouse.url()) as conn:
        conn.execute(f"set local role {Role.OWNER}")
        late = _erase_from_locks(conn, _erased(conn, build_id), aggregates)
        closed = conn.execute(f"delete from {QUEUE} where claimed_by = %s", (build_id,)).rowcount
        swept = {"locks": late} if late else {}
        record_sweeps(conn, "build", build_id, closed, {**swept, "queue": closed})
        return closed
