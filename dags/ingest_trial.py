"""
### Ingest `trial`

Enrolment and randomisation from the trial's eCRF (mode `full`: each delivery is the whole
enrolment). Applying it also moves held questionnaire and benefit rows of newly enrolled people from
`pending` into raw, and erases every trace of a participant whose row says `erase = true` (the
ledger records that an erasure happened, not whom).

Waits (deferrable, in the triggerer) for a complete delivery under
`$OUTCOMES_LANDING/trial/<delivery_id>/`, applies every delivery not yet applied in
`delivery_id` order (contract check, fnr pseudonymised at the door, one transaction each), and
emits the Asset `raw_trial` when raw records changed. Waiting past the deadline (6 h)
fails the run and alerts: the source is late.

Runbook: `outcomes deliveries` lists every delivery with its reconciliation;
`outcomes deliveries show trial/<id>` says what was wrong, line by line;
`outcomes deliveries release trial/<id>` loads the valid rows of an inspected delivery.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import DAG

from outcomes.ingest.dag import build_ingest_dag, schedule_for

dag: DAG = build_ingest_dag(
    "trial",
    # Every day at 01:00 UTC (override with OUTCOMES_SCHEDULE_TRIAL).
    schedule=schedule_for("trial", "0 1 * * *"),
    deadline=timedelta(hours=6),
    doc_md=__doc__,
)
