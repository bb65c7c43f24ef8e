"""Ingestion: raw record versions, the pending area, quarantine and the delivery ledger.

- ``raw.<source>_<entity>``: every row version of every applied delivery, typed, with the fnr
  replaced by ``person_pseudonym`` (HMAC-SHA-256), keyed by ``(delivery_id, source_line)``.
  Append-only: latest-version resolution happens in dbt staging.
- ``pending.<source>_<entity>``: rows of the fnr-keyed sources whose person is not (yet) enrolled,
  held until their person is enrolled (then moved to raw) or the retention window ends (purged).
  A schema of its own so that only the loader can ever see it.
- ``quarantine.rows``: every rejected row (or every row of a rejected delivery), pseudonymised,
  as JSON with its violations; ``quarantine.delivery_problems``: whole-delivery problems.
- ``meta.deliveries``: one row per delivery seen, with its reconciliation
  ``rows_received = rows_loaded + rows_pending + rows_purged + rows_quarantined``, enforced by a
  check constraint; ``meta.delivery_events``: the audit trail (applied, released, moved, purged).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

OWNER, LOADER = "outcomes_owner", "outcomes_loader"
PROVENANCE = """
    delivery_id text not null,
    source_line integer not null,
"""
TABLES = {
    "trial_enrolment": """
        participant_id text not null,
        person_pseudonym text not null,
        study text not null,
        site text not null,
        randomised_on date not null,
        arm text not null,
        sex text not null,
        birth_year integer not null,
        intervention_ended_on date,
        followup_ended_on date,
        followup_end_reason text,
        erase boolean not null
    """,
    "registry_proms": """
        form_id text not null,
        person_pseudonym text not null,
        answered_on date not null,
        item text not null,
        value integer,
        updated_at timestamptz not null,
        is_deleted boolean not null
    """,
    "welfare_benefit_spells": """
        spell_id text not null,
        person_pseudonym text not null,
        benefit text not null,
        grade_pct integer not null,
        from_date date not null,
        to_date date,
        registered_at timestamptz not null,
        status text not null
    """,
    "employment_checkpoints": """
        participant_id text not null,
        checkpoint_month integer not null,
        assessed_on date not null,
        status text not null,
        hours_per_week numeric,
        recorded_at timestamptz not null
    """,
    "employment_jobs": """
        job_id text not null,
        participant_id text not null,
        start_date date not null,
        end_date date,
        job_type text not null,
        hours_per_week numeric not null,
        recorded_at timestamptz not null,
        is_deleted boolean not null
    """,
}
PENDING = ("registry_proms", "welfare_benefit_spells")
INDEXES = {
    "trial_enrolment": ["person_pseudonym", "participant_id"],
    "registry_proms": ["person_pseudonym", "form_id, item"],
    "welfare_benefit_spells": ["person_pseudonym", "spell_id"],
    "employment_checkpoints": ["participant_id, checkpoint_month"],
    "employment_jobs": ["participant_id", "job_id"],
}


def upgrade() -> None:
    op.execute("set local role outcomes_owner")
    op.execute(f"create schema if not exists pending authorization {OWNER}")
    op.execute(f"grant usage on schema pending to {LOADER}")
    op.execute(
        f"alter default privileges for role {OWNER} in schema pending "
        f"grant select, insert, update, delete on tables to {LOADER}"
    )

    op.execute(
        """
        create table meta.deliveries (
            source text not null,
            delivery_id text not null,
            content_sha256 text,
            extracted_at timestamptz,
            status text not null
                check (status in ('loaded', 'quarantined', 'duplicate', 'released')),
            rows_received bigint not null default 0,
            rows_loaded bigint not null default 0,
            rows_pending bigint not null default 0,
            rows_purged bigint not null default 0,
            rows_quarantined bigint not null default 0,
            message text,
            duplicate_of text,
            applied_at timestamptz not null default now(),
            applied_by text not null default current_user,
            primary key (source, delivery_id),
            constraint deliveries_reconcile check (
                status = 'duplicate'
                or rows_received = rows_loaded + rows_pending + rows_purged + rows_quarantined
            ),
            constraint deliveries_counts_not_negative check (
                least(rows_received, rows_loaded, rows_pending, rows_purged, rows_quarantined) >= 0
            )
        )
        """
    )
    op.execute("create index deliveries_content on meta.deliveries (source, content_sha256)")
    op.execute("comment on table meta.deliveries is 'One row per delivery seen, with its reconciliation.'")
    op.execute(
        """
        create table meta.delivery_events (
            event_id bigint generated always as identity primary key,
            source text not null,
            delivery_id text not null,
            event text not null,
            rows bigint,
            detail text,
            happened_at timestamptz not null default now(),
            happened_by text not null default current_user
        )
        """
    )
    op.execute(
        "comment on table meta.delivery_events is "
        "'Audit trail: applied, quarantined, duplicate, released, moved from pending, purged.'"
    )

    op.execute(
        """
        create table quarantine.delivery_problems (
            source text not null,
            delivery_id text not null,
            file text,
            line integer,
            column_name text,
            rule text not null,
            message text not null
        )
        """
    )
    op.execute(
        "create index delivery_problems_delivery on quarantine.delivery_problems (source, delivery_id)"
    )
    op.execute(
        """
        create table quarantine.rows (
            source text not null,
            delivery_id text not null,
            file text not null,
            source_line integer not null,
            record jsonb not null,
            violations jsonb not null,
            released boolean not null default false,
            primary key (source, delivery_id, file, source_line)
        )
        """
    )
    op.execute(
        "comment on table quarantine.rows is "
        "'Rejected rows, pseudonymised; violations = [] for a valid row of a rejected delivery.'"
    )

    for name, columns in TABLES.items():
        source = name.split("_", 1)[0]
        op.execute(
            f"create table raw.{name} ({PROVENANCE} {columns}, primary key (delivery_id, source_line))"
        )
        op.execute(f"comment on table raw.{name} is 'Every row version of source {source}, pseudonymised.'")
        for i, cols in enumerate(INDEXES[name]):
            op.execute(f"create index {name}_{i} on raw.{name} ({cols})")
    for name in PENDING:
        op.execute(
            f"create table pending.{name} ({PROVENANCE} {TABLES[name]}, "
            "held_since timestamptz not null, primary key (delivery_id, source_line))"
        )
        op.execute(f"create index {name}_person on pending.{name} (person_pseudonym)")
        op.execute(f"create index {name}_held on pending.{name} (held_since)")
    op.execute("reset role")  # alembic_version belongs to the migrating user


def downgrade() -> None:
    op.execute("set local role outcomes_owner")
    for name in PENDING:
        op.execute(f"drop table pending.{name}")
    for name in TABLES:
        op.execute(f"drop table raw.{name}")
    op.execute("drop table quarantine.rows")
    op.execute("drop table quarantine.delivery_problems")
    op.execute("drop table meta.delivery_events")
    op.execute("drop table meta.deliveries")
    op.execute(
        f"alter default privileges for role {OWNER} in schema pending revoke all on tables from {LOADER}"
    )
    op.execute("drop schema pending restrict")
    op.execute("reset role")
