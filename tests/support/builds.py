"""Build, gate and publish a warehouse in-process, as the build DAG's tasks do, for tests."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from outcomes.analysis.tasks import estimate_effects
from outcomes.contracts.registry import source_names
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
    build_id: str | None = None,
) -> GateReport:
    """dbt build into the candidate, the effects' estimates, the whole gate, and the publish;
    fails the test if blocked."""
    prepare_candidate(warehouse)
    built = run_dbt(settings, warehouse, ["build"], as_of=as_of)
    assert built.success, built.failures
    estimate_effects(warehouse)
    report = run_gate(
        settings, warehouse, build_id=build_id or new_build_id(), as_of=as_of, drift_reason=drift_reason
    )
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


#: The as-of date of the shared published trial (tests/conftest.py, ``published_trial``).
PUBLISHED_AS_OF = dt.date(2026, 11, 21)


@contextmanager
def scratch_database(warehouse: Warehouse, name: str) -> Iterator[Warehouse]:
    """A new, migrated database ``name`` beside ``warehouse`` (same server); dropped afterwards."""
    import psycopg

    from outcomes.warehouse.bootstrap import ensure_database, migrate

    ensure_database(warehouse, name)
    try:
        scratch = warehouse.for_database(name)
        migrate(scratch)
        yield scratch
    finally:
        with psycopg.connect(warehouse.url(database="postgres"), autocommit=True) as conn:
            conn.execute(f'drop database if exists "{name}" with (force)')


@contextmanager
def published_scratch(
    settings: Settings, warehouse: Warehouse, landing: Path, as_of: dt.date, name: str
) -> Iterator[Warehouse]:
    """A new database ``name`` beside ``warehouse``: migrated, every delivery of ``landing``
    applied by the real loader, built, gated and published as of ``as_of``; dropped afterwards."""
    import psycopg

    from outcomes.ingest.landing import complete_deliveries
    from outcomes.ingest.loader import apply_delivery
    from outcomes.ingest.pseudonym import Pseudonymiser

    with scratch_database(warehouse, name) as scratch:
        pseudonymise = Pseudonymiser(b"p" * 64)
        with psycopg.connect(scratch.url(), autocommit=True) as conn:
            conn.execute("set role outcomes_loader")
            for source in source_names():
                for delivery in complete_deliveries(landing, source):
                    assert apply_delivery(conn, delivery, pseudonymise=pseudonymise).status != "quarantined"
        report = build_gate_publish(settings, scratch, as_of)
        assert report.status == "passed", report.message()
        yield scratch


@contextmanager
def synthetic_trial(
    settings: Settings, warehouse: Warehouse, tmp_path_factory: Any, label: str, until: dt.date
) -> Iterator[Warehouse]:
    """The default synthetic trial (seed 42, deliveries until ``until``) in a new database beside
    ``warehouse``: loaded, built, gated and published as of ``until``; dropped afterwards."""
    import secrets

    from outcomes.demo.sources import generate_sources

    landing = tmp_path_factory.mktemp(f"{label}-landing")
    generate_sources(landing, seed=42, until=until)
    name = f"{warehouse.database}_{label}_{secrets.token_hex(3)}"
    with published_scratch(settings, warehouse, landing, until, name) as scratch:
        yield scratch


def gate_results(warehouse: Warehouse) -> tuple[str, str, list[str]]:
    """The latest gate run (the quality page's first table): its build, status and expectations.
    Other test files may have built on the same warehouse before this one."""
    import psycopg

    with psycopg.connect(warehouse.url()) as conn:
        build, status = conn.execute(  # type: ignore[misc]
            "select build_id, status from meta.gate_runs order by checked_at desc, build_id desc limit 1"
        ).fetchone()
        names = [
            r[0]
            for r in conn.execute("select expectation from meta.gate_results where build_id = %s", (build,))
        ]
    return build, status, names
