"""Retention (retention.py) on real files in a home of the test's own: dashboard snapshots written
by the dashboard's own writer, a database lock in a real (scratch) warehouse, and a real Great
Expectations file context with validation results and Data Docs built by GX."""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from support.builds import scratch_database

from outcomes.dashboard.snapshots import LATEST, latest, list_snapshots, point_latest, write_snapshot
from outcomes.operations.retention import (
    DASHBOARD_RETENTION_ENV,
    GX_RETENTION_ENV,
    gx_paths,
    missing_index_links,
    prune_dashboards,
    prune_gx_results,
    prune_state,
    retention_days,
)
from outcomes.settings import Settings
from outcomes.warehouse.connection import Warehouse

NOW = dt.datetime(2027, 6, 1, 0, 30, tzinfo=dt.UTC)


@pytest.fixture
def home(settings: Settings, tmp_path: Path) -> Settings:
    """The session's settings with an empty OUTCOMES_HOME of the test's own."""
    return dataclasses.replace(settings, home=tmp_path / "home")


def build_id(days_ago: float) -> str:
    at = NOW - dt.timedelta(days=days_ago)
    return "b" + at.strftime("%Y%m%dT%H%M%S") + f".{at.microsecond:06d}Z"


def snapshot(settings: Settings, days_ago: float, as_of: str | None = None) -> Path:
    """A snapshot as a nightly refresh writes it (it becomes latest), built ``days_ago``."""
    made = NOW - dt.timedelta(days=days_ago)
    info = {
        "build_id": build_id(days_ago),
        "as_of_date": as_of or made.date().isoformat(),
        "gate": "passed",
        "rendered_at": made.isoformat(timespec="seconds"),
        "charts": [],
        "lock": None,
    }
    return write_snapshot(settings, f"<html>{'x' * 1000} {info['build_id']}</html>", info)


def names(settings: Settings) -> set[str]:
    return {s.name for s in list_snapshots(settings)}


# -- dashboard snapshots ----------------------------------------------------------------------------


def test_old_snapshots_go_with_their_sidecars_and_the_bytes_are_counted(home: Settings) -> None:
    old = [snapshot(home, 500), snapshot(home, 401)]
    young = [snapshot(home, 399), snapshot(home, 10), snapshot(home, 1)]
    expected_bytes = sum(p.stat().st_size + p.with_suffix(".json").stat().st_size for p in old)
    pruned = prune_dashboards(home.dashboards_dir, now=NOW, retention_days=400)
    assert sorted(pruned.deleted) == sorted(p.stem for p in old)
    assert (pruned.files, pruned.bytes, pruned.kept) == (4, expected_bytes, 3)
    assert names(home) == {p.name for p in young}
    assert not any(p.exists() or p.with_suffix(".json").exists() for p in old)
    assert latest(home) == young[-1]
    # nothing left to do the next night
    assert prune_dashboards(home.dashboards_dir, now=NOW, retention_days=400).deleted == []


def test_the_latest_target_the_newest_and_locked_as_of_dates_are_kept(home: Settings) -> None:
    shown = snapshot(home, 700)  # latest.html is moved back to it (an operator pointed it there)
    locked = snapshot(home, 600, as_of="2025-10-01")
    also_locked = snapshot(home, 550, as_of="2025-10-01")  # the same as-of date rendered again
    gone = snapshot(home, 500)
    newest = snapshot(home, 450)  # older than the window, but the newest there is
    point_latest(home, shown)
    pruned = prune_dashboards(home.dashboards_dir, now=NOW, retention_days=400, locked_as_of={"2025-10-01"})
    assert pruned.deleted == [gone.stem]
    assert names(home) == {shown.name, locked.name, also_locked.name, newest.name}
    assert latest(home) == shown and (home.dashboards_dir / LATEST).is_symlink()


def test_links_are_never_followed_nor_deleted(home: Settings, tmp_path: Path) -> None:
    keep = snapshot(home, 1)
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    target = outside / "2020-01-01_b20200101T050000.000000Z.html"
    target.write_text("not ours")
    planted = home.dashboards_dir / target.name
    planted.symlink_to(target)  # an old snapshot name, but a link out of the folder
    (home.dashboards_dir / "2020-01-01_b20200101T050000.000000Z.json").symlink_to(target)
    pruned = prune_dashboards(home.dashboards_dir, now=NOW, retention_days=400)
    assert pruned.deleted == [] and pruned.bytes == 0
    assert planted.is_symlink() and target.read_text() == "not ours" and keep.exists()


