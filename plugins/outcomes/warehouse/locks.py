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
erasures the loader queued (``pending.erasure_queue``), deletes their rows from every lock, updates
the manifest and records each change in ``meta.lock_amendments`` (table, rows removed, checksums
before and after; never whom). The history snapshot's post-hook deletes them from ``history``, and
``close_erasures`` then empties what the build claimed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from outcomes.warehouse.connection import Role, Warehouse
from outcomes.warehouse.publish import PUBLISHED, schema_build_id, schema_tables

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


def apply_erasures(warehouse: Warehouse, build_id: str | None = None) -> int:
    """Delete queued erasures' rows from every lock, amend the manifests, record each change; with
    ``build_id``, first claim every queued erasure for that build (:func:`close_erasures`).

    Returns the number of rows removed (0 when nothing was held about an erased participant).
    """
    import psycopg
    from psycopg import sql

    removed_total = 0
    with psycopg.connect(warehouse.url()) as conn:
        conn.execute(f"set local role {Role.OWNER}")
        if build_id is not None:
            conn.execute(f"update {QUEUE} set claimed_by = %s", (build_id,))
        if conn.execute("select to_regclass('meta.locks')").fetchone() == (None,):
            return 0
        locks = conn.execute("select name, schema_name from meta.locks order by name").fetchall()
        if not locks or conn.execute(f"select not exists (select 1 from {QUEUE})").fetchone() == (True,):
            return 0
        conn.execute("set local outcomes.lock_amendment = 'erasure'")
        for name, schema in locks:
            for (table,) in conn.execute(
                """
                select table_name from information_schema.columns
                where table_schema = %s and column_name = 'participant_id' order by table_name
                """,
                (schema,),
            ).fetchall():
                before = conn.execute(
                    "select checksum from meta.lock_tables where name = %s and table_name = %s", (name, table)
                ).fetchone()
                deleted = conn.execute(
                    sql.SQL(
                        "delete from {} where participant_id in (select participant_id from " + QUEUE + ")"
                    ).format(sql.Identifier(schema, table))
                ).rowcount
                if not deleted:
                    continue
                rows, checksum = conn.execute(checksum_sql(schema, table)).fetchone()  # type: ignore[misc]
                conn.execute(
                    "update meta.lock_tables set row_count = %s, checksum = %s "
                    "where name = %s and table_name = %s",
                    (rows, checksum, name, table),
                )
                conn.execute(
                    """
                    insert into meta.lock_amendments
                        (name, table_name, reason, rows_removed, checksum_before, checksum_after)
                    values (%s, %s, 'erasure', %s, %s, %s)
                    """,
                    (name, table, deleted, before[0] if before else "", checksum),
                )
                conn.execute("update meta.locks set amended_at = now() where name = %s", (name,))
                removed_total += deleted
    return removed_total


def close_erasures(warehouse: Warehouse, build_id: str) -> int:
    """The erasures ``build_id`` claimed are done (locks amended, history snapshot cleaned): their
    queue entries are deleted, so no participant ID of an erased person is left in the warehouse.
    The locks are amended once more first: a lock made while the build ran copied the marts of
    before, which still held them. An erasure queued while the build ran stays for the next build.
    Returns how many closed."""
    import psycopg

    apply_erasures(warehouse)
    with psycopg.connect(warehouse.url()) as conn:
        conn.execute(f"set local role {Role.OWNER}")
        return conn.execute(f"delete from {QUEUE} where claimed_by = %s", (build_id,)).rowcount
