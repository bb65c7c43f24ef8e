"""``staging.stg_registry__prom_items`` becomes an incremental model: the old table goes.

The model now rebuilds only the questionnaire forms whose visible raw rows (or whose person's
participant) changed since the last build, and keeps a per-form fingerprint of them in a new
column, ``form_fingerprint``, with a unique index on its grain
(``models/staging/registry/stg_registry__prom_items.sql``). A table built by an earlier version
has neither, and the incremental model refuses a table of another shape
(``on_schema_change='fail'``) and creates its indexes only with the table: this migration drops
it, and the next build makes it anew from raw. It only ever held derived rows.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("set local role outcomes_owner")
    op.execute("drop table if exists staging.stg_registry__prom_items cascade")
    op.execute("reset role")


def downgrade() -> None:
    # Nothing to restore: the table was derived, and an older dbt project rebuilds it.
    pass
