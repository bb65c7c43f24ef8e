"""
### Warehouse maintenance

Before the night's first ingest:

1. applies the versioned warehouse migrations (schemas, tables, roles and grants); idempotent;
2. purges rows held in `pending` (people not enrolled) past the retention window
   (`OUTCOMES_PENDING_RETENTION_DAYS`, default 120), counting them per delivery in
   `meta.deliveries.rows_purged`.

Runbook: a failure here blocks nothing by itself, but the ingest DAGs will fail on a warehouse
that is behind the code. Read the task log; `outcomes status` shows the applied revision.
"""

from __future__ import annotations

from datetime import UTC, datetime

from airflow.sdk import dag, task

from outcomes.ingest.dag import default_args


@dag(
    dag_id="warehouse_maintenance",
    # Every day at 00:30 UTC, before the first ingest (trial, 01:00 UTC).
    schedule="30 0 * * *",
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    tags=["outcomes", "maintenance"],
    default_args=default_args(),
    doc_md=__doc__,
)
def warehouse_maintenance() -> None:
    @task
    def migrate_warehouse() -> str:
        """Apply the warehouse migrations; returns the revision now applied."""
        from outcomes.warehouse.tasks import migrate_warehouse as run

        return run()

    @task
    def purge_pending() -> int:
        """Purge pending rows past the retention window; returns how many."""
        from outcomes.ingest.tasks import purge_pending as run

        return run()

    migrate_warehouse() >> purge_pending()


warehouse_maintenance()
