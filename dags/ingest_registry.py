"""
### Ingest `registry`

Pain-registry questionnaires, item level (mode `incremental`). Rows of people not (yet) enrolled are
held, pseudonymised, in `pending` until they are enrolled or the retention window ends.

Waits (deferrable, in the triggerer) for a complete delivery under
`$OUTCOMES_LANDING/registry/<delivery_id>/`, applies every delivery not yet applied in
`delivery_id` order (contract check, fnr pseudonymised at the door, one transaction each), and
emits the Asset `raw_registry` when raw records changed. Waiting past the deadline (4 h)
fails the run and alerts: the source is late.

Runbook: `outcomes deliveries` lists every delivery with its reconciliation;
`outcomes deliveries show registry/<id>` says what was wrong, line by line;
`outcomes deliveries release registry/<id>` loads the valid rows of an inspected delivery.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import DAG

from outcomes.ingest.dag import build_ingest_dag, schedule_for

dag: DAG = build_ingest_dag(
    "registry",
    # Every day at 02:00 UTC (override with OUTCOMES_SCHEDULE_REGISTRY).
    schedule=schedule_for("registry", "0 2 * * *"),
    deadline=timedelta(hours=4),
    doc_md=__doc__,
)
