"""Commands about what was published: the dashboard, database locks, and what the numbers were
as of a day (``history``)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from outcomes.cli.common import _console, _fail, _num, _settings, _warehouse, app

# Exit codes (docs/operations.md), defined once: 0 success, 1 failure, 2 usage, 3 the gate blocked.

if TYPE_CHECKING:
    pass

PANEL = "Results"


@app.command(rich_help_panel=PANEL)
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


lock_app = typer.Typer(
    help="Database locks: frozen, checksummed copies of the published marts (e.g. 12m-lock).",
    no_args_is_help=True,
)


app.add_typer(lock_app, name="lock", rich_help_panel=PANEL)


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


@app.command(rich_help_panel=PANEL)
def history(
    date: Annotated[
        dt.datetime,
        typer.Argument(formats=["%Y-%m-%d"], help="The day (UTC): rates as published at its end."),
    ],
) -> None:
    """The employment rates as published on DATE, from the `history` snapshots: exact counts, for
    those who may read the marts (the dashboard of that day printed them under disclosure control:
    small counts and their complements withheld)."""
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


@app.command(rich_help_panel=PANEL)
def export(
    out: Annotated[Path, typer.Option("--out", help="A new or empty directory to write the export into.")],
    fmt: Annotated[
        str, typer.Option("--format", help="csv, parquet (R: arrow) or dta (Stata 14+; R: haven).")
    ] = "csv",
    lock: Annotated[
        str | None, typer.Option(help="Export this database lock instead of the published build.")
    ] = None,
) -> None:
    """Write the analysis datasets of the published build (or of a lock) for R and Stata, with a
    codebook generated from the dbt docs and a manifest of checksums (docs/analysts-guide.md,
    "Exports"). An export of a lock is the same byte for byte each time. Exact counts: what
    leaves the secure zone is yours to check."""
    import psycopg

    from outcomes.analysis.export import ExportError
    from outcomes.analysis.export import export as write_export
    from outcomes.transform.dbt import ensure_manifest
    from outcomes.warehouse.connection import Role

    settings, warehouse = _settings(), _warehouse()
    ensure_manifest(settings, warehouse)
    try:
        with psycopg.connect(warehouse.url()) as conn:
            conn.execute(f"set role {Role.ANALYST}")  # reads what an analyst may read, no more
            record = write_export(conn, settings.dbt_manifest, out, fmt.lower(), lock)
    except ExportError as error:
        raise _fail(str(error)) from None
    console = _console()
    console.print(f"{record['source']} ({record['build_id']}, as of {record['as_of_date']}) -> {out}")
    for name, entry in sorted(record["files"].items()):
        rows = f"{entry['rows']:>8,} rows" if "rows" in entry else " " * 13
        console.print(f"  {name:<40} {rows}  sha256 {entry['sha256'][:16]}...")


@app.command(rich_help_panel=PANEL)
def trace(
    participant_id: Annotated[str, typer.Argument(help="The trial's participant ID, e.g. HUS-001.")],
    lock: Annotated[
        str | None,
        typer.Option(help="Show this lock's numbers beside today's: what changed, and what arrived since."),
    ] = None,
) -> None:
    """Where one participant's published numbers came from: the outcome at each horizon, the first
    employment date with the delivery and line that decided it, every version of their
    employment records (in effect, superseded, deleted) with when each delivery arrived, their
    months and their questionnaire forms (docs/analysts-guide.md, "Trace a number"). Reads the
    raw deliveries: run it inside the secure zone."""
    import psycopg

    from outcomes.analysis.trace import TraceError, render
    from outcomes.analysis.trace import trace as find
    from outcomes.warehouse.connection import Role

    try:
        with psycopg.connect(_warehouse().url()) as conn:
            conn.execute(f"set role {Role.OWNER}")
            found = find(conn, participant_id, lock)
    except TraceError as error:
        raise _fail(str(error)) from None
    render(found, _console())
