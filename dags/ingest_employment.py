"""
### Ingest `employment`

Employment checkpoints and jobs from the trial's follow-up (mode `incremental`). Rows must name an
enrolled participant.

Waits (deferrable, in the triggerer) for a complete delivery under
`$OUTCOMES_LANDING/employment/<delivery_id>/`, applies every delivery not yet applied in
`delivery_id` order (contract check, fnr pseudonymised at the door, one transaction each), and
emits the Asset `raw_employment` when raw records changed. Waiting past the deadline (4 h)
fails the run and alerts: the source is late.

Runbook: `outcomes deliveries` lists every delivery with its reconciliation;
`outcomes deliveries show employment/<id>` says what was wrong, line by line;
`outcomes deliveries release employment/<id>` loads the valid rows of an inspected delivery.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import DAG

from outcomes.ingest.dag import build_ingest_dag, schedule_for

dag: DAG = build_ingest_dag(
    "employment",
    # Every day at 04:00 UTC (override with OUTCOMES_SCHEDULE_EMPLOYMENT).
    schedule=schedule_for("employment", "0 4 * * *"),
    deadline=timedelta(hours=4),
    doc_md=__doc__,
)
