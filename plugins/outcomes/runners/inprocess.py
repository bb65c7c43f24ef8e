"""Run the project's DAGs in-process (``dag.test()``), as ``outcomes demo``/``run`` and the tests do.

The same DAG files run under ``airflow standalone`` (``make up``) and under docker compose; this
module is the third way: one process, no scheduler, the real operators and the real metadata
database. Call :func:`prepare` before anything imports ``airflow``.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from outcomes.settings import Settings
from outcomes.warehouse.connection import Warehouse

if TYPE_CHECKING:
    from outcomes.transform.dbt import ManifestJob

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DagRunOutcome:
    """What one in-process DAG run ended with."""

    dag_id: str
    run_id: str
    state: str
    task_states: dict[str, str] = field(default_factory=dict)

    @property
    def succeeded(self) -> bool:
        return self.state == "success"

    @property
    def failed_tasks(self) -> list[str]:
        return sorted(t for t, s in self.task_states.items() if s in {"failed", "upstream_failed"})


def _configured(settings: Settings) -> Warehouse:
    """The warehouse bootstrapped and Airflow configured for this project (before it is imported)."""
    from outcomes.runners import airflow_env
    from outcomes.warehouse.bootstrap import bootstrap

    warehouse = bootstrap(settings)
    airflow_env.configure(settings, warehouse)
    return warehouse


def prepare(settings: Settings) -> Warehouse:
    """Warehouse bootstrapped, Airflow configured for this project and its metadata DB migrated."""
    from outcomes.transform.dbt import ensure_manifest

    warehouse = _configured(settings)
    ensure_manifest(settings, warehouse)
    migrate_airflow_db()
    return warehouse


def prepare_beside(settings: Settings, as_of: dt.date | None = None) -> tuple[Warehouse, ManifestJob | None]:
    """:func:`prepare`, with dbt's parse of a changed project in a child process beside Airflow's
    migration and whatever runs next (``start_manifest``); the job is None when the manifest is
    current. Wait on it before running a DAG whose file reads the manifest (the build's).
    Measured in bench/README.md ("The first run"): the parse is most of a new home's start."""
    from outcomes.transform.dbt import start_manifest

    warehouse = _configured(settings)
    job = start_manifest(settings, warehouse, as_of)
    try:
        migrate_airflow_db()
    except BaseException:
        if job is not None:
            job.stop()
        raise
    return warehouse, job


def migrate_airflow_db() -> None:
    """``airflow db migrate``, in-process; a no-op (well under a second) when already current."""
    from airflow import settings as airflow_settings
    from airflow.utils import db

    airflow_settings.configure_orm()
    with airflow_settings.Session() as session:  # type: ignore[misc]
        current = db._get_current_revision(session)
    heads = db._get_script_object().get_heads()
    if current in heads:
        return
    log.info("migrating the Airflow metadata database (from %s)", current)
    db.upgradedb()


def load_dag(settings: Settings, dag_id: str) -> Any:
    """The DAG ``dag_id`` parsed from the project's dags folder; raises on import errors."""
    from airflow.dag_processing.dagbag import DagBag

    # the DAG's own file when it is named after it (each file is parsed alone: quicker), else all
    own_file = settings.dags_folder / f"{dag_id}.py"
    bag = DagBag(dag_folder=str(own_file if own_file.exists() else settings.dags_folder))
    if bag.import_errors:
        details = "\n".join(f"{path}: {error}" for path, error in bag.import_errors.items())
        raise RuntimeError(f"DAG import errors:\n{details}")
    dag = bag.get_dag(dag_id)
    if dag is None:
        raise KeyError(f"no DAG {dag_id!r} in {settings.dags_folder}")
    return dag


def run_dag(
    settings: Settings,
    dag_id: str,
    *,
    logical_date: dt.datetime | None = None,
    conf: dict[str, Any] | None = None,
) -> DagRunOutcome:
    """Run ``dag_id`` once in-process with ``dag.test()`` and report how it ended."""
    dag = load_dag(settings, dag_id)
    run = dag.test(logical_date=logical_date, run_conf=conf)
    task_states = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
    return DagRunOutcome(dag_id=dag_id, run_id=run.run_id, state=str(run.state), task_states=task_states)
