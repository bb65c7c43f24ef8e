"""Settings in effect, from the environment: one namespaced prefix, ``OUTCOMES_``.

Everything the project needs to know about its deployment comes from environment variables (see
``.env.example``); nothing is read from the repository that a deployment should choose. This module
is imported by the CLI before anything heavy, so it must stay cheap (standard library only).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

#: The checkout (or installed tree) this package lives in: ``<project>/plugins/outcomes/``.
PACKAGE_DIR = Path(__file__).resolve().parent
DEFAULT_PROJECT_DIR = PACKAGE_DIR.parent.parent

#: Database names on the warehouse server. The Airflow metadata database lives beside the
#: warehouse, in the same server, as its own database.
DEFAULT_WAREHOUSE_DB = "outcomes"
AIRFLOW_DB_SUFFIX = "_airflow"


@dataclass(frozen=True)
class Settings:
    """The settings in effect. Build with :func:`load_settings`; never mutate."""

    project_dir: Path
    home: Path
    warehouse_url: str | None
    landing: str
    airflow_parallelism: int

    @property
    def embedded(self) -> bool:
        """True when the warehouse is the embedded PostgreSQL under ``home``."""
        return self.warehouse_url is None

    @property
    def pgdata(self) -> Path:
        """Data directory of the embedded PostgreSQL."""
        return self.home / "pg"

    @property
    def airflow_home(self) -> Path:
        return self.home / "airflow"

    @property
    def dags_folder(self) -> Path:
        return self.project_dir / "dags"

    @property
    def plugins_folder(self) -> Path:
        return self.project_dir / "plugins"

    @property
    def dbt_project_dir(self) -> Path:
        return self.project_dir / "dbt_project"

    @property
    def dbt_target_dir(self) -> Path:
        """dbt's artefacts (manifest, compiled SQL): state, not the checkout."""
        return self.home / "dbt" / "target"

    @property
    def dbt_log_dir(self) -> Path:
        return self.home / "dbt" / "logs"

    @property
    def dbt_manifest(self) -> Path:
        """The parsed project the build DAG is rendered from (``dbt parse``; kept fresh by prepare)."""
        return self.dbt_target_dir / "manifest.json"

    @property
    def dbt_docs_dir(self) -> Path:
        """The generated dbt docs (index.html, manifest.json, catalog.json) the Airflow UI serves."""
        return self.home / "dbt" / "docs"

    @property
    def cosmos_cache_dir(self) -> Path:
        return self.home / "cosmos"

    @property
    def gx_dir(self) -> Path:
        """The quality gate's Great Expectations file context (suites, results, Data Docs)."""
        return self.home / "gx"

    @property
    def gx_data_docs_dir(self) -> Path:
        """The gate's Data Docs site, served in the Airflow UI."""
        return self.gx_dir / "gx" / "uncommitted" / "data_docs" / "local_site"

    @property
    def dashboards_dir(self) -> Path:
        """The dated dashboard snapshots and ``latest.html`` (dashboard/snapshots.py)."""
        return self.home / "dashboards"

    @property
    def alerts_log(self) -> Path:
        return self.home / "alerts.log"


def _home(env: Mapping[str, str], project_dir: Path) -> Path:
    raw = env.get("OUTCOMES_HOME")
    home = Path(raw).expanduser() if raw else project_dir / ".outcomes"
    return home.resolve()


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Read the settings from ``env`` (default: ``os.environ``).

    - ``OUTCOMES_HOME``: state (embedded PostgreSQL, Airflow home, snapshots);
      default ``.outcomes/`` in the checkout.
    - ``OUTCOMES_WAREHOUSE_URL``: an external PostgreSQL instead of the embedded one.
    - ``OUTCOMES_LANDING``: landing root, a path or an fsspec URL; default ``$OUTCOMES_HOME/landing``.
    - ``OUTCOMES_PROJECT_DIR``: the project tree (``dags/``, ``plugins/``, ``dbt_project/``);
      default this checkout.
    - ``OUTCOMES_AIRFLOW_PARALLELISM``: Airflow task slots; default 4 (sized for 2 cores).
    """
    env = os.environ if env is None else env
    project_dir = Path(env.get("OUTCOMES_PROJECT_DIR") or DEFAULT_PROJECT_DIR).resolve()
    home = _home(env, project_dir)
    url = env.get("OUTCOMES_WAREHOUSE_URL") or None
    landing = env.get("OUTCOMES_LANDING") or str(home / "landing")
    parallelism = int(env.get("OUTCOMES_AIRFLOW_PARALLELISM") or 4)
    return Settings(
        project_dir=project_dir,
        home=home,
        warehouse_url=url,
        landing=landing,
        airflow_parallelism=parallelism,
    )
