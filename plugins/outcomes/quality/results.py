"""Reading the gate's ledger (``meta.gate_runs``, ``meta.gate_results``, ``meta.published_builds``).

Cheap (no GX): used by ``outcomes status``, ``outcomes run`` and the tests.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from outcomes.warehouse.connection import Warehouse


@dataclass(frozen=True)
class GateRun:
    build_id: str
    as_of_date: str
    status: str
    expectations: int
    failed_errors: int
    failed_warnings: int
    seconds: float
    checked_at: str
    drift_reason: str | None
    published: bool
    results: list[dict[str, Any]] = field(default_factory=list)


def last_gate_run(warehouse: Warehouse) -> GateRun | None:
    """The latest gate run with every expectation's result (failed first), or None."""
    import psycopg
    from psycopg.rows import dict_row

    with psycopg.connect(warehouse.url(), row_factory=dict_row) as conn:
        if conn.execute("select to_regclass('meta.gate_runs') as t").fetchone()["t"] is None:  # type: ignore[index]
            return None
        run = conn.execute(
            """
            select runs.*, published.build_id is not null as published
            from meta.gate_runs as runs
            left join meta.published_builds as published using (build_id)
            order by runs.checked_at desc, runs.build_id desc limit 1
            """
        ).fetchone()
        if run is None:
            return None
        results = conn.execute(
            """
            select dataset, expectation, severity, success, observed, description
            from meta.gate_results where build_id = %s
            order by success, severity, expectation
            """,
            (run["build_id"],),
        ).fetchall()
    return GateRun(
        build_id=run["build_id"],
        as_of_date=str(run["as_of_date"]),
        status=run["status"],
        expectations=run["expectations"],
        failed_errors=run["failed_errors"],
        failed_warnings=run["failed_warnings"],
        seconds=float(run["seconds"]),
        checked_at=str(run["checked_at"])[:19],
        drift_reason=run["drift_reason"],
        published=bool(run["published"]),
        results=list(results),
    )


def headline(run: GateRun) -> str:
    colour = {"passed": "green", "warned": "yellow", "blocked": "red"}[run.status]
    fate = "published" if run.published else "NOT published: the marts are unchanged"
    return (
        f"gate [{colour}]{run.status}[/] build {run.build_id} as of {run.as_of_date}: "
        f"{run.expectations} expectations, {run.failed_errors} error(s), "
        f"{run.failed_warnings} warning(s) failed, {run.seconds:.1f} s; {fate}"
    )
