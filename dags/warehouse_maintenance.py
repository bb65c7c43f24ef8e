"""
### Warehouse maintenance

Keeps the warehouse's structure current before the night's first ingest: applies the versioned
migrations (schemas `raw`, `quarantine`, `meta`, `marts`, `history`; roles `outcomes_owner`,
`outcomes_loader`, `outcomes_analyst` and their grants). Idempotent: on an up-to-date warehouse
it changes nothing.

Runbook: a failure here blocks nothing by itself, but the ingest DAGs will fail on a warehouse
that is behind the code. Read the task log; `outcomes status` shows the applied revision.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow.sdk import dag, task


@dag(
    dag_id="warehouse_maintenance",
    # Every day at 00:30 UTC, before the first ingest (trial, 01:00 UTC).
    schedule="30 0 * * *",
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    tags=["outcomes", "maintenance"],
    default_args={"owner": "outcomes", "retries": 2, "retry_delay": timedelta(minutes=5)},
    doc_md=__doc__,
)
def warehouse_maintenance() -> None:
    @task
    def migrate_warehouse() -> str:
        """Apply the warehouse migrations; returns the revision now applied."""
        from outcomes.warehouse.tasks import migrate_warehouse as run

        return run()

    migrate_warehouse()


warehouse_maintenance()
