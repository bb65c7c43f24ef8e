"""The benefit months are incremental by participant; incremental models keep fingerprints beside.

``intermediate.int_benefit_days_by_month`` and ``intermediate.int_benefit_states_on_checkpoints``
now carry ``participant_fingerprint`` (``dbt_project/macros/benefit_months.sql``), and an
incremental model refuses a stored table of another shape (``on_schema_change='fail'``): this
migration drops both, and the next build makes them anew from the spells. Every table dropped
here only ever held derived rows.

Each incremental model now keeps its keys' fingerprints in a table beside it
(``<model>__fingerprints``, ``dbt_project/macros/incremental_by_key.sql``), and the questionnaire
models' code changed with it, which changes every form's fingerprint: the first build would
recompute every form through the incremental path (the rebuild after the upgrade took 495 s at
100,000 participants that way; bench/README.md). So this migration drops those two models too,
and the next build is their first. A downgrade drops the fingerprint tables: a build of the
older project does not keep them, and fingerprints left from before it would be stale after an
upgrade again.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06
"""

from __future__ import annotations

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

BENEFIT_MONTHS = ("intermediate.int_benefit_days_by_month", "intermediate.int_benefit_states_on_checkpoints")
#: Every model incremental by key.
INCREMENTAL = (*BENEFIT_MONTHS, "staging.stg_registry__prom_items", "intermediate.int_prom_forms_scored")


def _drop(*tables: str) -> None:
    op.execute("set local role outcomes_owner")
    for table in tables:
        op.execute(f"drop table if exists {table} cascade")
    op.execute("reset role")


def upgrade() -> None:
    _drop(*INCREMENTAL, *(f"{model}__fingerprints" for model in INCREMENTAL))


def downgrade() -> None:
    # The older project builds the benefit months as plain tables, without the fingerprint.
    _drop(*BENEFIT_MONTHS, *(f"{model}__fingerprints" for model in INCREMENTAL))
