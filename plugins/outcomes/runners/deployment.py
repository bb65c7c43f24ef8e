"""A deployment's one-off preparation (docker compose's ``airflow-init``: ``outcomes prepare``), and
the check that no DAG file fails to import (``outcomes dag-errors``, the dag-processor's healthcheck).

``prepare`` leaves a deployment that starts: the warehouse databases, roles and migrations, Airflow's
metadata database, the dbt manifest the build DAG's file is rendered from (parsed anew every time:
an image of a new release carries files older than the manifest of the last one, so their times
cannot say it is stale), the admin's password from ``AIRFLOW_ADMIN_PASSWORD``, and then a parse of
every DAG file with the deployment's settings. Any import error fails it, so the components, which
start only when it succeeded, never run with a DAG missing.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from outcomes.settings import Settings

#: The Airflow admin's password in a compose deployment (.env); the user is Airflow's default ``admin``.
ADMIN_PASSWORD = "AIRFLOW_ADMIN_PASSWORD"  # noqa: S105 (the variable's name)  # pragma: allowlist secret
ADMIN_USER = "admin"


@dataclass(frozen=True)
class Prepared:
    """What :func:`prepare` did and found."""

    warehouse: str
    revision: str | None
    manifest: Path
    dag_ids: list[str]
    import_errors: dict[str, str] = field(default_factory=dict)


def prepare(settings: Settings) -> Prepared:
    """Migrate the warehouse and Airflow's database, parse the dbt project, set the admin's
    password, then parse every DAG file (the import errors are in the result: the caller fails)."""
    from outcomes.runners.inprocess import _configured, migrate_airflow_db
    from outcomes.transform.dbt import ensure_manifest
    from outcomes.warehouse.bootstrap import current_revision

    warehouse = _configured(settings)
    ensure_manifest(settings, warehouse, force=True)
    migrate_airflow_db()
    set_admin_password()
    dag_ids, errors = parse_dags()
    return Prepared(
        warehouse=warehouse.display_url(),
        revision=current_revision(warehouse),
        manifest=settings.dbt_manifest,
        dag_ids=dag_ids,
        import_errors=errors,
    )


def passwords_file() -> Path:
    """Where Airflow's simple auth manager reads its users' passwords (``[core]
    simple_auth_manager_passwords_file``, default under ``AIRFLOW_HOME``)."""
    from airflow.api_fastapi.auth.managers.simple.simple_auth_manager import SimpleAuthManager

    return Path(SimpleAuthManager.get_generated_password_file())


def set_admin_password() -> bool:
    """Write ``AIRFLOW_ADMIN_PASSWORD`` as the admin's password (other users' kept); without it
    the API server generates one into the same file. Returns whether it was set."""
    password = os.environ.get(ADMIN_PASSWORD)
    if not password:
        return False
    path = passwords_file()
    try:
        users = json.loads(path.read_text())
    except (OSError, ValueError):
        users = {}
    users[ADMIN_USER] = password
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}")
    partial.unlink(missing_ok=True)
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # never readable by others
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(json.dumps(users))
    partial.replace(path)
    return True


def parse_dags() -> tuple[list[str], dict[str, str]]:
    """Every DAG file of Airflow's dags folder (``[core] dags_folder``) parsed as the dag-processor
    parses it: the DAG ids and the import errors by file."""
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag()
    return sorted(bag.dag_ids), {str(path): str(error) for path, error in bag.import_errors.items()}


def recorded_import_errors() -> dict[str, str]:
    """The import errors the dag-processor recorded in Airflow's metadata database, by file."""
    from airflow.models.errors import ParseImportError
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        return {str(e.filename): str(e.stacktrace) for e in session.scalars(select(ParseImportError))}
