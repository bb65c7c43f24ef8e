"""The parse that prepares the build DAG's manifest (``ensure_manifest``) seeds the partial-parse
cache of the DAG's ``dbt_build`` task, so the first build after a change of the project parses
nothing again (bench/README.md, "Parsing once, grain by index, a leaner gate").

The seeded file is tried the way Cosmos uses it: in a fresh copy of the project, with the file in
the copy's ``target/`` and the arguments Cosmos gives dbt; dbt's own record of the parse
(``perf_info.json``) says whether it read the file or parsed the whole project.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest

from outcomes.settings import Settings
from outcomes.transform.dbt import (
    BUILD_CACHE,
    COSMOS_PARSE_ARGS,
    PARTIAL_PARSE,
    dbt_environ,
    dbt_task_cache,
    ensure_manifest,
    manifest_is_stale,
)
from outcomes.warehouse.connection import Warehouse

pytestmark = pytest.mark.slow


def _parse_like_cosmos(settings: Settings, warehouse: Warehouse, cache: Path, workdir: Path) -> dict:
    """``dbt parse`` in a fresh copy of the project with ``cache``'s partial-parse file, as Cosmos
    runs a task; dbt's perf_info.json of that parse."""
    from dbt.cli.main import dbtRunner

    from outcomes.transform.dbt import _environ

    project = workdir / "project"
    shutil.copytree(settings.dbt_project_dir, project, ignore=shutil.ignore_patterns("target", "logs"))
    (project / "target").mkdir()
    if (cache / "target" / PARTIAL_PARSE).exists():
        shutil.copy(cache / "target" / PARTIAL_PARSE, project / "target" / PARTIAL_PARSE)
    args = ["parse", "--project-dir", str(project), "--profiles-dir", str(settings.dbt_project_dir)]
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
