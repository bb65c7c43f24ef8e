"""dbt's staging and intermediate layers become tables: the views of earlier versions go.

Until now those two layers were views. Every dbt test and every model downstream re-ran the whole
stack of window functions beneath them, and the build at 10,000 participants did not finish in an
hour; they are now tables with planner statistics (``dbt_project.yml``). This migration drops the
old views, which dbt rebuilds as tables at the next build: they only ever held derived rows.

Dropping them here, once, rather than letting dbt replace each view by a table, removes the cause
of the deadlock that kept dbt on one thread: replacing two views at once, each dropping its old
version with ``cascade``, deadlocked on the rewrite rules of a view that depended on both. With no
view left in the project, dbt builds on several threads (``OUTCOMES_DBT_THREADS``).

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

LAYERS = ("staging", "intermediate")


def upgrade() -> None:
    op.execute("set local role outcomes_owner")
    op.execute(
        f"""
        do $$
        declare
            view record;
        begin
            for view in
                select schemaname, viewname from pg_views
                where schemaname in ({", ".join(f"'{layer}'" for layer in LAYERS)})
            loop
                execute format('drop view if exists %I.%I cascade', view.schemaname, view.viewname);
            end loop;
        end
        $$
        """
    )
    op.execute("reset role")


def downgrade() -> None:
    # Nothing to restore: the views were derived, and an older dbt project rebuilds them.
    pass
