"""The parse that prepares the build DAG's manifest (``ensure_manifest``) seeds the partial-parse
cache of the DAG's ``dbt_build`` task, so the first build after a change of the project parses
nothing again (bench/README.md, "Parsing once, grain by index, a leaner gate").

The seeded file is tried the way Cosmos uses it: in a fresh copy of the project, with the file in
the copy's ``target/`` and the arguments Cosmos gives dbt; dbt's own record of the parse
(``perf_info.json``) says whether it read the file or parsed the whole project.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import shutil
from pathlib import Path

import pytest

from outcomes.settings import Settings
from outcomes.transform.dbt import (
    AFTER_PUBLISH_CACHE,
    AFTER_PUBLISH_VARS,
    BUILD_CACHE,
    COSMOS_PARSE_ARGS,
    MANIFEST_PENDING,
    PARTIAL_PARSE,
    dbt_environ,
    dbt_task_cache,
    ensure_manifest,
    manifest_is_stale,
    start_manifest,
)
from outcomes.warehouse.connection import Warehouse

pytestmark = pytest.mark.slow


def _parse_like_cosmos(
    settings: Settings, warehouse: Warehouse, cache: Path, workdir: Path, dbt_vars: dict | None = None
) -> dict:
    """``dbt parse`` in a fresh copy of the project with ``cache``'s partial-parse file, as Cosmos
    runs a task (with ``dbt_vars``, as the steps after the publish); dbt's perf_info.json of that
    parse."""
    from dbt.cli.main import dbtRunner

    from outcomes.transform.dbt import _environ

    project = workdir / "project"
    shutil.copytree(settings.dbt_project_dir, project, ignore=shutil.ignore_patterns("target", "logs"))
    (project / "target").mkdir()
    if (cache / "target" / PARTIAL_PARSE).exists():
        shutil.copy(cache / "target" / PARTIAL_PARSE, project / "target" / PARTIAL_PARSE)
    args = ["parse", "--project-dir", str(project), "--profiles-dir", str(settings.dbt_project_dir)]
    if dbt_vars:
        args += ["--vars", json.dumps(dbt_vars)]
    with _environ({**dbt_environ(warehouse), "OUTCOMES_AS_OF": "2026-11-21"}):
        result = dbtRunner().invoke([*args, *COSMOS_PARSE_ARGS, "--log-path", str(workdir / "logs")])
    assert result.success, result.exception
    return json.loads((project / "target" / "perf_info.json").read_text())


def test_the_manifest_parse_seeds_the_build_task_cache(
    settings: Settings, warehouse: Warehouse, tmp_path: Path
) -> None:
    own = dataclasses.replace(settings, home=tmp_path / "home")
    cache = dbt_task_cache(own, BUILD_CACHE)
    assert manifest_is_stale(own)
    assert ensure_manifest(own, warehouse)
    assert (cache / "target" / PARTIAL_PARSE).exists()
    assert (cache / "target" / "manifest.json").exists()
    assert not manifest_is_stale(own)
    assert not ensure_manifest(own, warehouse)  # current: no parse

    seeded = _parse_like_cosmos(own, warehouse, cache, tmp_path / "seeded")
    # without the seed, the same parse reads every file of the project
    unseeded = _parse_like_cosmos(own, warehouse, tmp_path / "no-cache", tmp_path / "unseeded")
    assert unseeded["parsed_path_count"] == unseeded["path_count"] > 50
    # with it, dbt re-parses only the files that read the as-of date from the environment (the
    # date differs from the parse's: none was set there): 11 of 181 files today
    assert seeded["path_count"] == unseeded["path_count"]
    assert 0 < seeded["parsed_path_count"] < unseeded["path_count"] // 4, seeded


def test_the_parse_beside_the_run_seeds_both_caches(
    settings: Settings, warehouse: Warehouse, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``outcomes run`` parses a changed project in a child process (start_manifest) while the
    DAGs before the build run; the child uses the given settings, not the caller's environment,
    and seeds the caches of dbt_build and of the steps after the publish."""
    own = dataclasses.replace(settings, home=tmp_path / "home")
    monkeypatch.setenv("OUTCOMES_HOME", str(tmp_path / "elsewhere"))  # must not be where it parses
    job = start_manifest(own, warehouse, dt.date(2026, 11, 21))
    assert job is not None
    assert os.environ[MANIFEST_PENDING] == str(job.process.pid)  # a new home: no manifest yet
    # meanwhile a DAG run parses every DAG file of the home (dag.test syncs the whole bundle): the
    # build DAG's file defines no DAG yet, and nothing is an import error
    from airflow.dag_processing.dagbag import DagBag

    monkeypatch.setenv("OUTCOMES_HOME", str(own.home))
    during = DagBag(dag_folder=str(own.dags_folder))
    assert not own.dbt_manifest.exists(), "the parse ended before the DAG files were read"
    assert during.import_errors == {}
    assert "warehouse_maintenance" in during.dag_ids and "build_outcomes" not in during.dag_ids
    job.wait()
    assert MANIFEST_PENDING not in os.environ
    after = DagBag(dag_folder=str(own.dags_folder))
    assert after.import_errors == {} and "build_outcomes" in after.dag_ids
    monkeypatch.setenv("OUTCOMES_HOME", str(tmp_path / "elsewhere"))
    assert not (tmp_path / "elsewhere").exists()
    assert not manifest_is_stale(own)
    assert start_manifest(own, warehouse) is None  # current: no child at all
    for name in (BUILD_CACHE, AFTER_PUBLISH_CACHE):
        assert (dbt_task_cache(own, name) / "target" / PARTIAL_PARSE).exists(), name
    # the scratch target of the second parse is gone; the manifest the DAG reads has no vars
    assert {p.name for p in dbt_task_cache(own, BUILD_CACHE).parent.iterdir()} == {
        BUILD_CACHE,
        AFTER_PUBLISH_CACHE,
    }
    nodes = json.loads(own.dbt_manifest.read_text())["nodes"].values()
    (months,) = [n for n in nodes if n["name"] == "fct_participant_months"]
    assert months["schema"].endswith("marts_candidate")  # the build's manifest: no vars

    # snapshot_history's parse (the vars of the steps after the publish) reads the seed
    after = dbt_task_cache(own, AFTER_PUBLISH_CACHE)
    seeded = _parse_like_cosmos(own, warehouse, after, tmp_path / "after", AFTER_PUBLISH_VARS)
    assert 0 <= seeded["parsed_path_count"] < seeded["path_count"] // 4, seeded


