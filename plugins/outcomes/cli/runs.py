"""Commands that run the job: the demo and its synthetic sources, a night (``run``), a rebuild and a
backfill."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from outcomes.cli.common import _console, _fail, _settings, app

# Exit codes (docs/operations.md), defined once: 0 success, 1 failure, 2 usage, 3 the gate blocked.
from outcomes.runners.pipeline import EXIT_FAILURE, EXIT_USAGE

if TYPE_CHECKING:
    from outcomes.demo.sources import GenerationSummary

PANEL = "Runs"


@app.command("demo-sources", rich_help_panel=PANEL)
def demo_sources(
    out: Annotated[Path, typer.Option("--out", help="Landing root to write the deliveries into.")],
    participants: Annotated[
        int, typer.Option(min=1, help="Participants randomised in the RCT (the 8-person pilot is added).")
    ] = 58,
    seed: Annotated[int, typer.Option(help="Random seed: same seed and options, same bytes.")] = 42,
    until: Annotated[
        dt.datetime | None,
        typer.Option(formats=["%Y-%m-%d"], help="Last day of the history (default: today, UTC)."),
    ] = None,
    history_days: Annotated[
        int, typer.Option(min=1, help="Nights of incremental deliveries after the initial backlog.")
    ] = 14,
) -> None:
    """Write synthetic deliveries of all four source systems, in the contract format.

    Deterministic (same options, same bytes), every fnr synthetic (month + 80), streamed to disk in
    constant memory (1,000,000 participants work).
    """
    summary = _generate(out, participants=participants, seed=seed, until=until, history_days=history_days)
    console = _console()
    console.print(summary.describe())


def _generate(
    out: Path, *, participants: int, seed: int, until: dt.datetime | None, history_days: int
) -> GenerationSummary:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from outcomes.demo.sources import generate_sources

    until_date = until.date() if until is not None else dt.datetime.now(dt.UTC).date()
    with Progress(
        TextColumn("generating deliveries"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=_console(stderr=True),
        transient=True,
    ) as progress:
        task = progress.add_task("participants", total=None)

        def report(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        return generate_sources(
            out,
            participants=participants,
            seed=seed,
            until=until_date,
            history_days=history_days,
            progress=report,
        )


@app.command(rich_help_panel=PANEL)
def demo(
    participants: Annotated[int, typer.Option(min=1, help="Participants in the RCT.")] = 58,
    seed: Annotated[int, typer.Option(help="Random seed for the synthetic sources.")] = 42,
    fresh: Annotated[bool, typer.Option(help="Regenerate the demo landing zone first.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show Airflow's task logs.")] = False,
) -> None:
    """Run the whole job on synthetic sources: generate deliveries, bootstrap, run the pipeline.

    Uses the embedded warehouse unless OUTCOMES_WAREHOUSE_URL is set, and the landing zone under
    OUTCOMES_HOME/landing unless OUTCOMES_LANDING is set.
    """
    from outcomes.demo.runner import run_demo
    from outcomes.runners.pipeline import EXIT_BUSY
    from outcomes.runners.runlock import RunInProgress

    if not verbose:
        os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING")
    console = _console()
    try:
        result = run_demo(
            _settings(),
            console=console,
            generate=lambda out: _generate(
                out, participants=participants, seed=seed, until=None, history_days=14
            ),
            fresh=fresh,
        )
    except RunInProgress as busy:
        console.print(f"[red]{busy}[/]")
        raise typer.Exit(EXIT_BUSY) from None
    if not result:
        raise typer.Exit(EXIT_FAILURE)


@app.command(rich_help_panel=PANEL)
def run(
    landing: Annotated[
        str | None,
        typer.Option(help="Landing root (path or fsspec URL); default OUTCOMES_LANDING."),
    ] = None,
    as_of: Annotated[
        dt.datetime | None,
        typer.Option("--as-of", formats=["%Y-%m-%d"], help="Build as of this date (default: today, UTC)."),
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show Airflow's task logs.")] = False,
) -> None:
    """Apply every complete delivery, then build, gate and publish: the nightly job, in-process.

    Exit codes: 0 success, 1 failure, 2 usage, 3 the quality gate blocked the publish, 4 another
    run holds the warehouse (nothing done).
    Needs the pseudonymisation key (OUTCOMES_PSEUDONYM_KEY, OUTCOMES_PSEUDONYM_KEY_FILE or the
    Airflow connection outcomes_pseudonym).
    """
    from outcomes.ingest.pseudonym import PseudonymKeyMissing, load_key

    if landing is not None:
        os.environ["OUTCOMES_LANDING"] = landing
    if not verbose:
        os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING")
    if _no_airflow_key_conn():
        try:
            load_key(use_airflow=False)  # fail now, clearly, not deep inside a task
        except PseudonymKeyMissing as error:
            raise _fail(str(error)) from None
    from outcomes.runners.pipeline import run_pipeline

    result = run_pipeline(_settings(), _console(), as_of=as_of.date() if as_of else None)
    _console().print(f"{'done' if result.exit_code == 0 else 'FAILED'} in {result.seconds:.0f} s")
    raise typer.Exit(result.exit_code)


def _finish(result: Any) -> None:
    _console().print(f"{'done' if result.exit_code == 0 else 'FAILED'} in {result.seconds:.0f} s")
    raise typer.Exit(result.exit_code)


@app.command(rich_help_panel=PANEL)
def rebuild(
    as_of: Annotated[
        dt.datetime | None,
        typer.Option("--as-of", formats=["%Y-%m-%d"], help="Build as of this date (default: today, UTC)."),
    ] = None,
    drift_reason: Annotated[
        str | None,
        typer.Option(help="Why the numbers may move beyond the gate's drift bounds (then drift warns)."),
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show Airflow's task logs.")] = False,
) -> None:
    """Re-run tonight's build (build_outcomes) from raw, without ingesting: dbt, gate, publish,
    history, dashboard. Exit codes as `outcomes run` (3: the gate blocked the publish)."""
    from outcomes.runners.pipeline import run_builds

    if not verbose:
        os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING")
    today = dt.datetime.now(dt.UTC).date()
    day = as_of.date() if as_of else today
    if day > today:
        raise _fail(f"--as-of {day} is in the future (today is {today}, UTC)", EXIT_USAGE)
    _finish(run_builds(_settings(), _console(), [day], drift_reason))


@app.command(rich_help_panel=PANEL)
def backfill(
    start: Annotated[dt.datetime, typer.Option("--from", formats=["%Y-%m-%d"], help="The first as-of date.")],
    end: Annotated[dt.datetime, typer.Option("--to", formats=["%Y-%m-%d"], help="The last as-of date.")],
    every: Annotated[int, typer.Option(min=1, help="Days between as-of dates (7: weekly).")] = 1,
    drift_reason: Annotated[
        str | None,
        typer.Option(help="Kept with each build's gate run; default 'backfill FROM..TO'."),
    ] = None,
    restore: Annotated[
        bool,
        typer.Option(help="Afterwards, build again as of the date `marts` held before, if later than --to."),
    ] = True,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show Airflow's task logs.")] = False,
) -> None:
    """Build and publish the marts as of every date from --from to --to, oldest first: each build
    is gated, recorded in meta.published_builds with its as-of date, snapshotted into `history` and
    rendered as a dated dashboard. Raw is not touched. Then (with --restore, the default) `marts`
    goes back to the as-of date it held before, so analysts are left with tonight's numbers."""
    from outcomes.runners.pipeline import backfill_plan, newest_published_as_of, run_builds

    first, last = start.date(), end.date()
    today = dt.datetime.now(dt.UTC).date()
    if last > today:
        raise _fail(f"--to {last} is in the future (today is {today}, UTC)", EXIT_USAGE)
    try:
        backfill_plan(first, last, every)
    except ValueError as error:
        raise _fail(str(error), EXIT_USAGE) from None
    settings = _settings()
    reason = drift_reason or f"backfill {first}..{last}"
    if not verbose:
        os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING")
    before = newest_published_as_of(settings)
    days = backfill_plan(first, last, every, before, restore)
    console = _console()
    console.print(f"backfill ({reason}): {len(days)} builds, as of {', '.join(d.isoformat() for d in days)}")
    _finish(run_builds(settings, console, days, reason, command="backfill"))


def _no_airflow_key_conn() -> bool:
    """True when no Airflow connection can hold the key (then the environment must)."""
    return not any(k.upper() == "AIRFLOW_CONN_OUTCOMES_PSEUDONYM" for k in os.environ) and not os.environ.get(
        "AIRFLOW__SECRETS__BACKEND"
    )
