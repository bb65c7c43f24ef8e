"""The ``outcomes`` command: run, inspect and operate the outcomes warehouse.

Imports are lazy (inside the commands), so ``outcomes --help`` answers at once: Airflow, dbt,
Great Expectations and SQLAlchemy cost seconds to import and only the commands that use them pay.
"""

from __future__ import annotations

import datetime as dt
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

# Exit codes (docs/operations.md), defined once: 0 success, 1 failure, 2 usage, 3 the gate blocked.
from outcomes.pipeline import EXIT_FAILURE, EXIT_USAGE

if TYPE_CHECKING:
    from rich.console import Console

    from outcomes.demo.sources import GenerationSummary
    from outcomes.settings import Settings

app = typer.Typer(
    name="outcomes",
    help="Longitudinal outcomes warehouse for IPS trials: ingest, build, gate, publish.",
    no_args_is_help=True,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_enable=False,
)


PASSTHROUGH = {"allow_extra_args": True, "ignore_unknown_options": True, "help_option_names": []}


def _console(stderr: bool = False) -> Console:
    from rich.console import Console

    # soft_wrap: long URLs and paths stay on one line, so they can be copied (and grepped).
    stream = sys.stderr if stderr else sys.stdout
    # Piped output (CI logs, grep) gets wide tables instead of 80 columns of ellipses.
    width = None if stream.isatty() else 160
    return Console(stderr=stderr, highlight=False, soft_wrap=True, width=width)


def _settings() -> Settings:
    from outcomes.settings import load_settings

    return load_settings()


