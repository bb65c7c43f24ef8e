"""``staging.stg_registry__prom_items`` keeps every staged form, by the person's pseudonym.

Staging is now one model per source with no joins: the participant filter moved into the
intermediate layer (``dbt_project/macros/cohort.sql``), so the registry's staging model carries
``person_pseudonym`` where it carried ``participant_id``. The incremental model refuses a stored
table of another shape (``on_schema_change='fail'``): this migration drops it, and the next build
makes it anew from raw. It only ever held derived rows.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03
"""

from __future__ import annotations

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("set local role outcomes_owner")
    op.execute("drop table if exists staging.stg_registry__prom_items cascade")
    op.execute("reset role")


def downgrade() -> None:
    # Nothing to restore: the table was derived, and an older dbt project rebuilds it.
    pass
