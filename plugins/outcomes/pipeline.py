"""The nightly job in-process: every DAG of the pipeline, in order, with ``dag.test()``.

Used by ``outcomes run`` and ``outcomes demo``. Exit codes (DESIGN.md): 0 success, 1 failure,
2 usage, 3 the quality gate blocked the publish (the published marts are unchanged).
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from outcomes.settings import Settings

if TYPE_CHECKING:
    from rich.console import Console

    from outcomes.orchestration import DagRunOutcome

#: (DAG id, run conf) in the order a night runs them. The ingest DAGs do not wait for deliveries:
#: they apply whatever is complete in the landing zone now.
PIPELINE: tuple[tuple[str, dict[str, Any]], ...] = (
    ("warehouse_maintenance", {}),
    ("ingest_trial", {"wait": False}),
    ("ingest_registry", {"wait": False}),
    ("ingest_welfare", {"wait": False}),
    ("ingest_employment", {"wait": False}),
    ("build_outcomes", {}),
)

EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_GATE_BLOCKED = 0, 1, 2, 3


@dataclass
class PipelineResult:
    runs: list[DagRunOutcome] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def exit_code(self) -> int:
        if all(run.succeeded for run in self.runs):
            return EXIT_OK
        if self.gate_blocked:
            return EXIT_GATE_BLOCKED
        return EXIT_FAILURE

    @property
    def gate_blocked(self) -> bool:
        """The build failed at the quality gate (and nowhere else)."""
        return any(
            run.dag_id == "build_outcomes" and run.task_states.get("quality_gate") == "failed"
            for run in self.runs
        )


def run_pipeline(settings: Settings, console: Console, as_of: dt.date | None = None) -> PipelineResult:
    """Bootstrap, then run every DAG of the pipeline in order; stop at the first failure.

    ``as_of`` is for the build stage (the ingest DAGs apply every complete delivery).
    """
    from outcomes import orchestration

    started = time.monotonic()
    warehouse = orchestration.prepare(settings)
    console.print(f"warehouse {warehouse.display_url()} ({'embedded' if warehouse.embedded else 'external'})")
    console.print(f"landing   {settings.landing}")
    result = PipelineResult()
    for dag_id, conf in PIPELINE:
        if dag_id == "build_outcomes" and as_of is not None:
            conf = {**conf, "as_of": as_of.isoformat()}
        outcome = orchestration.run_dag(settings, dag_id, conf=conf)
        result.runs.append(outcome)
        colour = "green" if outcome.succeeded else "red"
        tasks = ", ".join(f"{t} {s}" for t, s in outcome.task_states.items())
        console.print(f"  {dag_id:<22} [{colour}]{outcome.state}[/]  ({tasks})")
        if not outcome.succeeded:
            break
    result.seconds = time.monotonic() - started
    _print_ledger(settings, console)
    if any(run.dag_id == "build_outcomes" for run in result.runs):
        _print_gate(warehouse, console, failures_only=not result.gate_blocked)
    return result


def _print_gate(warehouse: Any, console: Console, *, failures_only: bool) -> None:
    from outcomes.quality.results import headline, last_gate_run

    run = last_gate_run(warehouse)
    if run is None:
        return
    console.print(f"  {headline(run)}")
    for item in run.results:
        if not item["success"]:
            colour = "red" if item["severity"] == "error" else "yellow"
            console.print(f"    [{colour}]{item['severity']}[/] {item['expectation']}: {item['observed']}")
    if failures_only and not run.failed_errors and not run.failed_warnings:
        return
    console.print("  every result: `outcomes status`; Data Docs: the Airflow UI, Browse > Quality gate")


def _print_ledger(settings: Settings, console: Console) -> None:
    from outcomes.deliveries import ledger_summary

    for line in ledger_summary(settings):
        console.print(f"  {line}")
