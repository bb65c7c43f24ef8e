"""``outcomes demo``: the whole job on synthetic source systems, on the embedded default.

Steps: synthetic deliveries into the landing zone (once; ``--fresh`` regenerates), warehouse
bootstrap (databases, migrations, roles), Airflow metadata database, then every pipeline DAG that
exists, in order, in-process. Ends by printing where to look.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from outcomes.settings import Settings

if TYPE_CHECKING:
    from rich.console import Console


def _local_landing(settings: Settings) -> Path | None:
    landing = settings.landing.removeprefix("file://")
    return None if "://" in landing else Path(landing)


def _has_deliveries(root: Path) -> bool:
    return any(root.glob("*/*/_manifest.json"))


def _demo_key(settings: Settings) -> None:
    """The demo's own random pseudonymisation key, unless the deployment configured one."""
    import os

    from outcomes.ingest.pseudonym import KEY_ENV, KEY_FILE_ENV, ensure_demo_key

    if not os.environ.get(KEY_ENV) and not os.environ.get(KEY_FILE_ENV):
        os.environ[KEY_FILE_ENV] = str(ensure_demo_key(settings.home))


def run_demo(
    settings: Settings,
    *,
    console: Console,
    generate: Callable[[Path], object],
    fresh: bool = False,
) -> bool:
    """Run the demo; True when every step succeeded. Holds the warehouse's run lock from the
    first step (it may regenerate the landing zone) to the last; RunInProgress when another run
    holds it (``outcomes.runners.runlock``)."""
    from outcomes.runners.runlock import one_run
    from outcomes.warehouse.connection import resolve

    with one_run(resolve(settings, start=True), "demo"):
        return _run_demo(settings, console=console, generate=generate, fresh=fresh)


def _run_demo(
    settings: Settings,
    *,
    console: Console,
    generate: Callable[[Path], object],
    fresh: bool,
) -> bool:
    started = time.monotonic()
    landing = _local_landing(settings)
    if landing is not None and (fresh or not _has_deliveries(landing)):
        if fresh and landing.exists():
            import shutil

            shutil.rmtree(landing)
        console.print(f"[bold]1.[/] synthetic source systems -> {landing}")
        summary = generate(landing)
        describe = getattr(summary, "describe", None)
        console.print(describe() if callable(describe) else summary)
    else:
        console.print(
            f"[bold]1.[/] landing zone {settings.landing} (existing deliveries; --fresh regenerates)"
        )

    _demo_key(settings)
    console.print("[bold]2.[/] the pipeline, in-process")
    from outcomes.runners.pipeline import run_pipeline
    from outcomes.warehouse.connection import Role, resolve

    result = run_pipeline(settings, console)
    ok = result.exit_code == 0
    warehouse = resolve(settings)

    elapsed = time.monotonic() - started
    console.print()
    console.print(f"[bold]{'done' if ok else 'FAILED'}[/] in {elapsed:.0f} s. Where to look:")
    console.print(f"  warehouse (analyst): {warehouse.display_url(role=Role.ANALYST)}")
    console.print("  query it:            outcomes psql   (or: .venv/bin/outcomes psql -c '\\dn')")
    console.print("  state of everything: outcomes status")
    console.print("  deliveries ledger:   outcomes deliveries")
    console.print(f"  deliveries:          {settings.landing}")
    console.print("  Airflow UI:          make up")
    from outcomes.dashboard.snapshots import latest

    snapshot = latest(settings)
    if snapshot is not None:
        console.print("  dashboard (open the file in a browser; `outcomes dashboard --list` lists them):")
        console.print(f"  {snapshot}")
    return ok
