"""Airflow's configuration for this project, as environment variables.

Airflow reads ``AIRFLOW__*`` variables when it is first imported, so :func:`configure` must run
before anything imports ``airflow`` (the CLI entry point and the tests' ``conftest.py`` call it
first). A variable the deployment already set wins over the project default.
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping

from outcomes.settings import Settings
from outcomes.transform.dbt import dbt_environ
from outcomes.warehouse.connection import Warehouse

#: Keep every tool quiet about telemetry: this machine (and a hospital network) has no internet.
TELEMETRY_OFF = {
    "AIRFLOW__COSMOS__ENABLE_TELEMETRY": "False",
    "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    "GX_ANALYTICS_ENABLED": "False",
    "SCARF_ANALYTICS": "false",
    "DO_NOT_TRACK": "1",
}


def airflow_environ(settings: Settings, warehouse: Warehouse) -> dict[str, str]:
    """The ``AIRFLOW__*`` (and related) variables this project runs Airflow with."""
    return {
        "AIRFLOW_HOME": str(settings.airflow_home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(settings.dags_folder),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(settings.plugins_folder),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        # 2 cores: `airflow standalone` would otherwise fork 32 workers (seen on a 2-core machine).
        "AIRFLOW__CORE__PARALLELISM": str(settings.airflow_parallelism),
        "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": str(settings.airflow_parallelism),
        "AIRFLOW__API__WORKERS": "1",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": warehouse.airflow_sql_alchemy_conn(),
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
        "AIRFLOW__OPENLINEAGE__DISABLED": "True",
        "AIRFLOW__OPENLINEAGE__NAMESPACE": "outcomes",
        **TELEMETRY_OFF,
        # Cosmos: its partial-parse cache under our state, not in /tmp
        "AIRFLOW__COSMOS__CACHE_DIR": str(settings.cosmos_cache_dir),
        # The connection dbt's profile reads (profiles.yml has env_var() only), for dbt in tasks.
        **dbt_environ(warehouse),
        # Every setting of ours must reach task processes too.
        "OUTCOMES_HOME": str(settings.home),
        "OUTCOMES_PROJECT_DIR": str(settings.project_dir),
        "OUTCOMES_LANDING": settings.landing,
        **({"OUTCOMES_WAREHOUSE_URL": settings.warehouse_url} if settings.warehouse_url else {}),
    }


def airflow_binary(environ: MutableMapping[str, str] | None = None) -> str:
    """This environment's ``airflow``, with its folder put first on ``PATH`` in ``environ``
    (``airflow standalone`` starts its components as ``airflow ...`` from ``PATH``)."""
    import sys
    from pathlib import Path

    environ = os.environ if environ is None else environ
    folder = str(Path(sys.executable).parent)
    environ["PATH"] = os.pathsep.join([folder, environ.get("PATH", "")])
    return str(Path(folder) / "airflow")


def configure(
    settings: Settings, warehouse: Warehouse, environ: MutableMapping[str, str] | None = None
) -> dict[str, str]:
    """Put the project's Airflow settings into ``environ`` (default ``os.environ``).

    Values already present win, so a deployment can override any of them. Returns the values
    in effect.
    """
    environ = os.environ if environ is None else environ
    for key, value in airflow_environ(settings, warehouse).items():
        environ.setdefault(key, value)
    settings.airflow_home.mkdir(parents=True, exist_ok=True)
    return {key: environ[key] for key in airflow_environ(settings, warehouse)}
