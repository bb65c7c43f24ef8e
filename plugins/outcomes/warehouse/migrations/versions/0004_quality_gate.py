"""The quality gate's ledger: every gate run and its results, and every publish.

- ``meta.gate_runs``: one row per gate run of a candidate build (passed, warned or blocked);
- ``meta.gate_results``: one row per expectation per gate run (trends over nights);
- ``meta.published_builds``: one row per publish (docs/analysts-guide.md), with the deliveries it included in
  ``meta.published_build_deliveries``.

Loader and analyst read these (meta's default privileges); the gate writes them as the owner.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("set local role outcomes_owner")
    op.execute(
        """
        create table meta.gate_runs (
            build_id text primary key,
            dag_run_id text,
            as_of_date date not null,
            status text not null check (status in ('passed', 'warned', 'blocked')),
            expectations integer not null,
            failed_errors integer not null,
            failed_warnings integer not null,
            drift_reason text,
            seconds numeric(10, 3) not null,
            checked_at timestamptz not null default now()
        )
        """
    )
    op.execute(
        "comment on table meta.gate_runs is "
        "'One row per quality-gate run of a candidate build: passed, warned (published, alerted) or blocked.'"
    )
    op.execute(
        """
        create table meta.gate_results (
            build_id text not null references meta.gate_runs (build_id) on delete cascade,
            dataset text not null,
            expectation text not null,
            expectation_type text not null,
            severity text not null check (severity in ('error', 'warn')),
            success boolean not null,
            observed text,
            description text,
            primary key (build_id, expectation)
        )
        """
    )
    op.execute("create index gate_results_expectation on meta.gate_results (expectation, build_id)")
    op.execute(
        "comment on table meta.gate_results is "
        "'One row per expectation per gate run: severity, outcome, observed value (never a row of data).'"
    )
    op.execute(
        """
        create table meta.published_builds (
            build_id text primary key references meta.gate_runs (build_id),
            dag_run_id text,
            as_of_date date not null,
            deliveries jsonb not null,
            gate_result text not null check (gate_result in ('passed', 'warned')),
            gate_summary jsonb not null,
            published_at timestamptz not null default now()
        )
        """
    )
    op.execute(
        "comment on table meta.published_builds is "
        "'One row per publish of the marts: build, as-of date, deliveries per source, gate result.'"
    )
    op.execute(
        """
        create table meta.published_build_deliveries (
            build_id text not null references meta.published_builds (build_id) on delete cascade,
            source text not null,
            delivery_id text not null,
            primary key (build_id, source, delivery_id)
        )
        """
    )
    op.execute(
        "comment on table meta.published_build_deliveries is "
        "'Exactly which deliveries each published build included (extracted by its as-of date).'"
    )
    op.execute("reset role")


def downgrade() -> None:
    op.execute("set local role outcomes_owner")
    op.execute("drop table meta.published_build_deliveries")
    op.execute("drop table meta.published_builds")
    op.execute("drop table meta.gate_results")
    op.execute("drop table meta.gate_runs")
    op.execute("reset role")
