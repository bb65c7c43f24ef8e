"""The test harness: a fresh warehouse per test session, real PostgreSQL, real Airflow.

By default every session gets its own embedded PostgreSQL (pgserver) under a short temporary
OUTCOMES_HOME. With ``OUTCOMES_TEST_WAREHOUSE_URL`` set (any database on a PostgreSQL server whose
user may create databases and roles), the session creates a fresh database there instead, plus its
Airflow metadata database, and drops both at the end.

Settings must be in the environment before anything imports Airflow, so this module sets them at
import time (pytest imports conftest.py before collecting the tests).
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

# A short path: unix socket paths are limited to ~107 bytes.
_HOME = Path(tempfile.mkdtemp(prefix="oc-", dir="/tmp"))
_SERVER_URL = os.environ.get("OUTCOMES_TEST_WAREHOUSE_URL")
_TEST_DB = f"outcomes_test_{secrets.token_hex(4)}"

os.environ["OUTCOMES_HOME"] = str(_HOME)
os.environ["OUTCOMES_LANDING"] = str(_HOME / "landing")
os.environ["OUTCOMES_RETRY_DELAY_SECONDS"] = "1"  # a failing task must not stall the suite
for key in [k for k in os.environ if k.startswith("AIRFLOW")]:
    del os.environ[key]  # a developer's own Airflow settings must not leak into the tests
# Airflow's own secrets, set as a deployment sets them (tests/e2e/test_demo.py looks for them
# everywhere the runs wrote): a Fernet key for its stored connections, the API's JWT secret.
os.environ["AIRFLOW__CORE__FERNET_KEY"] = Fernet.generate_key().decode()
os.environ["AIRFLOW__API_AUTH__JWT_SECRET"] = secrets.token_urlsafe(32)
if _SERVER_URL:
    from sqlalchemy.engine import make_url

    os.environ["OUTCOMES_WAREHOUSE_URL"] = (
        make_url(_SERVER_URL).set(database=_TEST_DB).render_as_string(hide_password=False)
    )
else:
    os.environ.pop("OUTCOMES_WAREHOUSE_URL", None)

from outcomes.runners import airflow_env  # noqa: E402
from outcomes.settings import Settings, load_settings  # noqa: E402
from outcomes.warehouse.connection import Warehouse  # noqa: E402


@pytest.fixture(scope="session")
def settings() -> Settings:
    return load_settings()


@pytest.fixture(scope="session")
def warehouse(settings: Settings) -> Iterator[Warehouse]:
    """A freshly created and migrated warehouse for this session."""
    from outcomes.warehouse.bootstrap import bootstrap

    wh = bootstrap(settings)
    airflow_env.configure(settings, wh)
    yield wh


@pytest.fixture(scope="session")
def airflow_ready(settings: Settings, warehouse: Warehouse) -> Settings:
    """The Airflow metadata database migrated; DAGs can run in-process with ``dag.test()``."""
    from outcomes.runners import inprocess

    inprocess.prepare(settings)
    return settings


@pytest.fixture(scope="session")
def published_landing(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The default synthetic trial's deliveries (shaped like the IPS in Pain RCT and its pilot)."""
    from support.builds import PUBLISHED_AS_OF

    from outcomes.demo.sources import generate_sources

    root = tmp_path_factory.mktemp("published")
    generate_sources(root, seed=42, until=PUBLISHED_AS_OF)
    return root


@pytest.fixture(scope="session")
def published_trial(settings: Settings, warehouse: Warehouse, published_landing: Path) -> Iterator[Warehouse]:
    """A scratch warehouse with the default synthetic trial loaded, built, gated and published as
    of ``support.builds.PUBLISHED_AS_OF`` (with its history snapshot); shared by the tests that
    read published numbers (e2e/test_published_numbers.py, dashboard/)."""
    from support.builds import PUBLISHED_AS_OF, published_scratch

    name = f"{warehouse.database}_pub_{secrets.token_hex(3)}"
    with published_scratch(settings, warehouse, published_landing, PUBLISHED_AS_OF, name) as scratch:
        yield scratch


#: Test files that run longest (whole pipelines in subprocesses): collected first, so that under
#: pytest-xdist (`make test`: two workers, a file per worker) one worker starts on them while the
#: other takes everything else, instead of one worker finishing them alone at the end.
LONGEST_FIRST = ("tests/e2e/test_demo.py", "tests/e2e/test_faults.py", "tests/test_standalone.py")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    first = [item for item in items if item.nodeid.startswith(LONGEST_FIRST)]
    if first:
        items[:] = first + [item for item in items if not item.nodeid.startswith(LONGEST_FIRST)]


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Drop the session's databases (server) or stop and delete the embedded server."""
    settings = load_settings()
    if _SERVER_URL:
        import psycopg

        try:
            with psycopg.connect(_SERVER_URL, autocommit=True) as conn:
                for name in (_TEST_DB, f"{_TEST_DB}_airflow"):
                    conn.execute(f'drop database if exists "{name}" with (force)')
        except psycopg.Error as error:  # pragma: no cover - best effort
            print(f"could not drop test databases: {error}")
    else:
        from outcomes.warehouse import embedded

        embedded.stop(settings.pgdata)
    shutil.rmtree(_HOME, ignore_errors=True)
