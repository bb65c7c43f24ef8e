"""``outcomes deliveries``: every delivery with its reconciliation, what was wrong with one, and
releasing an inspected one."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from outcomes.cli.common import _console, _fail, _settings, app

# Exit codes (docs/operations.md), defined once: 0 success, 1 failure, 2 usage, 3 the gate blocked.
from outcomes.runners.pipeline import EXIT_USAGE

if TYPE_CHECKING:
    pass

PANEL = "Deliveries"


deliveries_app = typer.Typer(
    help="The delivery ledger: list with reconciliation, inspect, release.", no_args_is_help=False
)


app.add_typer(deliveries_app, name="deliveries", rich_help_panel=PANEL)


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

    from outcomes.operations.deliveries import list_deliveries

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
    from outcomes.operations.deliveries import show_delivery

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

    from outcomes.ingest.loader import ReleaseRefused
    from outcomes.operations.deliveries import release

    source, delivery_id = _split_delivery(delivery)
    try:
        outcome = release(_settings(), source, delivery_id, operator=getpass.getuser(), reason=reason)
    except ReleaseRefused as error:
        raise _fail(str(error)) from None
    _console().print(f"{source}/{delivery_id}: {outcome.message}")
