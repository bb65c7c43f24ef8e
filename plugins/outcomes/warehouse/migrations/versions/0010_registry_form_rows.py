"""``raw.registry_form_rows``: what each questionnaire form has in raw, kept by triggers.

The build's incremental staging of the pain registry (``stg_registry__prom_items``) recomputes
only the forms whose fingerprint changed: a hash of the count of the form's raw rows visible as of
the build and of the sum of a hash of each row's identity (delivery and line). It computed those
fingerprints from every raw row, every night: 15 M rows at 100,000 participants, the longest
statement of the build (bench/README.md, "The registry's form summary").

This table holds the same two numbers per form, delivery, ``updated_at`` and ``answered_on``
(everything a build's visibility depends on) and person (whose participant's form it is, for the
scored forms' fingerprints), about 40 times fewer rows than raw. Statement-level
triggers with transition tables keep it, in the same transaction as the change of raw: every
insert (the loader's ``COPY``, a release from pending), delete (an erasure) and update adds and
subtracts the rows it changed, and a truncate empties it. No writer of raw has to remember it, so
it cannot fall behind. A group whose rows are all gone is deleted, so an erased person leaves
nothing here (their pseudonym goes with their last raw row). The trigger functions run as the owner
(``security definer``); the loader has no right on the table (revoked from the default privileges
of ``raw``) and no one may call the functions directly.

Built from raw on upgrade; it gives the fingerprints the build stored before, bit for bit. The
questionnaire models' code changed in the same release, so the first build after the upgrade
recomputes every form once (docs/operations.md, "The warehouse").

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04
"""

from __future__ import annotations

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

#: A form's rows, grouped by what decides whether a build may see them, and whose they are.
GROUP = "form_id, delivery_id, updated_at, answered_on, person_pseudonym"
#: The same hash of a row's identity as the build's fingerprint (macros/registry_forms.sql).
IDENTITY = "hashtextextended(delivery_id || '/' || source_line::text, 0)"


def _add(rows: str) -> str:
    return f"""
        insert into raw.registry_form_rows as summary ({GROUP}, row_count, identity_hash_sum)
        select {GROUP}, count(*), sum({IDENTITY}) from {rows} group by {GROUP}
        on conflict ({GROUP}) do update set
            row_count = summary.row_count + excluded.row_count,
            identity_hash_sum = summary.identity_hash_sum + excluded.identity_hash_sum;
    """


def _subtract(rows: str) -> str:
    keys = " and ".join(f"summary.{c} = gone.{c}" for c in GROUP.split(", "))
    return f"""
        update raw.registry_form_rows as summary set
            row_count = summary.row_count - gone.row_count,
            identity_hash_sum = summary.identity_hash_sum - gone.identity_hash_sum
        from (
            select {GROUP}, count(*) as row_count, sum({IDENTITY}) as identity_hash_sum
            from {rows} group by {GROUP}
        ) as gone
        where {keys};
        delete from raw.registry_form_rows as summary
        using (select distinct {GROUP} from {rows}) as gone
        where {keys} and summary.row_count = 0;
    """


def upgrade() -> None:
    op.execute("set local role outcomes_owner")
    op.execute(
        f"""
        create table raw.registry_form_rows (
            form_id text not null,
            delivery_id text not null,
            updated_at timestamptz not null,
            answered_on date not null,
            person_pseudonym text not null,
            row_count bigint not null check (row_count >= 0),
            identity_hash_sum numeric not null,
            primary key ({GROUP})
        )
        """
    )
    op.execute(
        "comment on table raw.registry_form_rows is "
        "'Per questionnaire form, delivery, updated_at, answered_on and person: the count of its "
        "rows in raw.registry_proms and the sum of a hash of their identity (delivery, line), for "
        "the build''s incremental models. Kept by triggers on raw.registry_proms.'"
    )
    for name, body, event, transition in (
        ("added", _add("added"), "insert", "new table as added"),
        ("removed", _subtract("removed"), "delete", "old table as removed"),
        (
            "changed",
            _subtract("removed") + _add("added"),
            "update",
            "old table as removed new table as added",
        ),
    ):
        op.execute(
            f"""
            create function raw.registry_form_rows_{name}() returns trigger
            language plpgsql security definer set search_path = pg_catalog, pg_temp as $$
            begin
                {body}
                return null;
            end
            $$
            """
        )
        op.execute(
            f"""
            create trigger registry_form_rows_{name} after {event} on raw.registry_proms
            referencing {transition} for each statement
            execute function raw.registry_form_rows_{name}()
            """
        )
    op.execute(
        """
        create function raw.registry_form_rows_truncated() returns trigger
        language plpgsql security definer set search_path = pg_catalog, pg_temp as $$
        begin
            truncate raw.registry_form_rows;
            return null;
        end
        $$
        """
    )
    op.execute(
        "create trigger registry_form_rows_truncated after truncate on raw.registry_proms "
        "for each statement execute function raw.registry_form_rows_truncated()"
    )
    # only the triggers write it: the default privileges of raw gave the loader every right
    op.execute("revoke all on raw.registry_form_rows from outcomes_loader")
    for name in ("added", "removed", "changed", "truncated"):
        op.execute(f"revoke execute on function raw.registry_form_rows_{name}() from public")
    op.execute(_add("raw.registry_proms"))
    op.execute("analyze raw.registry_form_rows")
    op.execute("reset role")


def downgrade() -> None:
    op.execute("set local role outcomes_owner")
    for name in ("added", "removed", "changed", "truncated"):
        op.execute(f"drop trigger registry_form_rows_{name} on raw.registry_proms")
        op.execute(f"drop function raw.registry_form_rows_{name}()")
    op.execute("drop table raw.registry_form_rows")
    op.execute("reset role")