def test_a_latest_link_out_of_the_folder_protects_nothing_in_it(home: Settings, tmp_path: Path) -> None:
    old = snapshot(home, 800)
    snapshot(home, 1)
    link = home.dashboards_dir / LATEST
    link.unlink()
    link.symlink_to(tmp_path / "elsewhere" / old.name)  # same name, another folder
    assert prune_dashboards(home.dashboards_dir, now=NOW, retention_days=400).deleted == [old.stem]


def test_retention_days_come_from_the_environment() -> None:
    assert retention_days(DASHBOARD_RETENTION_ENV, {}) == 400
    assert retention_days(GX_RETENTION_ENV, {}) == 90
    assert retention_days(DASHBOARD_RETENTION_ENV, {DASHBOARD_RETENTION_ENV: "30"}) == 30
    for bad in ("0", "-1", "a year"):
        with pytest.raises(ValueError, match=DASHBOARD_RETENTION_ENV):
            retention_days(DASHBOARD_RETENTION_ENV, {DASHBOARD_RETENTION_ENV: bad})


# -- the maintenance task, with a lock in a real warehouse ---------------------------------------------


@pytest.fixture
def locked(warehouse: Warehouse) -> Iterator[Warehouse]:
    """A scratch warehouse whose ledger records a lock of a build as of 2025-10-01."""
    with scratch_database(warehouse, f"{warehouse.database}_ret_{secrets.token_hex(3)}") as scratch:
        with psycopg.connect(scratch.url()) as conn:
            conn.execute("set local role outcomes_owner")
            build = build_id(600)
            conn.execute(
                "insert into meta.gate_runs (build_id, as_of_date, status, expectations, failed_errors, "
                "failed_warnings, seconds) values (%s, '2025-10-01', 'passed', 1, 0, 0, 1)",
                (build,),
            )
            conn.execute(
                "insert into meta.published_builds (build_id, as_of_date, deliveries, gate_result, "
                "gate_summary) values (%s, '2025-10-01', '{}', 'passed', '{}')",
                (build,),
            )
            conn.execute(
                "insert into meta.locks (name, schema_name, build_id, as_of_date) "
                "values ('12m-lock', 'lock_12m_lock', %s, '2025-10-01')",
                (build,),
            )
        yield scratch


def test_prune_state_keeps_the_dashboard_of_a_locked_as_of_date(
    home: Settings, locked: Warehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    lock_evidence = snapshot(home, 600, as_of="2025-10-01")
    gone = snapshot(home, 420)
    kept = snapshot(home, 30)
    monkeypatch.delenv(DASHBOARD_RETENTION_ENV, raising=False)  # the default: 400 days
    summary = prune_state(home, locked, NOW)
    assert summary["dashboards"]["deleted"] == 1 and summary["dashboards"]["kept"] == 2
    assert summary["bytes_freed"] == summary["dashboards"]["bytes"] > 0
    assert summary["gx_results"] == {"deleted": 0, "files": 0, "bytes": 0, "kept": 0, "docs_rebuilt": False}
    assert names(home) == {lock_evidence.name, kept.name} and not gone.exists()
    monkeypatch.setenv(DASHBOARD_RETENTION_ENV, "7")
    assert prune_state(home, locked, NOW)["dashboards"]["deleted"] == 0  # lock and newest stay


# -- Great Expectations validation results -------------------------------------------------------------


def gx_runs(settings: Settings, days_ago: list[float]) -> dict[float, str]:
    """A real GX file context where the gate keeps its own, with two suites validated once per
    ``days_ago`` (run name a build id, run time that day) and Data Docs built as the gate does."""
    import great_expectations as gx
    import pandas as pd
    from great_expectations.core.run_identifier import RunIdentifier

    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    settings.gx_dir.mkdir(parents=True, exist_ok=True)
    context = gx.get_context(mode="file", project_root_dir=str(settings.gx_dir))
    source = context.data_sources.add_pandas("frames")
    definitions = []
    for name, column in (("participants", "participant_id"), ("months", "month_index")):
        batch = source.add_dataframe_asset(name).add_batch_definition_whole_dataframe("whole")
        suite = context.suites.add(
            gx.ExpectationSuite(
                name=name, expectations=[gx.expectations.ExpectColumnValuesToNotBeNull(column=column)]
            )
        )
        definitions.append(
            context.validation_definitions.add(gx.ValidationDefinition(name=name, data=batch, suite=suite))
        )
    frame = pd.DataFrame({"participant_id": ["HUS-001", "HUS-002"], "month_index": [0, 1]})
    runs = {}
    for days in days_ago:
        checkpoint = context.checkpoints.add_or_update(
            gx.Checkpoint(name="quality_gate", validation_definitions=definitions, actions=[])
        )
        run_time = NOW - dt.timedelta(days=days)
        result = checkpoint.run(
            batch_parameters={"dataframe": frame},
            run_id=RunIdentifier(run_name=build_id(days), run_time=run_time),
        )
        context.build_data_docs(resource_identifiers=list(result.run_results))
        runs[days] = build_id(days)
    return runs


def files_of(root: Path, needle: str) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and needle in str(p)]


