"""Dated dashboard snapshots under ``$OUTCOMES_HOME/dashboards`` and the ``latest.html`` pointer.

Each refresh writes ``<as-of>_<build id>.html`` (self-contained, opens offline) and a sidecar
``.json`` (build, as-of, gate result, charts, when), then moves ``latest.html`` to it with one
atomic rename of a symbolic link. A refresh that fails half-way leaves ``latest.html`` where it
was; only a published build is ever rendered, so a blocked gate leaves yesterday's snapshot as
latest.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from outcomes.runners import faults
from outcomes.settings import Settings, setting

LATEST = "latest.html"
NAME = re.compile(r"^(\d{4}-\d{2}-\d{2})_(b[0-9T.]+Z)(?:_(\d+))?\.html$")


@dataclass(frozen=True)
class Snapshot:
    path: Path
    as_of_date: str
    build_id: str
    gate: str
    rendered_at: str
    charts: list[str]
    lock: str | None

    @property
    def name(self) -> str:
        return self.path.name


def snapshot_name(as_of: str, build_id: str) -> str:
    return f"{as_of}_{build_id}.html"


def write_snapshot(settings: Settings, document: str, info: dict[str, Any]) -> Path:
    """Write one snapshot and its sidecar, then point ``latest.html`` at it; returns its path."""
    folder = settings.dashboards_dir
    folder.mkdir(parents=True, exist_ok=True)
    remove_unfinished(settings)  # one run at a time: a temporary file here is a killed run's
    path = folder / snapshot_name(info["as_of_date"], info["build_id"])
    if path.exists():  # the same build rendered again (e.g. with a lock to compare): keep both
        n = 2
        while (candidate := path.with_name(f"{path.stem}_{n}.html")).exists():
            n += 1
        path = candidate
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(document, encoding="utf-8")
    tmp.with_suffix(".json.tmp").write_text(json.dumps(info, indent=2, default=str), encoding="utf-8")
    faults.point("dashboard.before_rename")
    tmp.with_suffix(".json.tmp").replace(path.with_suffix(".json"))
    tmp.replace(path)
    point_latest(settings, path)
    return path


def point_latest(settings: Settings, path: Path) -> None:
    """Move ``latest.html`` to ``path`` atomically (a relative symlink renamed over the old one)."""
    folder = settings.dashboards_dir
    link = folder / f".{LATEST}.{os.getpid()}"
    link.unlink(missing_ok=True)
    link.symlink_to(path.name)
    link.replace(folder / LATEST)


def latest(settings: Settings) -> Path | None:
    """The snapshot ``latest.html`` points at, or None before the first refresh."""
    link = settings.dashboards_dir / LATEST
    if not link.is_symlink() and not link.exists():
        return None
    target = link.resolve()
    return target if target.exists() else None


def list_snapshots(settings: Settings) -> list[Snapshot]:
    """Every snapshot, oldest first (by the time it was rendered)."""
    found = []
    folder = settings.dashboards_dir
    if not folder.is_dir():
        return []
    for path in folder.glob("*.html"):
        match = NAME.match(path.name)
        if match is None:
            continue
        try:
            info = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            info = {}
        found.append(
            Snapshot(
                path=path,
                as_of_date=match.group(1),
                build_id=match.group(2),
                gate=str(info.get("gate", "?")),
                rendered_at=str(info.get("rendered_at", "?")),
                charts=list(info.get("charts", [])),
                lock=info.get("lock"),
            )
        )
    return sorted(found, key=lambda s: (s.rendered_at, s.name))


def refresh(settings: Settings, warehouse: Any, compare_lock: str | None = None) -> Path:
    """Render the published marts into a new snapshot and make it the latest; returns its path."""
    from outcomes.dashboard import data as dashboard_data
    from outcomes.dashboard.render import render

    if compare_lock is None:
        compare_lock = default_lock(warehouse)
    content = dashboard_data.read(warehouse, "marts", compare_lock=compare_lock)
    if content.build is None:
        raise RuntimeError("nothing is published yet: the dashboard renders published marts only")
    document, charts, printed = render(content)
    info = {
        "build_id": content.build["build_id"],
        "as_of_date": str(content.build["as_of_date"]),
        "gate": (content.gate or {}).get("status", "unknown"),
        "rendered_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "charts": charts,
        "lock": content.lock.name if content.lock else None,
        "printed": printed,  # every count the page prints (value, <5 or ×), by study
    }
    return write_snapshot(settings, document, info)


def default_lock(warehouse: Any) -> str | None:
    """The lock to show beside today: ``OUTCOMES_DASHBOARD_LOCK``, else the newest lock, if any."""
    chosen = setting("OUTCOMES_DASHBOARD_LOCK")
    if chosen:
        return chosen
    from outcomes.warehouse.locks import list_locks

    locks = list_locks(warehouse)
    return locks[-1].name if locks else None


def remove_unfinished(settings: Settings) -> int:
    """Remove the temporary files of a snapshot whose writing was cut short (never listed, never
    the latest); returns how many."""
    removed = 0
    for path in settings.dashboards_dir.glob(".*.tmp"):
        path.unlink(missing_ok=True)
        removed += 1
    return removed


def remove_earlier_builds(settings: Settings, build_id: str) -> int:
    """Remove every snapshot not of ``build_id`` (its page and its sidecar); returns the files
    removed. An erasure does this once its build has rendered the dashboard without the erased
    people: a snapshot of before showed numbers that counted them, and set beside today's it
    would tell what was theirs."""
    current = latest(settings)
    if current is None or (match := NAME.match(current.name)) is None or match.group(2) != build_id:
        raise RuntimeError(f"the latest dashboard snapshot is not of build {build_id}: render it first")
    removed = remove_unfinished(settings)
    for snapshot in list_snapshots(settings):
        if snapshot.build_id == build_id:
            continue
        for path in (snapshot.path.with_suffix(".json"), snapshot.path):
            if path.exists():
                path.unlink()
                removed += 1
    return removed
