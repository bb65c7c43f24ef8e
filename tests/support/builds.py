"""Build, gate and publish a warehouse in-process, as the build DAG's tasks do, for tests."""

from __future__ import annotations

import datetime as dt

from outcomes.quality.gate import GateReport, new_build_id, record, run_gate
from outcomes.settings import Settings
from outcomes.transform.dbt import run_dbt
from outcomes.warehouse.connection import Warehouse
from outcomes.warehouse.publish import prepare_candidate, publish


def build_gate_publish(
    settings: Settings,
    warehouse: Warehouse,
    as_of: dt.date,
    *,
    drift_reason: str | None = None,
    snapshot: bool = True,
) -> GateReport:
    """dbt build into the candidate, the whole gate, and the publish; fails the test if blocked."""
    prepare_candidate(warehouse)
    built = run_dbt(settings, warehouse, ["build"], as_of=as_of)
    assert built.success, built.failures
    report = run_gate(settings, warehouse, build_id=new_build_id(), as_of=as_of, drift_reason=drift_reason)
    record(warehouse, report)
    assert report.status != "blocked", report.message()
    publish(
        warehouse,
        build_id=report.build_id,
        as_of=as_of,
        gate_result=report.status,
        gate_summary=report.summary(),
    )
    if snapshot:  # as the DAG does after a publish: history records the published marts
        assert run_dbt(settings, warehouse, ["snapshot"], marts_schema="marts").success
    return report
