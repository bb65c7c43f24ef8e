"""Database locks: named, frozen, checksummed copies of the published marts (docs/definitions.md).

- ``meta.locks``: one row per lock (its schema ``lock_<name>``, the build and as-of it froze);
- ``meta.lock_tables``: the manifest, one row per table (rows and an md5 checksum of every row);
- ``meta.lock_amendments``: every change to a lock after its creation. Only an erasure may change
  one (consent outranks the freeze); the amendment records which table lost how many rows and the
  checksums before and after, never whom.
- ``meta.refuse_lock_change()``: the trigger function on every lock table that refuses inserts,
  updates, deletes and truncates from anyone, the owner included, unless the transaction declared
  an erasure amendment (``set local outcomes.lock_amendment = 'erasure'``, as
  ``outcomes.warehouse.locks.apply_erasures`` does).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("set local role outcomes_owner")
    op.execute(
        """
        create table meta.locks (
            name text primary key check (name ~ '^[a-z0-9][a-z0-9_-]{0,39}$'),
            schema_name text not null unique,
            build_id text not null references meta.published_builds (build_id),
            as_of_date date not null,
            note text,
            created_at timestamptz not null default now(),
            created_by text not null default session_user,
            amended_at timestamptz
        )
        """
    )
    op.execute(
        "comment on table meta.locks is "
        "'Database locks: frozen copies of the published marts in schema lock_<name> "
        "(never changed, erasure aside).'"
    )
    op.execute(
        """
        create table meta.lock_tables (
            name text not null references meta.locks (name),
            table_name text not null,
            row_count bigint not null,
            checksum text not null,
            primary key (name, table_name)
        )
        """
    )
    op.execute(
        "comment on table meta.lock_tables is "
        "'The manifest of each lock: per table, its row count and the md5 of all its rows in order.'"
    )
    op.execute(
        """
        create table meta.lock_amendments (
            amendment_id bigint generated always as identity primary key,
            name text not null references meta.locks (name),
            table_name text not null,
            reason text not null check (reason in ('erasure')),
            rows_removed bigint not null,
            checksum_before text not null,
            checksum_after text not null,
            amended_at timestamptz not null default now(),
            amended_by text not null default session_user
        )
        """
    )
    op.execute(
        "comment on table meta.lock_amendments is "
        "'Every change to a lock after it was made: only erasures, with counts and checksums, never whom.'"
    )
    op.execute(
        """
        create function meta.refuse_lock_change() returns trigger language plpgsql as $$
        begin
            if coalesce(current_setting('outcomes.lock_amendment', true), '') = 'erasure'
               and tg_op = 'DELETE' then
                return old;
            end if;
            raise exception 'table %.% is part of a database lock and is read-only (%)',
                tg_table_schema, tg_table_name, tg_op
                using errcode = 'read_only_sql_transaction',
                      hint = 'a lock changes only for an erasure; make a new lock for new data';
        end
        $$
        """
    )
    op.execute("reset role")


def downgrade() -> None:
    op.execute("set local role outcomes_owner")
    op.execute("drop function meta.refuse_lock_change()")
    op.execute("drop table meta.lock_amendments")
    op.execute("drop table meta.lock_tables")
    op.execute("drop table meta.locks")
    op.execute("reset role")
