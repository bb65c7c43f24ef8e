"""Retention of the state files under ``$OUTCOMES_HOME``: dashboard snapshots and GX results.

``warehouse_maintenance.prune_state`` runs :func:`prune_state` every night.

**Dashboard snapshots** (``dashboards/<as-of>_<build id>.html`` and the ``.json`` sidecar, see
:mod:`outcomes.dashboard.snapshots`) older than ``OUTCOMES_DASHBOARD_RETENTION_DAYS`` (default
400: a year's comparison, "what did the dashboard say a year ago?", stays possible with a month to
spare) are deleted, except

- the snapshot ``latest.html`` points to,
- the newest snapshot,
- every snapshot of an as-of date a database lock records (``meta.locks``): a lock's dashboard is
  evidence of what was frozen.

A snapshot's age is the time of the build in its name (``b20261122T050012.123456Z``): when that
dashboard was made and shown, also for a rebuild of an old as-of date. Without one, its as-of date;
without that, the file's mtime.

**Great Expectations validation results** of the gate's file context (``gx/gx/uncommitted/
validations/<suite>/<run name = build id>/<run time>/<batch>.json``) older than
``OUTCOMES_GX_RETENTION_DAYS`` (default 90) are deleted with their Data Docs pages (the same path
under ``data_docs/local_site/validations/``, ``.html``); the newest run is always kept. Age: the run
time in the path, else the run name (a build id), else the mtime. The Data Docs index lists every
result, so after a deletion it is rebuilt by GX itself (``build_data_docs``, which also drops any
page whose result is gone) from what remains: only the newest run's pages are re-rendered, not the
whole site. The same rebuild runs whenever the index links to a page that is missing, so a run
interrupted between deleting and rebuilding heals on the next night. ``meta.gate_results`` keeps
every expectation's result for good: the files are the browsable copy.

Only regular files inside those folders are ever deleted: a symbolic link is never followed (nor
deleted), and nothing resolving outside the folder is touched.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from outcomes.dashboard.snapshots import LATEST, NAME
from outcomes.settings import Settings, setting

if TYPE_CHECKING:
    from outcomes.warehouse.connection import Warehouse

log = logging.getLogger(__name__)

DASHBOARD_RETENTION_ENV = "OUTCOMES_DASHBOARD_RETENTION_DAYS"
GX_RETENTION_ENV = "OUTCOMES_GX_RETENTION_DAYS"

#: The UTC time in a build id (``b20261122T050012.123456Z``) or a GX run time (``20261122T050112.654321Z``).
STAMP = re.compile(r"^b?(\d{8}T\d{6})(?:\.\d+)?Z")
#: A Data Docs index links each result page as ``validations/<suite>/<run>/<time>/<batch>.html``.
INDEX_LINK = re.compile(r"""validations/[^'"<>\s]+?\.html""")


def retention_days(name: str, env: dict[str, str] | None = None) -> int:
    """Days from the setting ``name`` (a whole number >= 1), else its declared default."""
    return int(setting(name, env))


def stamp_time(text: str) -> dt.datetime | None:
    """The UTC time a build id or GX run time starts with, or None."""
    match = STAMP.match(text)
    if match is None:
        return None
    try:
        return dt.datetime.strptime(match.group(1), "%Y%m%dT%H%M%S").replace(tzinfo=dt.UTC)
    except ValueError:
        return None


def _mtime(path: Path) -> dt.datetime:
    return dt.datetime.fromtimestamp(path.lstat().st_mtime, tz=dt.UTC)


def _regular_inside(root: Path, path: Path) -> bool:
    """``path`` is a regular file (not a link) that really lies under ``root``."""
    if path.is_symlink() or not path.is_file():
        return False
    real_root = os.path.realpath(root)
    return os.path.realpath(path).startswith(real_root + os.sep)


def _delete(root: Path, path: Path) -> int | None:
    """Delete ``path`` if it is a regular file inside ``root``; the bytes freed, or None if not."""
    if not _regular_inside(root, path):
        return None
    size = path.lstat().st_size
    path.unlink()
    return size


def _remove_empty_dirs(root: Path) -> None:
    """Remove empty folders below ``root`` (bottom up, never ``root``, never through a link)."""
    if not root.is_dir() or root.is_symlink():
        return
    for folder, dirs, _files in os.walk(root, topdown=False, followlinks=False):
        for name in dirs:
            path = Path(folder) / name
            if path.is_symlink():
                continue
            with contextlib.suppress(OSError):  # not empty
                path.rmdir()


@dataclass
class Pruned:
    """What one pruning deleted and kept."""

    deleted: list[str] = field(default_factory=list)  # snapshot names or result paths
    files: int = 0
    bytes: int = 0
    kept: int = 0
    docs_rebuilt: bool = False

    def summary(self) -> dict[str, Any]:
        return {
            "deleted": len(self.deleted),
            "files": self.files,
            "bytes": self.bytes,
            "kept": self.kept,
            "docs_rebuilt": self.docs_rebuilt,
        }


# -- dashboard snapshots --------------------------------------------------------------------------


@dataclass(frozen=True)
class SnapshotFile:
    stem: str  # <as-of>_<build id>[_n]
    as_of_date: str
    made_at: dt.datetime


def _snapshot_files(folder: Path) -> list[SnapshotFile]:
    """Every snapshot in ``folder`` by its name (its ``.html``, or a ``.json`` sidecar without one)."""
    stems: dict[str, SnapshotFile] = {}
    for path in folder.iterdir():
        if path.name.startswith(".") or path.suffix not in (".html", ".json") or path.is_symlink():
            continue
        match = NAME.match(path.with_suffix(".html").name)
        if match is None or path.stem in stems:
            continue
        as_of, build_id = match.group(1), match.group(2)
        made_at = stamp_time(build_id)
        if made_at is None:
            try:
                made_at = dt.datetime.fromisoformat(as_of).replace(tzinfo=dt.UTC) + dt.timedelta(days=1)
            except ValueError:
                made_at = _mtime(path)
        stems[path.stem] = SnapshotFile(path.stem, as_of, made_at)
    return sorted(stems.values(), key=lambda s: (s.made_at, s.stem))


def _latest_stem(folder: Path) -> str | None:
    """The snapshot ``latest.html`` points to (a link inside ``folder``), or None."""
    link = folder / LATEST
    if not link.is_symlink():
        return None
    target = link.readlink()
    if not target.is_absolute():
        target = folder / target
    if os.path.realpath(target.parent) != os.path.realpath(folder):
        return None  # points elsewhere: nothing in this folder is its target
    return target.stem


def prune_dashboards(
    folder: Path, *, now: dt.datetime, retention_days: int, locked_as_of: Iterable[str] = ()
) -> Pruned:
    """Delete the snapshots in ``folder`` older than ``retention_days`` at ``now`` (both files of
    each), keeping the ``latest.html`` target, the newest snapshot and the locked as-of dates."""
    pruned = Pruned()
    if not folder.is_dir():
        return pruned
    snapshots = _snapshot_files(folder)
    protected = {_latest_stem(folder)}
    if snapshots:
        protected.add(snapshots[-1].stem)
    locked = set(locked_as_of)
    cutoff = now - dt.timedelta(days=retention_days)
    for snapshot in snapshots:
        if snapshot.made_at >= cutoff or snapshot.stem in protected or snapshot.as_of_date in locked:
            pruned.kept += 1
            continue
        freed = [_delete(folder, folder / f"{snapshot.stem}{suffix}") for suffix in (".html", ".json")]
        pruned.files += sum(1 for size in freed if size is not None)
        pruned.bytes += sum(size or 0 for size in freed)
        if any(size is not None for size in freed):
            pruned.deleted.append(snapshot.stem)
    return pruned


# -- Great Expectations validation results --------------------------------------------------------


def gx_paths(settings: Settings) -> tuple[Path, Path, Path]:
    """The GX project folder, its validation results store and its Data Docs site."""
    project = settings.gx_dir / "gx"
    return project, project / "uncommitted" / "validations", settings.gx_data_docs_dir


@dataclass(frozen=True)
class ResultFile:
    path: Path
    relative: Path  # <suite>/<run name>/<run time>/<batch>.json
    run: tuple[str, str]  # (run name, run time)
    run_at: dt.datetime


def _result_files(store: Path) -> list[ResultFile]:
    found = []
    for folder, _dirs, files in os.walk(store, followlinks=False):
        for name in files:
            path = Path(folder) / name
            if name.startswith(".") or not name.endswith(".json") or path.is_symlink():
                continue
            relative = path.relative_to(store)
            if len(relative.parts) < 4:  # <suite...>/<run name>/<run time>/<batch>.json
                continue
            run_name, run_time = relative.parts[-3], relative.parts[-2]
            run_at = stamp_time(run_time) or stamp_time(run_name) or _mtime(path)
            found.append(ResultFile(path, relative, (run_name, run_time), run_at))
    return sorted(found, key=lambda r: (r.run_at, r.run))


def missing_index_links(site: Path) -> list[str]:
    """Result pages the Data Docs index links to that do not exist."""
    index = site / "index.html"
    if not index.is_file():
        return []
    text = index.read_text(encoding="utf-8", errors="replace")
    return sorted({link for link in INDEX_LINK.findall(text) if not (site / link).exists()})


def prune_gx_results(settings: Settings, *, now: dt.datetime, retention_days: int) -> Pruned:
    """Delete validation results older than ``retention_days`` and their Data Docs pages, keeping
    the newest run; rebuild the Data Docs index when anything was deleted (or it is stale)."""
    project, store, site = gx_paths(settings)
    pruned = Pruned()
    if not store.is_dir():
        return pruned
    results = _result_files(store)
    newest_run = results[-1].run if results else None
    cutoff = now - dt.timedelta(days=retention_days)
    for result in results:
        if result.run_at >= cutoff or result.run == newest_run:
            pruned.kept += 1
            continue
        page = site / "validations" / result.relative.with_suffix(".html")
        freed = [_delete(store, result.path), _delete(site, page)]
        pruned.files += sum(1 for size in freed if size is not None)
        pruned.bytes += sum(size or 0 for size in freed)
        pruned.deleted.append(str(result.relative))
    _remove_empty_dirs(store)
    _remove_empty_dirs(site / "validations")
    stale = missing_index_links(site)
    if (pruned.deleted or stale) and (project / "great_expectations.yml").is_file():
        keep = [r.relative for r in results if r.run == newest_run]
        rebuild_data_docs(settings, keep)
        pruned.docs_rebuilt = True
    return pruned


def rebuild_data_docs(settings: Settings, newest: list[Path]) -> None:
    """Rebuild the Data Docs index from the results that remain (GX drops pages without a result),
    re-rendering only the ``newest`` results' pages. Imports GX (seconds): only after a deletion."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    for name in ("great_expectations", "great_expectations.core", "great_expectations.datasource"):
        logging.getLogger(name).setLevel(logging.WARNING)
    import great_expectations as gx
    from great_expectations.data_context.types.resource_identifiers import ValidationResultIdentifier

    import outcomes.quality.suite  # noqa: F401 (registers the gate's own expectation types for rendering)

    context = gx.get_context(mode="file", project_root_dir=str(settings.gx_dir))
    wanted = {path.with_suffix("").parts for path in newest}
    keys = [
        key
        for key in context.validation_results_store.list_keys()
        if isinstance(key, ValidationResultIdentifier) and _key_parts(key) in wanted
    ]
    # a non-empty list renders just those pages; an empty one would render every page (none left)
    context.build_data_docs(resource_identifiers=keys)
    log.info("Data Docs index rebuilt from the remaining validation results")


def _key_parts(key: Any) -> tuple[str, ...]:
    return tuple(str(part) for part in key.to_tuple())


# -- the maintenance task -------------------------------------------------------------------------


def locked_as_of_dates(warehouse: Warehouse) -> set[str]:
    """The as-of dates of every database lock (``meta.locks``), read as the analyst role."""
    import psycopg

    from outcomes.warehouse.connection import Role

    with psycopg.connect(warehouse.url(), application_name="outcomes-retention") as conn:
        conn.execute(f"set role {Role.ANALYST}")
        if conn.execute("select to_regclass('meta.locks')").fetchone() == (None,):
            return set()
        rows = conn.execute("select distinct as_of_date from meta.locks").fetchall()
    return {row[0].isoformat() for row in rows}


def prune_state(settings: Settings, warehouse: Warehouse, now: dt.datetime | None = None) -> dict[str, Any]:
    """Prune the dashboard snapshots and the GX results past their retention; returns counts."""
    now = now or dt.datetime.now(dt.UTC)
    dashboard_days = retention_days(DASHBOARD_RETENTION_ENV)
    gx_days = retention_days(GX_RETENTION_ENV)
    dashboards = prune_dashboards(
        settings.dashboards_dir,
        now=now,
        retention_days=dashboard_days,
        locked_as_of=locked_as_of_dates(warehouse),
    )
    results = prune_gx_results(settings, now=now, retention_days=gx_days)
    log.info(
        "dashboards: %d snapshot(s) older than %d days deleted (%d files, %d bytes), %d kept",
        len(dashboards.deleted),
        dashboard_days,
        dashboards.files,
        dashboards.bytes,
        dashboards.kept,
    )
    log.info(
        "GX: %d validation result(s) older than %d days deleted (%d files, %d bytes), %d kept%s",
        len(results.deleted),
        gx_days,
        results.files,
        results.bytes,
        results.kept,
        "; Data Docs index rebuilt" if results.docs_rebuilt else "",
    )
    return {
        "dashboards": dashboards.summary(),
        "gx_results": results.summary(),
        "bytes_freed": dashboards.bytes + results.bytes,
    }