@pytest.mark.slow  # imports Great Expectations (seconds)
def test_old_gx_results_go_with_their_pages_and_the_data_docs_stay_consistent(home: Settings) -> None:
    runs = gx_runs(home, [200, 120, 30, 1])
    _project, store, site = gx_paths(home)
    index = site / "index.html"
    assert all(run in index.read_text() for run in runs.values())
    old = [runs[200], runs[120]]
    expected_bytes = sum(p.stat().st_size for run in old for p in files_of(store, run) + files_of(site, run))

    pruned = prune_gx_results(home, now=NOW, retention_days=90)
    assert (len(pruned.deleted), pruned.files, pruned.kept) == (4, 8, 4)  # 2 runs x 2 suites, + pages
    assert pruned.bytes == expected_bytes and pruned.docs_rebuilt
    text = index.read_text()
    for run in old:
        assert run not in text and not files_of(store, run) and not files_of(site, run)
        assert not [p for p in store.rglob(f"*{run}*")]  # no empty folders left behind
    for run in (runs[30], runs[1]):
        assert run in text and len(files_of(store, run)) == 2 and len(files_of(site, run)) == 2
    assert missing_index_links(site) == []
    assert (store / ".ge_store_backend_id").exists()

    # nothing to do: no rebuild (no GX import) the next night
    again = prune_gx_results(home, now=NOW, retention_days=90)
    assert (again.deleted, again.docs_rebuilt) == ([], False)

    # a night interrupted after deleting, before rebuilding, heals: the stale index is rebuilt
    for path in files_of(store, runs[30]) + files_of(site, runs[30]):
        path.unlink()
    assert missing_index_links(site)
    healed = prune_gx_results(home, now=NOW, retention_days=90)
    assert healed.deleted == [] and healed.docs_rebuilt
    assert missing_index_links(site) == [] and runs[30] not in index.read_text()

    # however old, the newest run stays (the Data Docs always show the last gate)
    last = prune_gx_results(home, now=NOW + dt.timedelta(days=1000), retention_days=90)
    assert last.deleted == [] and runs[1] in index.read_text() and len(files_of(store, runs[1])) == 2


def test_gx_results_behind_a_link_are_left_alone(home: Settings, tmp_path: Path) -> None:
    _project, store, site = gx_paths(home)
    outside = tmp_path / "elsewhere" / "b20200101T050000.000000Z" / "20200101T050100.000000Z"
    outside.mkdir(parents=True)
    (outside / "warehouse-x.json").write_text("{}")
    (store / "x").mkdir(parents=True)
    (store / "x" / "b20200101T050000.000000Z").symlink_to(outside.parent, target_is_directory=True)
    mine = store / "y" / "b20200102T050000.000000Z" / "20200102T050100.000000Z"
    mine.mkdir(parents=True)
    (mine / "warehouse-y.json").write_text("{}")
    newer = store / "y" / build_id(1) / "20270531T003000.000000Z"
    newer.mkdir(parents=True)
    (newer / "warehouse-y.json").write_text("{}")
    pruned = prune_gx_results(home, now=NOW, retention_days=90)  # no GX project: no rebuild
    assert pruned.deleted == ["y/b20200102T050000.000000Z/20200102T050100.000000Z/warehouse-y.json"]
    assert (outside / "warehouse-x.json").exists() and (store / "x" / "b20200101T050000.000000Z").is_symlink()
    assert not pruned.docs_rebuilt and site.exists() is False
