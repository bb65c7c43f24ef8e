"""The nightly job in-process: every DAG of the pipeline, in order, with ``dag.test()``.

Used by ``outcomes run`` and ``outcomes demo``. Exit codes (docs/operations.md): 0 success, 1 failure,
2 usage, 3 the quality gate blocked the publish (the published marts are unchanged), 4 another run
holds the warehouse (``outcomes.runners.runlock``; nothing was done).
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from outcomes.contracts.registry import ingest_dag_id, source_names
from outcomes.orchestration import BUILD_DAG_ID, GATE_TASK_ID, MAINTENANCE_DAG_ID
from outcomes.settings import Settings

if TYPE_CHECKING:
    from rich.console import Console

    from outcomes.runners.inprocess import DagRunOutcome
    from outcomes.transform.dbt import ManifestJob

#: (DAG id, run conf) in the order a night runs them: maintenance, each source's ingest in the
#: contract's order, the build. The ingest DAGs do not wait for deliveries: they apply whatever is
#: complete in the landing zone now.
PIPELINE: tuple[tuple[str, dict[str, Any]], ...] = (
    (MAINTENANCE_DAG_ID, {}),
    *((ingest_dag_id(source), {"wait": False}) for source in source_names()),
    (BUILD_DAG_ID, {}),
)

EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_GATE_BLOCKED, EXIT_BUSY = 0, 1, 2, 3, 4


@dataclass
class PipelineResult:
    runs: list[DagRunOutcome] = field(default_factory=list)
    seconds: float = 0.0
    busy: bool = False  # another run held the warehouse: nothing was done

    @property
    def exit_code(self) -> int:
        if self.busy:
            return EXIT_BUSY
        if all(run.succeeded for run in self.runs):
            return EXIT_OK
        if self.gate_blocked:
            return EXIT_GATE_BLOCKED
        return EXIT_FAILURE

    @property
    def gate_blocked(self) -> bool:
        """The build failed at the quality gate (and nowhere else)."""
        return any(
            run.dag_id == BUILD_DAG_ID and run.task_states.get(GATE_TASK_ID) == "failed" for run in self.runs
        )


def run_pipeline(settings: Settings, console: Console, as_of: dt.date | None = None) -> PipelineResult:
    """Bootstrap, then run every DAG of the pipeline in order; stop at the first failure.

    ``as_of`` is for the build stage (the ingest DAGs apply every complete delivery).
    """
    steps = [
        (dag_id, {**conf, "as_of": as_of.isoformat()} if dag_id == BUILD_DAG_ID and as_of else conf)
        for dag_id, conf in PIPELINE
    ]
    return _run(settings, console, steps, ledger=True, as_of=as_of, command="run")


def run_builds(
    settings: Settings,
    console: Console,
    as_ofs: list[dt.date],
    drift_reason: str | None = None,
    command: str = "rebuild",
) -> PipelineResult:
    """``build_outcomes`` once per as-of date, in the order given, with no ingest: raw is the
    truth, so a build as of a day gives the marts as known at its end (``outcomes rebuild`` and
    ``backfill``). Each build publishes, snapshots the history and renders its dated dashboard;
    stops at the first failure. ``drift_reason`` lets the gate's drift checks warn instead of block
    (a backfill moves the numbers by design)."""
    conf: dict[str, Any] = {"drift_reason": drift_reason} if drift_reason else {}
    steps = [(BUILD_DAG_ID, {**conf, "as_of": day.isoformat()}) for day in as_ofs]
    return _run(settings, console, steps, ledger=False, as_of=as_ofs[0] if as_ofs else None, command=command)


def backfill_plan(
    first: dt.date, last: dt.date, every: int = 1, before: dt.date | None = None, restore: bool = True
) -> list[dt.date]:
    """The as-of dates ``outcomes backfill`` builds, oldest first: every ``every`` days from
    ``first`` to ``last``; then, with ``restore``, ``before`` (the as-of date ``marts`` held) again
    when it is later than the last one, so the published marts end where they were."""
    if first > last:
        raise ValueError(f"--from {first} is after --to {last}")
    if every < 1:
        raise ValueError(f"--every {every}: at least 1 day")
    days = [first + dt.timedelta(days=n) for n in range(0, (last - first).days + 1, every)]
    if restore and before is not None and before > days[-1]:
        days.append(before)
    return days


def newest_published_as_of(settings: Settings) -> dt.date | None:
    """The as-of date of the build ``marts`` holds now (the latest publish), or None."""
    from outcomes.warehouse.connection import resolve
    from outcomes.warehouse.publish import latest_published_build

    build = latest_published_build(resolve(settings, start=True))
    return build["as_of_date"] if build else None


def _run(
    settings: Settings,
    console: Console,
    steps: list[tuple[str, dict[str, Any]]],
    *,
    ledger: bool,
    as_of: dt.date | None,
    command: str,
) -> PipelineResult:
    from outcomes.runners.runlock import RunInProgress, one_run
    from outcomes.warehouse.connection import resolve

    started = time.monotonic()
    try:
        with one_run(resolve(settings, start=True), command):
            result, warehouse = _prepared_run(settings, console, steps, as_of)
    except RunInProgress as busy:
        console.print(f"[red]{busy}[/]")
        return PipelineResult(busy=True, seconds=time.monotonic() - started)
    result.seconds = time.monotonic() - started
    if ledger:
        _print_ledger(settings, console)
    if any(run.dag_id == BUILD_DAG_ID for run in result.runs):
        _print_gate(warehouse, console, failures_only=not result.gate_blocked)
    return result


def _prepared_run(
    settings: Settings, console: Console, steps: list[tuple[str, dict[str, Any]]], as_of: dt.date | None
) -> tuple[PipelineResult, Any]:
    from outcomes.runners import inprocess

    # a changed project is parsed beside Airflow's migration and the steps before the build
    warehouse, parsing = inprocess.prepare_beside(settings, as_of)
    try:
        console.print(
            f"warehouse {warehouse.display_url()} ({'embedded' if warehouse.embedded else 'external'})"
        )
        console.print(f"landing   {settings.landing}")
        return _run_steps(settings, console, steps, parsing), warehouse
    finally:
        if parsing is not None:
            parsing.stop()


def _run_steps(
    settings: Settings, console: Console, steps: list[tuple[str, dict[str, Any]]], parsing: ManifestJob | None
) -> PipelineResult:
    import gc

    from outcomes.runners import inprocess

    result = PipelineResult()
    for dag_id, conf in steps:
        if dag_id == BUILD_DAG_ID and parsing is not None:
            parsing.wait()
            parsing = None
        # What is alive now (Airflow, and dbt and Great Expectations once a build imported them)
        # is moved out of the cyclic collector's reach: Cosmos runs a full collection after every
        # dbt command, and each walked the whole heap (0.7 s; bench/README.md, "The first run").
        # The garbage of the last run is collected first (it walks only what is not frozen yet),
        # so a long backfill freezes no dead cycles.
        gc.collect()
        gc.freeze()
        outcome = inprocess.run_dag(settings, dag_id, conf=conf)
        result.runs.append(outcome)
        colour = "green" if outcome.succeeded else "red"
        tasks = ", ".join(f"{t} {s}" for t, s in outcome.task_states.items())
        label = f"{dag_id} as of {conf['as_of']}" if "as_of" in conf else dag_id
        console.print(f"  {label:<22} [{colour}]{outcome.state}[/]  ({tasks})")
        if not outcome.succeeded:
            break
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
    console.print(
        "  every result: `outcomes status`; with its history: the Airflow UI, Browse > Quality gate"
    )


def _print_ledger(settings: Settings, console: Console) -> None:
    from outcomes.operations.deliveries import ledger_summary

    for line in ledger_summary(settings):
        console.print(f"  {line}")
