"""Running the dbt project in-process (``dbtRunner``: dbt's import is paid once per process).

The profile (``dbt_project/profiles.yml``) reads only environment variables; :func:`dbt_environ`
derives them from the warehouse in use (embedded socket or ``OUTCOMES_WAREHOUSE_URL``), so no
credential is written anywhere.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from outcomes.settings import Settings
from outcomes.warehouse.connection import Warehouse, redact_key_values
from outcomes.warehouse.publish import CANDIDATE


def dbt_environ(warehouse: Warehouse, *, schema: str = CANDIDATE) -> dict[str, str]:
    """The ``OUTCOMES_DBT_*`` variables the profile reads, for ``warehouse``."""
    from sqlalchemy.engine import make_url

    url = make_url(warehouse.url())
    host = url.query.get("host") or url.host or "localhost"
    return {
        "OUTCOMES_DBT_HOST": str(host if isinstance(host, str) else host[0]),
        "OUTCOMES_DBT_PORT": str(url.port or 5432),
        "OUTCOMES_DBT_USER": url.username or "postgres",
        "OUTCOMES_DBT_PASSWORD": url.password or "",
        "OUTCOMES_DBT_DBNAME": url.database or warehouse.database,
        "OUTCOMES_DBT_SCHEMA": schema,
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    }


@contextmanager
def _environ(values: dict[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


@dataclass
class DbtOutcome:
    """What a dbt command did: success, and each node's status (counts only, safe to log)."""

    command: str
    success: bool
    statuses: dict[str, str] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)


def run_dbt(
    settings: Settings,
    warehouse: Warehouse,
    args: list[str],
    *,
    as_of: dt.date | None = None,
    marts_schema: str = CANDIDATE,
    with_vars: bool = True,
    target_dir: Path | None = None,
) -> DbtOutcome:
    """Run ``dbt <args>`` on the project against ``warehouse``, as of ``as_of`` (default today UTC).

    The marts build into ``marts_schema``: the candidate schema unless a step after a publish
    (snapshots, docs) reads the published ``marts``. ``with_vars=False`` passes no vars: the
    defaults of ``dbt_project.yml``, and the as-of date from ``OUTCOMES_AS_OF`` or today.
    ``target_dir`` replaces the project's target directory (``settings.dbt_target_dir``).
    """
    from dbt.cli.main import dbtRunner

    project = str(settings.dbt_project_dir)
    full = [
        *args,
        "--project-dir",
        project,
        "--profiles-dir",
        project,
        "--target-path",
        str(target_dir or settings.dbt_target_dir),
        "--log-path",
        str(settings.dbt_log_dir),
    ]
    takes_vars = {"build", "run", "test", "compile", "snapshot", "seed", "docs", "parse", "ls"}
    if with_vars and args and args[0] in takes_vars:
        day = as_of or dt.datetime.now(dt.UTC).date()
        full += ["--vars", json.dumps({"as_of": day.isoformat(), "marts_schema": marts_schema})]
    with _environ(dbt_environ(warehouse)):
        result = dbtRunner().invoke(full)
    outcome = DbtOutcome(command=" ".join(args), success=bool(result.success))
    for node in _results(result.result):
        name = getattr(getattr(node, "node", None), "unique_id", "?")
        status = str(getattr(node, "status", "?"))
        outcome.statuses[name] = status
        if status in {"error", "fail"}:
            # a unique index's refusal quotes the duplicated key: a participant's id, redacted
            outcome.failures.append(redact_key_values(f"{name}: {getattr(node, 'message', '')}"))
    if result.exception is not None:
        outcome.failures.append(redact_key_values(str(result.exception)))
    return outcome


def _results(result: Any) -> list[Any]:
    return list(getattr(result, "results", None) or [])


def manifest_is_stale(settings: Settings) -> bool:
    """True when the parsed manifest is missing or older than any file of the dbt project."""
    manifest = settings.dbt_manifest
    if not manifest.exists():
        return True
    built = manifest.stat().st_mtime
    return any(path.stat().st_mtime > built for path in project_files(settings))


def project_files(settings: Settings) -> list[Path]:
    """The dbt project's own files: everything under ``dbt_project/`` but dbt's output and logs."""
    project = settings.dbt_project_dir
    return sorted(
        path
        for path in project.rglob("*")
        if path.is_file() and not {"target", "logs", "dbt_packages"} & set(path.relative_to(project).parts)
    )


def project_fingerprint(settings: Settings) -> str:
    """sha256 of everything dbt docs describe: the dbt project's files (:func:`project_files`)
    and the warehouse migrations that shape the sources."""
    import hashlib

    from outcomes.warehouse.bootstrap import MIGRATIONS_DIR

    digest = hashlib.sha256()
    project = settings.dbt_project_dir
    for path in project_files(settings):
        digest.update(str(path.relative_to(project)).encode() + b"\0" + path.read_bytes() + b"\0")
    for path in sorted(MIGRATIONS_DIR.glob("versions/*.py")):
        digest.update(path.name.encode() + b"\0")
    return digest.hexdigest()


