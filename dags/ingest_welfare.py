"""
### Ingest `welfare`

Welfare-benefit spells (mode `incremental`, weekly). Corrections are new versions of a spell; the
latest `registered_at` wins in dbt staging.

Waits (deferrable, in the triggerer) for a complete delivery under
`$OUTCOMES_LANDING/welfare/<delivery_id>/`, applies every delivery not yet applied in
`delivery_id` order (contract check, fnr pseudonymised at the door, one transaction each), and
emits the Asset `raw_welfare` when raw records changed. Waiting past the deadline (24 h)
fails the run and alerts: the source is late.

Runbook: `outcomes deliveries` lists every delivery with its reconciliation;
`outcomes deliveries show welfare/<id>` says what was wrong, line by line;
`outcomes deliveries release welfare/<id>` loads the valid rows of an inspected delivery.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import DAG

from outcomes.ingest.dag import build_ingest_dag, schedule_for

dag: DAG = build_ingest_dag(
    "welfare",
    # Every Monday at 03:00 UTC (override with OUTCOMES_SCHEDULE_WELFARE).
    schedule=schedule_for("welfare", "0 3 * * 1"),
    deadline=timedelta(hours=24),
    doc_md=__doc__,
)
