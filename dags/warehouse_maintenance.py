"""
### Warehouse maintenance

Before the night's first ingest, `migrate_warehouse` first, then the other three side by side:

1. `migrate_warehouse` applies the versioned warehouse migrations (schemas, tables, roles and
   grants); idempotent;
2. `purge_pending` purges rows held in `pending` (people not enrolled) past the retention window
   (`OUTCOMES_PENDING_RETENTION_DAYS`, default 120), counting them per delivery in
   `meta.deliveries.rows_purged`;
3. `check_sources` sends one `late_delivery` alert per source whose newest delivery (any status:
   a quarantined one still means the source delivered) is older than its freshness interval, the
   quality gate's own `OUTCOMES_FRESHNESS_<SOURCE>_DAYS`, or that never delivered while the others
   have been delivering for longer than that (a new, empty warehouse has no late source). A late source
   is news, not a failure: the task succeeds and returns each source's age and late flag;
4. `prune_state` deletes dashboard snapshots older than `OUTCOMES_DASHBOARD_RETENTION_DAYS`
   (default 400; never the one `latest.html` points to, the newest, or one of an as-of date a
   database lock records) and Great Expectations validation results older than
   `OUTCOMES_GX_RETENTION_DAYS` (default 90; never the newest gate run) with their Data Docs
   pages, then rebuilds the Data Docs index; returns counts and bytes freed.

Runbook: a failure here blocks nothing by itself, but the ingest DAGs will fail on a warehouse
that is behind the code. Read the task log; `outcomes status` shows the applied revision and which
sources are late (docs/runbook.md, "A late source").
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from airflow.sdk import dag, task

from outcomes.orchestration import MAINTENANCE_DAG_ID
from outcomes.orchestration.defaults import default_args


@dag(
    dag_id=MAINTENANCE_DAG_ID,
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

    @task
    def check_sources() -> dict[str, Any]:
        """Alert on every late source (it never fails for one); returns each source's age and flag."""
        from outcomes.warehouse.tasks import check_sources as run

        return run()

    @task
    def prune_state() -> dict[str, Any]:
        """Delete dashboard snapshots and GX results past their retention; returns counts and bytes."""
        from outcomes.warehouse.tasks import prune_state as run

        return run()

    migrate_warehouse() >> [purge_pending(), check_sources(), prune_state()]


warehouse_maintenance()