def test_a_failed_parse_beside_the_run_says_why(
    settings: Settings, warehouse: Warehouse, tmp_path: Path
) -> None:
    project = tmp_path / "project"
    shutil.copytree(
        settings.project_dir / "dbt_project",
        project / "dbt_project",
        ignore=shutil.ignore_patterns("target", "logs"),
    )
    broken = project / "dbt_project" / "models" / "staging" / "trial" / "stg_trial__broken.sql"
    broken.write_text("select {{ ref('no_such_model') }}\n")
    own = dataclasses.replace(settings, home=tmp_path / "home", project_dir=project)
    job = start_manifest(own, warehouse)
    assert job is not None
    with pytest.raises(RuntimeError, match="no_such_model") as failed:
        job.wait()
    assert str(job.log) in str(failed.value)
    # nothing half-written: no manifest (there was none before), no scratch target left
    assert not own.dbt_manifest.exists()
    assert [p.name for p in own.dbt_target_dir.parent.iterdir() if "parse" in p.name] == []


def test_the_build_dag_waits_for_a_new_homes_parse_and_fails_without_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every DAG run parses every DAG file: beside a new home's first parse (MANIFEST_PENDING set
    by start_manifest in this process) the build DAG's file defines no DAG; without a parse
    under way a missing manifest is an import error, never silent."""
    from outcomes.transform.dag import build_outcomes_dag
    from outcomes.transform.dbt import MANIFEST_PENDING

    monkeypatch.setenv("OUTCOMES_HOME", str(tmp_path / "new-home"))
    monkeypatch.setenv(MANIFEST_PENDING, "12345")
    assert build_outcomes_dag(doc_md=None) is None
    monkeypatch.delenv(MANIFEST_PENDING)
    with pytest.raises(FileNotFoundError, match="outcomes dbt parse"):
        build_outcomes_dag(doc_md=None)