def docs_stamp(settings: Settings) -> Path:
    """Where the fingerprint of the project the current dbt docs were generated from is kept."""
    return settings.dbt_docs_dir.with_name("docs.project-sha256")


def docs_are_current(settings: Settings) -> bool:
    """True when dbt docs exist and were generated from the project as it is now."""
    stamp = docs_stamp(settings)
    return (
        (settings.dbt_docs_dir / "index.html").exists()
        and stamp.exists()
        and stamp.read_text().strip() == project_fingerprint(settings)
    )


# The build DAG's dbt tasks (transform/dag.py) keep Cosmos partial-parse caches here: one for
# `dbt_build`, one for the two steps after the publish (the same vars, marts_schema=marts).
BUILD_CACHE = "dbt_build"
AFTER_PUBLISH_CACHE = "after_publish"
#: The profile and target of dbt_project/profiles.yml that the build DAG's tasks name.
PROFILE, TARGET = "outcomes", "warehouse"
#: How Cosmos calls dbt in those tasks. A partial-parse file is valid only for the vars, profile
#: and target it was made with, so the parse that seeds a cache names them alike.
COSMOS_PARSE_ARGS = ["--profile", PROFILE, "--target", TARGET, "--no-static-parser"]
PARTIAL_PARSE = "partial_parse.msgpack"


def dbt_task_cache(settings: Settings, name: str) -> Path:
    """The Cosmos cache directory ``name`` (:data:`BUILD_CACHE`, :data:`AFTER_PUBLISH_CACHE`)."""
    return settings.cosmos_cache_dir / "build_outcomes" / name


@contextmanager
def _parse_into_scratch(
    settings: Settings,
    warehouse: Warehouse,
    beside: Path,
    *,
    args: tuple[str, ...] = (),
    carry: Path | None = None,
) -> Iterator[Path]:
    """``dbt parse`` as Cosmos' tasks parse (their profile and target; ``args``: more, such as
    vars), the as-of date from ``OUTCOMES_AS_OF`` or today, into a scratch target next to
    ``beside`` (with the partial-parse file ``carry``, when it exists, to parse only what
    changed); yields the scratch target, removed afterwards. Raises when the parse fails."""
    import shutil

    scratch = beside.with_name(f".{beside.name}-parse-{os.getpid()}")
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    try:
        if carry is not None and carry.exists():
            shutil.copyfile(carry, scratch / PARTIAL_PARSE)
        today = dt.datetime.now(dt.UTC).date().isoformat()
        with _environ({"OUTCOMES_AS_OF": os.environ.get("OUTCOMES_AS_OF") or today}):
            outcome = run_dbt(
                settings, warehouse, ["parse", *COSMOS_PARSE_ARGS, *args], with_vars=False, target_dir=scratch
            )
        if not outcome.success:
            raise RuntimeError("dbt parse failed: " + "; ".join(outcome.failures))
        yield scratch
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def ensure_manifest(settings: Settings, warehouse: Warehouse, *, force: bool = False) -> bool:
    """``dbt parse`` when the manifest is stale (a stale manifest is a stale build DAG), or always
    with ``force`` (a deployment's preparation: an image's files keep their times from the build).

    The parse is the one ``dbt_build`` would make (no vars, Cosmos' profile and target, the as-of
    date of tonight's build in ``OUTCOMES_AS_OF``), and its partial-parse file seeds that task's
    cache: the first build after a change of the project re-parses only the files that read the
    as-of date, when it is another day's. Returns whether it parsed. Parsing needs no database
    connection.

    dbt writes its files in place, so the parse goes to a scratch target (with the last
    partial-parse file, to parse only what changed) and its partial-parse file and then its
    manifest are renamed into the target directory: whoever reads the manifest meanwhile (every
    DAG run parses the build DAG's file) reads the old one or the new one whole, and a parse
    that is killed leaves the old one.
    """
    if not force and not manifest_is_stale(settings):
        return False
    target = settings.dbt_target_dir
    with _parse_into_scratch(settings, warehouse, target, carry=target / PARTIAL_PARSE) as scratch:
        target.mkdir(parents=True, exist_ok=True)
        for name in (PARTIAL_PARSE, "manifest.json"):  # the manifest last: it marks the parse done
            (scratch / name).replace(target / name)
    seed_cache(settings, dbt_task_cache(settings, BUILD_CACHE))
    return True


#: The vars of the two steps after the publish (transform/dag.py: ``after_publish``).
AFTER_PUBLISH_VARS = {"marts_schema": "marts"}


