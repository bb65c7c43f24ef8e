"""Task bodies of ``build_outcomes``'s write-audit-publish steps (the DAG only wires them).

Every value returned here becomes an XCom: build ids, dates, counts and the gate's summary of
failed expectations (observed values are counts, rates and table names: never row data).
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from outcomes.warehouse.connection import Warehouse

log = logging.getLogger(__name__)


def start_build() -> str:
    """A new build id, and an empty candidate schema for the build to write into."""
    from outcomes.quality.gate import new_build_id
    from outcomes.settings import load_settings
    from outcomes.warehouse.connection import resolve
    from outcomes.warehouse.publish import CANDIDATE, prepare_candidate

    build_id = new_build_id()
    prepare_candidate(resolve(load_settings()))
    log.info("build %s writes into schema %s", build_id, CANDIDATE)
    return build_id


def quality_gate(
    build_id: str,
    as_of: str,
    drift_reason: str | None,
    dag_run_id: str | None,
    warehouse: Warehouse | None = None,
) -> dict[str, Any]:
    """Run the gate on the candidate and keep its results; fail the task when it blocks.

    A blocked gate raises ``AirflowFailException`` (no retry: the data, not the task, is wrong)
    with one line per failed expectation; the DAG's failure notifier sends it as the alert.
    Warnings publish, and alert here.
    """
    from airflow.sdk.exceptions import AirflowFailException

    from outcomes.operations import alerts
    from outcomes.quality.gate import record, run_gate
    from outcomes.settings import load_settings
    from outcomes.warehouse.connection import resolve

    settings = load_settings()
    warehouse = warehouse or resolve(settings)
    report = run_gate(
        settings,
        warehouse,
        build_id=build_id,
        as_of=dt.date.fromisoformat(as_of),
        drift_reason=(drift_reason or "").strip() or None,
    )
    record(warehouse, report, dag_run_id=dag_run_id)
    log.info("%s", report.message())
    if report.status == "blocked":
        raise AirflowFailException(report.message())
    if report.status == "warned":
        alerts.send(
            alerts.Alert(
                "gate_warnings",
                f"build {build_id} published with {len(report.failed('warn'))} gate warning(s): "
                + "; ".join(f"{o.name} ({o.observed})" for o in report.failed("warn")),
                {"build_id": build_id, "as_of": as_of, "hint": "outcomes status"},
            )
        )
    return report.summary()


def publish_build(
    build_id: str,
    as_of: str,
    gate: dict[str, Any],
    dag_run_id: str | None,
    warehouse: Warehouse | None = None,
) -> dict[str, Any]:
    """Swap the audited candidate in as ``marts`` (one transaction) and record the publish."""
    from outcomes.settings import load_settings
    from outcomes.warehouse.connection import resolve
    from outcomes.warehouse.publish import publish

    published = publish(
        warehouse or resolve(load_settings()),
        build_id=build_id,
        as_of=dt.date.fromisoformat(as_of),
        gate_result=gate["status"],
        gate_summary=gate,
        dag_run_id=dag_run_id,
    )
    return {
        "build_id": published.build_id,
        "as_of": published.as_of_date.isoformat(),
        "tables": published.tables,
        "deliveries": published.deliveries,
        "seconds": round(published.seconds, 3),
    }
