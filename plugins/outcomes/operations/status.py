"""``outcomes status``: what is where, and in what state, without starting anything."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from outcomes.settings import Settings

if TYPE_CHECKING:
    from rich.console import Console

    from outcomes.ingest.freshness import SourceFreshness
    from outcomes.quality.results import GateRun


@dataclass(frozen=True)
class LandingSource:
    source: str
    complete: int
    incomplete: int
    latest: str | None


@dataclass(frozen=True)
class WarehouseStatus:
    kind: str  # "embedded" or "external"
    location: str
    running: bool
    url: str | None = None
    server_version: str | None = None
    revision: str | None = None
    head: str | None = None
    tables: dict[str, int] = field(default_factory=dict)
    error: str | None = None


@dataclass(frozen=True)
class Status:
    settings: Settings
    warehouse: WarehouseStatus
    landing: list[LandingSource]
    ledger: list[str] = field(default_factory=list)
    alerts: list[str] = field(default_factory=list)
    gate: GateRun | None = None
    published: dict[str, Any] | None = None
    #: Per source: its newest delivery, its age and whether it is late (ingest/freshness.py).
    freshness: list[SourceFreshness] = field(default_factory=list)
    freshness_error: str | None = None
    landing_error: str | None = None  # the landing zone could not be read (its server down)


def _warehouse_status(settings: Settings) -> WarehouseStatus:
    from outcomes.warehouse.bootstrap import head_revision
    from outcomes.warehouse.connection import WarehouseNotRunning, resolve

    kind = "embedded" if settings.embedded else "external"
    location = str(settings.pgdata) if settings.embedded else "OUTCOMES_WAREHOUSE_URL"
    head = head_revision()
    try:
        warehouse = resolve(settings, start=False)
    except WarehouseNotRunning:
        return WarehouseStatus(kind=kind, location=location, running=False, head=head)
    import psycopg

    try:
        with psycopg.connect(warehouse.url(), connect_timeout=5) as conn:
            version = conn.execute("show server_version").fetchone()
            has_version_table = conn.execute("select to_regclass('meta.alembic_version')").fetchone()
            revision = None
            if has_version_table and has_version_table[0]:
                row = conn.execute("select version_num from meta.alembic_version").fetchone()
                revision = row[0] if row else None
            counts = conn.execute(
                """
                select n.nspname, count(c.oid)
                from pg_namespace n
                left join pg_class c on c.relnamespace = n.oid and c.relkind in ('r', 'v', 'm', 'p')
                where n.nspname in ('raw', 'quarantine', 'meta', 'marts', 'history')
                group by n.nspname order by n.nspname
                """
            ).fetchall()
    except psycopg.Error as error:
        return WarehouseStatus(
            kind=kind,
            location=location,
            running=False,
            url=warehouse.display_url(),
            head=head,
            error=str(error).strip().splitlines()[0],
        )
    return WarehouseStatus(
        kind=kind,
        location=location,
        running=True,
        url=warehouse.display_url(),
        server_version=version[0] if version else None,
        revision=revision,
        head=head,
        tables={name: int(n) for name, n in counts},
    )


def _landing_status(settings: Settings) -> tuple[list[LandingSource], str | None]:
    """Each source's deliveries in the landing zone, read as the ingest reads it (its connection);
    a landing zone that cannot be read gives its error instead."""
    from outcomes.ingest.landing import LandingConfigError, unreachable_errors

    readable: tuple[type[BaseException], ...] = (LandingConfigError, *unreachable_errors())
    try:
        return _landing_sources(settings), None
    except readable as error:
        return [], f"cannot be read: {type(error).__name__}: {error}"


def _landing_sources(settings: Settings) -> list[LandingSource]:
    from outcomes.contracts.registry import source_names
    from outcomes.ingest.landing import complete_deliveries, incomplete_deliveries
    from outcomes.ingest.service import landing

    root = landing(settings)
    result = []
    for source in source_names():
        complete = complete_deliveries(root, source)
        result.append(
            LandingSource(
                source=source,
                complete=len(complete),
                incomplete=len(incomplete_deliveries(root, source)),
                latest=complete[-1].name if complete else None,
            )
        )
    return result


def _ledger(settings: Settings, warehouse: WarehouseStatus) -> list[str]:
    if not warehouse.running or "meta" not in warehouse.tables or warehouse.revision is None:
        return []
    if warehouse.revision == "0001":  # the ledger arrived with migration 0002
        return []
    from outcomes.operations.deliveries import ledger_summary

    return ledger_summary(settings)


def _freshness(settings: Settings, warehouse: WarehouseStatus) -> tuple[list[SourceFreshness], str | None]:
    """Which sources are late (the maintenance DAG's check_sources verdicts, computed now)."""
    if not warehouse.running or warehouse.revision is None or warehouse.revision < "0002":
        return [], None
    import psycopg

    from outcomes.ingest.freshness import source_freshness
    from outcomes.warehouse.connection import resolve

    try:
        return source_freshness(resolve(settings, start=False)), None
    except (psycopg.Error, ValueError) as error:  # a bad OUTCOMES_FRESHNESS_* value, say
        return [], str(error).strip().splitlines()[0]


def _alerts(settings: Settings, last: int = 5) -> list[str]:
    path = settings.alerts_log
    if not path.exists():
        return []
    return path.read_text(encoding="utf-8").splitlines()[-last:]


def _gate(settings: Settings, warehouse: WarehouseStatus) -> tuple[GateRun | None, dict[str, Any] | None]:
    if not warehouse.running or warehouse.revision is None or warehouse.revision < "0004":
        return None, None
    from outcomes.quality.results import last_gate_run
    from outcomes.warehouse.connection import resolve
    from outcomes.warehouse.publish import latest_published_build

    resolved = resolve(settings, start=False)
    return last_gate_run(resolved), latest_published_build(resolved)


def collect_status(settings: Settings) -> Status:
    """Gather the status. Never starts the embedded warehouse."""
    landing, landing_error = _landing_status(settings)
    warehouse = _warehouse_status(settings)
    gate, published = _gate(settings, warehouse)
    freshness, freshness_error = _freshness(settings, warehouse)
    return Status(
        settings=settings,
        warehouse=warehouse,
        landing=landing,
        ledger=_ledger(settings, warehouse),
        alerts=_alerts(settings),
        gate=gate,
        published=published,
        freshness=freshness,
        freshness_error=freshness_error,
        landing_error=landing_error,
    )


def render_status(console: Console, status: Status) -> None:
    """Print ``status`` as a few small tables."""
    settings = status.settings
    console.print(f"[bold]OUTCOMES_HOME[/] {settings.home}")
    _render_warehouse(console, status.warehouse)
    _render_landing(console, status)
    _render_freshness(console, status)
    _render_published(console, status)
    _render_gate(console, status)
    if status.alerts:
        console.print(f"[bold]last alerts[/] ({settings.alerts_log})")
        for line in status.alerts:
            console.print(f"  {line}")
    console.print(f"[bold]Airflow home[/] {settings.airflow_home}  (UI: `make up`)")


def _migration(wh: WarehouseStatus) -> str:
    if wh.revision is None:
        return "[yellow]not migrated[/] (run `outcomes migrate`)"
    if wh.revision == wh.head:
        return f"{wh.revision} (current)"
    return f"[yellow]{wh.revision}, code expects {wh.head}[/] (run `outcomes migrate`)"


def _render_warehouse(console: Console, wh: WarehouseStatus) -> None:
    from rich.table import Table

    table = Table(title="warehouse", show_header=False, title_justify="left")
    table.add_row("kind", f"{wh.kind} ({wh.location})")
    state = "running" if wh.running else "[yellow]stopped[/] (any command that needs it starts it)"
    if wh.error:
        state = f"[red]unreachable[/]: {wh.error}"
    table.add_row("state", state)
    if wh.url:
        table.add_row("url", wh.url)
    if wh.server_version:
        table.add_row("server", f"PostgreSQL {wh.server_version}")
    if wh.running:
        table.add_row("migration", _migration(wh))
        table.add_row("tables", ", ".join(f"{k}: {v}" for k, v in wh.tables.items()) or "none")
    console.print(table)


def _render_landing(console: Console, status: Status) -> None:
    from rich.table import Table

    from outcomes.ingest.landing import shown

    settings = status.settings
    if status.landing:
        landing = Table(title=f"landing zone {shown(settings.landing)}", title_justify="left")
        for column in ("source", "complete deliveries", "incomplete", "latest"):
            landing.add_column(column)
        for item in status.landing:
            landing.add_row(item.source, str(item.complete), str(item.incomplete), item.latest or "-")
        console.print(landing)
    else:
        console.print(
            f"[bold]landing zone[/] {shown(settings.landing)}"
            + (f" [red]{status.landing_error}[/]" if status.landing_error else "")
        )
    if status.ledger:
        console.print("[bold]deliveries applied[/] (details: `outcomes deliveries`)")
        for line in status.ledger:
            console.print(f"  {line}")


def _render_published(console: Console, status: Status) -> None:
    if status.published:
        pub = status.published
        console.print(
            f"[bold]published marts[/] build {pub['build_id']} as of {pub['as_of_date']}, "
            f"gate {pub['gate_result']}, published {str(pub['published_at'])[:19]}"
        )
    from outcomes.dashboard.snapshots import latest

    snapshot = latest(status.settings)
    if snapshot is not None:
        console.print(f"[bold]dashboard[/] {snapshot}  (all: `outcomes dashboard --list`)")


def _render_gate(console: Console, status: Status) -> None:
    if not status.gate:
        return
    from rich.table import Table

    from outcomes.quality.results import headline

    console.print(f"[bold]last quality gate[/] {headline(status.gate)}")
    results = Table(title_justify="left")
    for column in ("expectation", "severity", "result", "observed"):
        results.add_column(column, overflow="fold")
    for result in status.gate.results:
        outcome = (
            "[green]pass[/]"
            if result["success"]
            else ("[red]FAIL[/]" if result["severity"] == "error" else "[yellow]warn[/]")
        )
        results.add_row(result["expectation"], result["severity"], outcome, result["observed"] or "")
    console.print(results)
    console.print("  every expectation's history: the Airflow UI, Browse > Quality gate (/outcomes/quality/)")


def _render_freshness(console: Console, status: Status) -> None:
    """One row per source: its newest delivery, age and interval, and LATE when it is late."""
    if status.freshness_error:
        console.print(f"[bold]late sources[/] [red]could not check[/]: {status.freshness_error}")
        return
    if not status.freshness:
        return
    from rich.table import Table

    table = Table(
        title="source freshness (OUTCOMES_FRESHNESS_<SOURCE>_DAYS; a late source: docs/runbook.md)",
        title_justify="left",
    )
    for column in ("source", "newest delivery", "age (days)", "expected within (days)", "state"):
        table.add_column(column)
    for item in status.freshness:
        last = f"{item.last.delivery_id} ({item.last.status})" if item.last else "no delivery yet"
        age = f"{item.age_days:.1f}" if item.age_days is not None else "-"
        state = "[red]LATE[/]" if item.late else "[green]on time[/]"
        table.add_row(item.source, last, age, f"{item.interval_days:g}", state)
    console.print(table)
