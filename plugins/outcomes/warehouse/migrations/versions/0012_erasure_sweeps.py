"""The auditor's record of every erasure: which stores were cleaned, with counts, never whom.

``meta.erasure_sweeps``: one row per store an erasure cleaned, and by which step. The loader writes
the rows of the delivery that registered the erasure (``raw``, ``pending`` and ``quarantine``:
rows deleted), the build that carried it out writes its own (``locks`` and ``history``: rows
deleted; ``dashboards``: snapshot files rendered before the erasure, removed), each with how many
participants it erased. It never holds a participant ID, a pseudonym or a tombstone.

A lock's aggregate marts are recomputed without the erased participants (their rows replaced, in
the erasure's transaction): ``meta.refuse_lock_change()`` now also lets an insert through when the
transaction declared ``outcomes.lock_amendment = 'erasure_recount'``; a plain erasure amendment
(``'erasure'``) still only deletes.

Messages stored by earlier releases (the gate's observed values, the ledger's messages and events,
a delivery's problems and the column names they give) could name a participant; their participant
IDs are replaced by ``(withheld)`` (a column name by NULL), as messages are written from this
release on. The pattern is the trial contract's rule for a participant ID, unanchored; a text such
as ``SHA-256`` matches it too and is withheld with them. The loader may only append to the
record (no update or delete).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06
"""

from __future__ import annotations

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

#: Where earlier releases wrote messages that could hold a participant ID, and the trial's ID
#: (the contract's rule, sources.yaml) as it may appear in them.
MESSAGES = (
    ("meta.gate_results", "observed"),
    ("meta.deliveries", "message"),
    ("meta.delivery_events", "detail"),
    ("quarantine.delivery_problems", "message"),
)
PARTICIPANT = "[A-Z]{2,6}-[0-9]{3,6}"

#: The lock tables' guard (migration 0005), with what an amendment may do.
REFUSE = """
    create or replace function meta.refuse_lock_change() returns trigger language plpgsql as $$
    begin
        {allowed}
        raise exception 'table %.% is part of a database lock and is read-only (%)',
            tg_table_schema, tg_table_name, tg_op
            using errcode = 'read_only_sql_transaction',
                  hint = 'a lock changes only for an erasure; make a new lock for new data';
    end
    $$
"""
ERASURE_ONLY = """
        if coalesce(current_setting('outcomes.lock_amendment', true), '') = 'erasure'
           and tg_op = 'DELETE' then
            return old;
        end if;"""
RECOUNT = (
    ERASURE_ONLY
    + """
        if coalesce(current_setting('outcomes.lock_amendment', true), '') = 'erasure_recount' then
            if tg_op = 'DELETE' then
                return old;
            elsif tg_op = 'INSERT' then
                return new;
            end if;
        end if;"""
)


def upgrade() -> None:
    op.execute("set local role outcomes_owner")
    op.execute(
        """
        create table meta.erasure_sweeps (
            sweep_id bigint generated always as identity primary key,
            step text not null check (step in ('delivery', 'build')),
            reference text not null,
            participants integer not null check (participants > 0),
            store text not null,
            removed bigint not null check (removed >= 0),
            unit text not null check (unit in ('rows', 'files')),
            swept_at timestamptz not null default now(),
            swept_by text not null default session_user
        )
        """
    )
    op.execute(
        "comment on table meta.erasure_sweeps is "
        "'Every erasure carried out: by which delivery or build, how many participants, which store "
        "was cleaned and how many rows or files it lost; never whom.'"
    )
    op.execute(REFUSE.format(allowed=RECOUNT))
    # the audit record is appended to, never changed, by the loader
    op.execute("revoke update, delete on meta.erasure_sweeps from outcomes_loader")
    # messages written before this release could name a participant: withheld, as they are now
    for table, column in MESSAGES:
        op.execute(
            f"update {table} set {column} = regexp_replace({column}, '{PARTICIPANT}', '(withheld)', 'g') "
            f"where {column} ~ '{PARTICIPANT}'"
        )
    # a header name that was a data row's value (the header line lost)
    op.execute(
        f"update quarantine.delivery_problems set column_name = null where column_name ~ '{PARTICIPANT}'"
    )
    op.execute("reset role")


def downgrade() -> None:
    op.execute("set local role outcomes_owner")
    op.execute(REFUSE.format(allowed=ERASURE_ONLY))
    op.execute("drop table meta.erasure_sweeps")
    op.execute("reset role")