def seed_after_publish_cache(settings: Settings, warehouse: Warehouse) -> None:
    """Parse as ``snapshot_history`` and ``generate_docs`` do (their vars, Cosmos' profile and
    target) into a scratch target, and seed their cache with it: without it the first build of a
    new project parses it all again in ``snapshot_history``. A parse with other vars is a parse
    of every file, so this is only worth it where it runs beside other work (:func:`start_manifest`)."""
    cache = dbt_task_cache(settings, AFTER_PUBLISH_CACHE)
    with _parse_into_scratch(
        settings, warehouse, cache, args=("--vars", json.dumps(AFTER_PUBLISH_VARS))
    ) as scratch:
        seed_cache(settings, cache, source_dir=scratch)


def seed_cache(settings: Settings, cache: Path, *, source_dir: Path | None = None) -> None:
    """Put the last parse's partial-parse file and manifest (in ``source_dir``, by default the
    project's target directory) into the Cosmos cache ``cache`` (where Cosmos looks:
    ``<cache>/target/``), each written whole before it is renamed into place, with the mode any
    file gets here (a worker running as another member of the group reads it)."""
    import shutil

    target = cache / "target"
    target.mkdir(parents=True, exist_ok=True)
    for name in (PARTIAL_PARSE, "manifest.json"):
        source = (source_dir or settings.dbt_target_dir) / name
        if not source.exists():
            continue
        partial = target / f".{name}.{os.getpid()}"
        try:
            shutil.copyfile(source, partial)
            partial.replace(target / name)
        finally:
            partial.unlink(missing_ok=True)


@dataclass
class ManifestJob:
    """The manifest's parse running in a child process (:func:`start_manifest`); ``wait`` before
    anything reads the manifest (the build DAG's file does)."""

    process: Any
    log: Path

    def wait(self) -> None:
        """Block until the parse is done; raise what it failed with, as :func:`ensure_manifest` does."""
        try:
            code = self.process.wait()
        finally:
            os.environ.pop(MANIFEST_PENDING, None)
        if code != 0:
            tail = self.log.read_text(errors="replace").strip().splitlines()[-15:]
            raise RuntimeError(f"dbt parse failed (log: {self.log}):\n" + "\n".join(tail))

    def stop(self) -> None:
        """End the parse if it still runs (the command is leaving early); the manifest stays the
        old one (:func:`ensure_manifest` renames the new one into place only when it is whole)."""
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait()
        os.environ.pop(MANIFEST_PENDING, None)


#: Set in this process while its child parses a project that had no manifest yet: the build
#: DAG's file then defines no DAG instead of failing (transform/dag.py). Every DAG run parses
#: every DAG file, so the maintenance and ingest runs beside a new home's first parse would
#: otherwise record an import error of the build DAG.
MANIFEST_PENDING = "OUTCOMES_MANIFEST_PENDING"


#: What the child process of :func:`start_manifest` runs (its settings from the environment it is given).
_CHILD = "from outcomes.transform.dbt import _prepare_in_child; _prepare_in_child()"


#: How the child of :func:`start_manifest` learns the warehouse its profile names (dbt's parse
#: opens no connection, but the profile must resolve).
_CHILD_WAREHOUSE = "OUTCOMES_PARSE_WAREHOUSE_URL"


def start_manifest(
    settings: Settings, warehouse: Warehouse, as_of: dt.date | None = None
) -> ManifestJob | None:
    """:func:`ensure_manifest` and :func:`seed_after_publish_cache` in a child process, so that
    what runs before the build (the maintenance and ingest DAGs, Airflow's own migrations) runs
    beside them on another core; None when the manifest is current (its caches then are as the
    last run left them).

    The child has ``settings``' home, project and ``warehouse`` in its environment and parses with
    ``as_of`` (the night's build) in ``OUTCOMES_AS_OF``: the seeded caches then match the build's own parse.
    Its output goes to ``manifest-parse.log`` in dbt's log directory.
    """
    import subprocess
    import sys

    if not manifest_is_stale(settings):
        return None
    missing = not settings.dbt_manifest.exists()
    settings.dbt_log_dir.mkdir(parents=True, exist_ok=True)
    log = settings.dbt_log_dir / "manifest-parse.log"
    # the child's settings are these: the paths dbt uses derive from the home and the project
    env = {k: v for k, v in os.environ.items() if k != "OUTCOMES_WAREHOUSE_URL"}
    env.update(OUTCOMES_HOME=str(settings.home), OUTCOMES_PROJECT_DIR=str(settings.project_dir))
    if settings.warehouse_url is not None:
        env["OUTCOMES_WAREHOUSE_URL"] = settings.warehouse_url
    env[_CHILD_WAREHOUSE] = warehouse.admin_url
    if as_of is not None:
        env["OUTCOMES_AS_OF"] = as_of.isoformat()
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-c", _CHILD],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    if missing:
        os.environ[MANIFEST_PENDING] = str(process.pid)
    return ManifestJob(process=process, log=log)


def _prepare_in_child() -> None:
    from outcomes.settings import load_settings

    settings = load_settings()
    warehouse = Warehouse(admin_url=os.environ[_CHILD_WAREHOUSE], embedded=settings.embedded)
    ensure_manifest(settings, warehouse)
    seed_after_publish_cache(settings, warehouse)
