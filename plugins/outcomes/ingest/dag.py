"""The ingest DAGs' shape, built once here so the DAG files stay wiring.

One DAG per source of the source registry (``contracts/sources.yaml``), with the schedule,
deadline and description the contract declares; ``dags/ingest_<source>.py`` is one call.

``ingest_<source>``: wait for a complete delivery (deferrable) -> apply every pending delivery in
delivery_id order -> when raw data changed, emit the source's Asset (the build DAG listens).
Nothing here touches a database at parse time: the task bodies import what they need.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.sdk import DAG, Param, dag, task

from outcomes.contracts.registry import describe_schedule, ingest_dag_id
from outcomes.contracts.registry import source as registered
from outcomes.ingest.sensors import DeliverySensor
from outcomes.orchestration.assets import raw_asset
from outcomes.orchestration.defaults import default_args
from outcomes.orchestration.notifier import LATE_DELIVERY, OutcomesNotifier
from outcomes.settings import MANUAL, setting


def schedule_for(source: str) -> str | None:
    """The source's cron schedule: ``OUTCOMES_SCHEDULE_<SOURCE>``, else the contract's
    (``manual``: None, triggered runs only)."""
    value = setting(f"OUTCOMES_SCHEDULE_{source.upper()}")
    return None if value == MANUAL else value


def deadline_for(source: str) -> timedelta:
    """How long to wait for the source: ``OUTCOMES_DEADLINE_<SOURCE>_HOURS``, else the contract's."""
    return timedelta(hours=setting(f"OUTCOMES_DEADLINE_{source.upper()}_HOURS"))


def ingest_doc(source: str) -> str:
    """The DAG's description in the Airflow UI: the contract's ``doc`` and how the DAG works."""
    spec = registered(source)
    door = "fnr pseudonymised at the door, " if spec.keyed_by == "fnr" else ""
    return f"""### Ingest `{source}`

{spec.doc}

Schedule: {describe_schedule(spec.schedule)} UTC (`OUTCOMES_SCHEDULE_{source.upper()}` overrides it).
Waits (deferrable, in the triggerer) for a complete delivery under
`$OUTCOMES_LANDING/{source}/<delivery_id>/`, applies every delivery not yet applied in
`delivery_id` order (contract check, {door}one transaction each), and emits the Asset
`raw_{source}` when raw records changed. Waiting past the deadline ({spec.deadline_hours:g} h)
fails the run and alerts: the source is late.

Runbook: `outcomes deliveries` lists every delivery with its reconciliation;
`outcomes deliveries show {source}/<id>` says what was wrong, line by line;
`outcomes deliveries release {source}/<id>` loads the valid rows of an inspected delivery.
"""


def build_ingest_dag(source: str) -> DAG:
    """The ``ingest_<source>`` DAG of a source of the registry, with its contract's schedule,
    deadline and description (each overridable by its setting)."""
    registered(source)  # refuses a source the contract does not declare
    schedule = schedule_for(source)
    deadline = deadline_for(source)
    poke_seconds = setting("OUTCOMES_POKE_SECONDS")

    @dag(
        dag_id=ingest_dag_id(source),
        schedule=schedule,
        start_date=datetime(2026, 1, 1, tzinfo=UTC),
        catchup=False,
        max_active_runs=1,
        tags=["outcomes", "ingest", source],
        default_args=default_args(),
        doc_md=ingest_doc(source),
        params={
            "wait": Param(
                True,
                type="boolean",
                description="Wait (up to the deadline) for a delivery; false: apply what is there now.",
            )
        },
    )
    def ingest() -> None:
        wait_for_delivery = DeliverySensor(
            task_id="wait_for_delivery",
            source=source,
            wait="{{ params.wait }}",
            deadline=deadline,
            poke_interval=poke_seconds,
            doc_md="Waits for a complete delivery (its `_manifest.json`) not yet applied.",
            # its timeout is the source being late: that alert, not a task failure
            on_failure_callback=OutcomesNotifier(LATE_DELIVERY, source=source),
        )

        @task
        def apply_deliveries() -> list[dict[str, Any]]:
            """Apply every complete delivery not yet applied, in delivery_id order (counts only)."""
            from outcomes.ingest.tasks import apply_deliveries as run

            return run(source)

        @task.short_circuit
        def raw_changed(outcomes: list[dict[str, Any]]) -> bool:
            """Go on (and emit the Asset) only when the source brought news: rows into raw, or rows
            held in `pending` until their person is enrolled. The latter counts too: when the
            trial's ingest runs later (or is late), it moves them into raw and emits its own Asset,
            and the build, which waits for every source's Asset, then sees them."""
            return any(
                o["rows_loaded"] or o["rows_moved_from_pending"] or o["rows_pending"] for o in outcomes
            )

        @task(outlets=[raw_asset(source)])
        def announce(outcomes: list[dict[str, Any]]) -> str:
            """Emit the source's Asset: the build DAG runs when every source has news, or nightly at 05:00."""
            loaded = sum(o["rows_loaded"] + o["rows_moved_from_pending"] for o in outcomes)
            pending = sum(o["rows_pending"] for o in outcomes)
            return f"{source}: {loaded} rows into raw, {pending} pending, from {len(outcomes)} deliveries"

        applied = apply_deliveries()
        wait_for_delivery >> applied
        raw_changed(applied) >> announce(applied)  # type: ignore[arg-type]

    return ingest()