def _fail(message: str, code: int = EXIT_FAILURE) -> typer.Exit:
    _console(stderr=True).print(f"[bold red]error:[/] {message}")
    return typer.Exit(code)


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        typer.echo(f"outcomes {version('outcomes')}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    """Longitudinal outcomes warehouse for IPS trials: ingest, build, gate, publish.

    Settings come from the environment (OUTCOMES_HOME, OUTCOMES_WAREHOUSE_URL, OUTCOMES_LANDING, ...):
    see `outcomes env`.
    """


@app.command()
def env(
    show_all: Annotated[
        bool,
        typer.Option(
            "--all", help="Also print every OUTCOMES_* setting in effect (a secret: only whether set)."
        ),
    ] = False,
) -> None:
    """Print the settings in effect as KEY=value lines (`eval "$(outcomes env)"` works).

    Checks every declared setting first: a bad value is refused, naming the variable. Starts the
    embedded warehouse if it is the one in use, so the URL printed answers.
    """
    import shlex

    from outcomes.settings import check_all, effective
    from outcomes.warehouse.connection import Role, resolve

    problems = check_all()
    if problems:
        raise _fail("; ".join(problems))
    settings = _settings()
    warehouse = resolve(settings, start=True)
    values = {
        "OUTCOMES_HOME": str(settings.home),
        "OUTCOMES_WAREHOUSE_URL": warehouse.url(),
        "OUTCOMES_WAREHOUSE_EMBEDDED": "true" if warehouse.embedded else "false",
        "OUTCOMES_ANALYST_URL": warehouse.url(role=Role.ANALYST),
        "OUTCOMES_LANDING": settings.landing,
        "OUTCOMES_PROJECT_DIR": str(settings.project_dir),
        "AIRFLOW_HOME": str(settings.airflow_home),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": warehouse.airflow_sql_alchemy_conn(),
    }
    for key, value in values.items():
        typer.echo(f"{key}={shlex.quote(value)}")
    if not show_all:
        return
    for key, text in effective().items():
        if key in values:
            continue
        if text is None:  # a secret that is set: never printed
            typer.echo(f"# {key} is set (not shown)")
        else:
            typer.echo(f"{key}={shlex.quote(text)}")


@app.command()
def migrate() -> None:
    """Create the warehouse databases if missing and apply every pending migration."""
    from outcomes.warehouse.bootstrap import bootstrap, current_revision

    warehouse = bootstrap(_settings())
    _console().print(
        f"warehouse [bold]{warehouse.display_url()}[/] at migration {current_revision(warehouse)}"
    )


@app.command()
def status() -> None:
    """Show the warehouse (where, running, migration), the landing zone and the Airflow home."""
    from outcomes.status import collect_status, render_status

    settings = _settings()
    render_status(_console(), collect_status(settings))


@app.command()
def stop() -> None:
    """Stop the embedded warehouse (PostgreSQL under OUTCOMES_HOME). Data stays on disk."""
    from outcomes.warehouse import embedded

    settings = _settings()
    console = _console()
    if not settings.embedded:
        console.print("the warehouse is external (OUTCOMES_WAREHOUSE_URL): nothing to stop")
        return
    if embedded.stop(settings.pgdata):
        console.print(f"stopped the embedded warehouse in {settings.pgdata}")
    else:
        console.print(f"the embedded warehouse in {settings.pgdata} was not running")


@app.command(context_settings=PASSTHROUGH, add_help_option=False)
def psql(ctx: typer.Context) -> None:
    """psql on the warehouse as the read-only analyst role (arguments go to psql).

    Example: `outcomes psql -c "select * from marts.agg_employment_rates"`.
    """
    from outcomes.warehouse.connection import Role, resolve

    settings = _settings()
    warehouse = resolve(settings, start=True)
    binary = _psql_binary()
    args = [binary, warehouse.url(role=Role.ANALYST), *ctx.args]
    sys.stdout.flush()
    os.execv(binary, args)


def _psql_binary() -> str:
    """pgserver ships psql; fall back to one on PATH."""
    import shutil

    from pgserver._commands import POSTGRES_BIN_PATH

    shipped = Path(POSTGRES_BIN_PATH) / "psql"
    if shipped.exists():
        return str(shipped)
    found = shutil.which("psql")
    if found is None:
        raise _fail("no psql found (pgserver ships one; is the package installed?)")
    return found


@app.command(context_settings=PASSTHROUGH, add_help_option=False)
def airflow(ctx: typer.Context) -> None:
    """Airflow with the project's settings: AIRFLOW_HOME under OUTCOMES_HOME, dags/ and plugins/.

    Example: `outcomes airflow dags list`, `outcomes airflow standalone`.
    """
    from outcomes import airflow_env
    from outcomes.warehouse.bootstrap import bootstrap

    settings = _settings()
    warehouse = bootstrap(settings)
    airflow_env.configure(settings, warehouse)
    binary = airflow_env.airflow_binary()
    sys.stdout.flush()
    os.execv(binary, [binary, *ctx.args])


@app.command(context_settings=PASSTHROUGH, add_help_option=False)
def dbt(ctx: typer.Context) -> None:
    """dbt on the project with the warehouse's profile (arguments go to dbt).

    Example: `outcomes dbt build --vars '{as_of: 2026-11-21}'`; without `as_of` dbt builds as of
    today (UTC). Artefacts go to OUTCOMES_HOME/dbt, not into the checkout.
    """
    from outcomes.transform.dbt import dbt_environ
    from outcomes.warehouse.bootstrap import bootstrap

    settings = _settings()
    warehouse = bootstrap(settings)
    os.environ.update(dbt_environ(warehouse))
    os.environ.setdefault("DBT_TARGET_PATH", str(settings.dbt_target_dir))
    os.environ.setdefault("DBT_LOG_PATH", str(settings.dbt_log_dir))
    os.environ.setdefault("DBT_PROJECT_DIR", str(settings.dbt_project_dir))
    os.environ.setdefault("DBT_PROFILES_DIR", str(settings.dbt_project_dir))
    binary = Path(sys.executable).parent / "dbt"
    sys.stdout.flush()
    os.execv(str(binary), [str(binary), *ctx.args])


@app.command("demo-sources")
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


@app.command()
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

    if not verbose:
        os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING")
    console = _console()
    result = run_demo(
        _settings(),
        console=console,
        generate=lambda out: _generate(
            out, participants=participants, seed=seed, until=None, history_days=14
        ),
        fresh=fresh,
    )
    if not result:
        raise typer.Exit(EXIT_FAILURE)


class UserError(Exception):
    """An error the user can fix; printed as one line, no traceback."""


@app.command()
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

    Exit codes: 0 success, 1 failure, 2 usage, 3 the quality gate blocked the publish.
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
    from outcomes.pipeline import run_pipeline

    result = run_pipeline(_settings(), _console(), as_of=as_of.date() if as_of else None)
    _console().print(f"{'done' if result.exit_code == 0 else 'FAILED'} in {result.seconds:.0f} s")
    raise typer.Exit(result.exit_code)


def _finish(result: Any) -> None:
    _console().print(f"{'done' if result.exit_code == 0 else 'FAILED'} in {result.seconds:.0f} s")
    raise typer.Exit(result.exit_code)


@app.command()
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
    from outcomes.pipeline import run_builds

    if not verbose:
        os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING")
    today = dt.datetime.now(dt.UTC).date()
    day = as_of.date() if as_of else today
    if day > today:
        raise _fail(f"--as-of {day} is in the future (today is {today}, UTC)", EXIT_USAGE)
    _finish(run_builds(_settings(), _console(), [day], drift_reason))


@app.command()
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
    from outcomes.pipeline import backfill_plan, newest_published_as_of, run_builds

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
    _finish(run_builds(settings, console, days, reason))


def _no_airflow_key_conn() -> bool:
    """True when no Airflow connection can hold the key (then the environment must)."""
    return not any(k.upper() == "AIRFLOW_CONN_OUTCOMES_PSEUDONYM" for k in os.environ) and not os.environ.get(
        "AIRFLOW__SECRETS__BACKEND"
    )


deliveries_app = typer.Typer(
    help="The delivery ledger: list with reconciliation, inspect, release.", no_args_is_help=False
)
app.add_typer(deliveries_app, name="deliveries")


def _split_delivery(ref: str) -> tuple[str, str]:
    source, _, delivery_id = ref.partition("/")
    if not source or not delivery_id:
        raise _fail(f"expected SOURCE/DELIVERY_ID (e.g. registry/20261121T0200Z), got {ref!r}", EXIT_USAGE)
    return source, delivery_id


@deliveries_app.callback(invoke_without_command=True)
def deliveries_list(
    ctx: typer.Context,
    source: Annotated[str | None, typer.Option(help="Only this source.")] = None,
) -> None:
    """List every delivery with its status and reconciliation.

    received = loaded + pending + purged + quarantined, for every delivery but duplicates.
    """
    if ctx.invoked_subcommand is not None:
        return
    from rich.table import Table

    from outcomes.deliveries import list_deliveries

    table = Table(title="deliveries", title_justify="left")
    headers = ("source", "delivery", "status", "received", "loaded", "pending", "purged", "quarantined", "ok")
    for header in headers:
        table.add_column(
            header, justify="right" if header not in {"source", "delivery", "status"} else "left"
        )
    for d in list_deliveries(_settings(), source):
        colour = {"quarantined": "red", "duplicate": "yellow", "released": "cyan"}.get(d["status"], "green")
        table.add_row(
            d["source"],
            d["delivery_id"],
            f"[{colour}]{d['status']}[/]",
            *(
                f"{d[k]:,}"
                for k in ("rows_received", "rows_loaded", "rows_pending", "rows_purged", "rows_quarantined")
            ),
            "yes" if d["reconciled"] else "[red]NO[/]",
        )
    _console().print(table)


@deliveries_app.command("show")
def deliveries_show(
    delivery: Annotated[str, typer.Argument(help="SOURCE/DELIVERY_ID, e.g. registry/20261121T0200Z")],
    limit: Annotated[int, typer.Option(help="At most this many bad rows.")] = 200,
) -> None:
    """What was wrong with one delivery, line by line (pseudonymised: never an fnr)."""
    from outcomes.deliveries import show_delivery

    source, delivery_id = _split_delivery(delivery)
    detail = show_delivery(_settings(), source, delivery_id, limit=limit)
    console = _console()
    if detail is None:
        raise _fail(f"no delivery {source}/{delivery_id} in the ledger")
    d = detail.delivery
    when = f"extracted {d['extracted_at']}, applied {d['applied_at']}"
    console.print(f"[bold]{source}/{delivery_id}[/]: {d['status']} ({when})")
    console.print(
        f"  {d['rows_received']:,} received = {d['rows_loaded']:,} loaded + {d['rows_pending']:,} pending"
        f" + {d['rows_purged']:,} purged + {d['rows_quarantined']:,} quarantined"
    )
    console.print(f"  {d['message']}")
    if detail.problems:
        console.print("[bold]whole-delivery problems[/]")
        for p in detail.problems:
            console.print(f"  - {p['message']}")
    if detail.rows:
        console.print(f"[bold]rows that broke a rule[/] ({detail.rows_total:,}; showing {len(detail.rows)})")
        for row in detail.rows:
            for v in row["violations"]:
                console.print(f"  - {v['message']}")
    console.print("[bold]history[/]")
    for e in detail.events:
        stamp = f"{e['happened_at']:%Y-%m-%d %H:%M:%S}"
        console.print(f"  {stamp} {e['event']} ({e['rows']} rows) by {e['happened_by']}: {e['detail']}")


@deliveries_app.command("release")
def deliveries_release(
    delivery: Annotated[str, typer.Argument(help="SOURCE/DELIVERY_ID of a quarantined delivery.")],
    reason: Annotated[str, typer.Option(help="Why it is safe to load (kept in the audit trail).")],
) -> None:
    """Load the valid rows of an inspected, quarantined delivery; rows that broke a rule stay."""
    import getpass

    from outcomes.deliveries import release
    from outcomes.ingest.loader import ReleaseRefused

    source, delivery_id = _split_delivery(delivery)
    try:
        outcome = release(_settings(), source, delivery_id, operator=getpass.getuser(), reason=reason)
    except ReleaseRefused as error:
        raise _fail(str(error)) from None
    _console().print(f"{source}/{delivery_id}: {outcome.message}")


def _warehouse() -> Any:
    from outcomes.warehouse.connection import resolve

    return resolve(_settings(), start=True)


@app.command()
def dashboard(
    list_all: Annotated[bool, typer.Option("--list", help="List every snapshot, newest last.")] = False,
    refresh: Annotated[
        bool, typer.Option("--refresh", help="Render the published marts into a new snapshot first.")
    ] = False,
    lock: Annotated[
        str | None, typer.Option(help="With --refresh: the lock to show beside today (default: the newest).")
    ] = None,
) -> None:
    """Print the path of the latest dashboard snapshot (a self-contained HTML file).

    The build DAG renders one after every publish; a blocked gate leaves the previous one latest.
    """
    from outcomes.dashboard import snapshots

    settings = _settings()
    if refresh:
        path = snapshots.refresh(settings, _warehouse(), compare_lock=lock)
        _console().print(str(path))
        return
    if list_all:
        from rich.table import Table

        found = snapshots.list_snapshots(settings)
        if not found:
            raise _fail(f"no dashboard snapshots in {settings.dashboards_dir} yet: run `outcomes run`")
        latest = snapshots.latest(settings)
        table = Table("snapshot", "as of", "gate", "rendered", "lock shown", "latest")
        for snap in found:
            table.add_row(
                snap.name,
                snap.as_of_date,
                snap.gate,
                snap.rendered_at,
                snap.lock or "",
                "latest" if latest is not None and snap.path == latest else "",
            )
        console = _console()
        console.print(f"in {settings.dashboards_dir}:")
        console.print(table)
        return
    shown = snapshots.latest(settings)
    if shown is None:
        raise _fail(f"no dashboard snapshot in {settings.dashboards_dir} yet: run `outcomes run`")
    _console().print(str(shown))


@app.command()
def up() -> None:
    """Start Airflow (standalone: api-server, scheduler, dag-processor, triggerer) in the background
    with the project's DAGs unpaused; print the URL and the login. `outcomes down` stops it."""
    from outcomes import standalone

    os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING")
    try:
        running = standalone.up(_settings())
    except RuntimeError as error:
        raise _fail(str(error)) from None
    console = _console()
    console.print(f"Airflow is up: {running.url}  (process group {running.pid}, log {running.log})")
    console.print(f"  sign in as {running.username}, password {running.password}")
    console.print(f"  dashboard: {running.url}/outcomes/dashboards/latest   stop: make down")


@app.command()
def down() -> None:
    """Stop the Airflow that `outcomes up` started."""
    from outcomes import standalone

    stopped = standalone.down(_settings())
    _console().print("Airflow stopped" if stopped else "Airflow was not running")


lock_app = typer.Typer(
    help="Database locks: frozen, checksummed copies of the published marts (e.g. 12m-lock).",
    no_args_is_help=True,
)
app.add_typer(lock_app, name="lock")


@lock_app.command("create")
def lock_create(
    name: Annotated[str, typer.Argument(help="The lock's name, e.g. 12m-lock (schema lock_12m_lock).")],
    note: Annotated[str | None, typer.Option(help="Why this lock exists (kept in meta.locks).")] = None,
) -> None:
    """Freeze the published marts into schema lock_NAME, with a manifest of checksums."""
    from outcomes.warehouse import locks

    try:
        made = locks.create(_warehouse(), name, note=note)
    except locks.LockError as error:
        raise _fail(str(error)) from None
    rows = sum(r for r, _ in made.tables.values())
    _console().print(
        f"lock {made.name}: schema {made.schema_name}, build {made.build_id} as of {made.as_of_date}, "
        f"{len(made.tables)} tables, {rows} rows; read-only to everyone"
    )


@lock_app.command("verify")
def lock_verify(name: Annotated[str, typer.Argument(help="The lock's name.")]) -> None:
    """Recompute every table's row count and checksum and compare them with the manifest (exit 1 if not)."""
    from rich.table import Table

    from outcomes.warehouse import locks

    try:
        checks = locks.verify(_warehouse(), name)
    except locks.LockError as error:
        raise _fail(str(error)) from None
    table = Table("table", "rows", "manifest rows", "checksum", "manifest checksum", "")
    for c in checks:
        table.add_row(
            c.table,
            str(c.rows),
            str(c.expected_rows),
            str(c.checksum),
            str(c.expected_checksum),
            "[green]ok[/]" if c.ok else "[red]CHANGED[/]",
        )
    _console().print(table)
    bad = [c.table for c in checks if not c.ok]
    if bad:
        raise _fail(f"lock {name}: {len(bad)} table(s) differ from the manifest: {', '.join(bad)}")
    _console().print(f"lock {name}: all {len(checks)} tables match the manifest")


@lock_app.command("list")
def lock_list() -> None:
    """Every lock: its build, as-of date, tables and amendments."""
    from rich.table import Table

    from outcomes.warehouse import locks

    found = locks.list_locks(_warehouse())
    if not found:
        _console().print("no locks yet (`outcomes lock create NAME`)")
        return
    table = Table("lock", "schema", "build", "as of", "created", "by", "tables", "rows", "amended", "note")
    for lock in found:
        table.add_row(
            lock.name,
            lock.schema_name,
            lock.build_id,
            lock.as_of_date,
            lock.created_at,
            lock.created_by,
            str(len(lock.tables)),
            str(sum(r for r, _ in lock.tables.values())),
            f"{lock.amendments} (last {lock.amended_at})" if lock.amendments else "no",
            lock.note or "",
        )
    _console().print(table)


@app.command()
def history(
    date: Annotated[
        dt.datetime,
        typer.Argument(formats=["%Y-%m-%d"], help="The day (UTC): rates as published at its end."),
    ],
) -> None:
    """The employment rates as the dashboard showed them on DATE, from the `history` snapshots."""
    from rich.table import Table

    from outcomes.warehouse.history import rates_on

    try:
        published = rates_on(_warehouse(), date.date())
    except LookupError as error:
        raise _fail(str(error)) from None
    console = _console()
    console.print(
        f"as published on {date.date().isoformat()}: build {published.build_id} "
        f"(as of {published.as_of_date}, "
        f"published {published.published_at})"
    )
    table = Table("study", "arm", "months", "randomised", "known", "employed", "complete case %", "ITT %")
    for r in published.rates:
        table.add_row(
            r["study"],
            r["arm"],
            str(r["horizon_months"]),
            str(r["n_randomised"]),
            str(r["n_known"]),
            str(r["n_employed"]),
            _num(r["rate_complete_case_pct"]),
            _num(r["rate_itt_pct"]),
        )
    console.print(table)


def _num(value: Any) -> str:
    return "-" if value is None else str(value)


def main() -> None:
    """Entry point of the ``outcomes`` console script.

    Errors a user can act on (a bad setting, an unreachable warehouse) print one clear line and
    exit 1; anything else keeps its traceback, because then it is a bug to report.
    """
    try:
        app()
    except (UserError, ValueError, ConnectionError) as error:
        _console(stderr=True).print(f"[bold red]error:[/] {error}")
        sys.exit(EXIT_FAILURE)
    except Exception as error:
        if type(error).__module__.startswith("psycopg") and type(error).__name__ == "OperationalError":
            _console(stderr=True).print(f"[bold red]error:[/] cannot reach the warehouse: {error}")
            sys.exit(EXIT_FAILURE)
        raise


if __name__ == "__main__":  # pragma: no cover
    main()
