"""The ``outcomes`` command, run as a user runs it: the installed console script, in a subprocess."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from outcomes.settings import Settings
from outcomes.warehouse.bootstrap import head_revision
from outcomes.warehouse.connection import Warehouse

OUTCOMES = str(Path(sys.executable).parent / "outcomes")
COMMANDS = ["demo", "demo-sources", "env", "migrate", "status", "stop"]


def outcomes(
    *args: str, env: dict[str, str] | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [OUTCOMES, *args],
        capture_output=True,
        text=True,
        check=check,
        env=env or dict(os.environ),
        timeout=300,
    )


def test_help_lists_every_command() -> None:
    done = outcomes("--help")
    for command in [*COMMANDS, "psql", "airflow", "dbt"]:
        assert command in done.stdout


def test_help_is_instant_because_imports_are_lazy() -> None:
    """`outcomes --help` must not import Airflow, dbt, GX, SQLAlchemy or pgserver."""
    probe = (
        "import sys; sys.argv = ['outcomes', '--help']\n"
        "from outcomes.cli import app\n"
        "try:\n    app()\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('airflow', 'dbt', 'great_expectations', 'sqlalchemy', 'pgserver', 'psycopg')"
        " if m in sys.modules]\n"
        "print('HEAVY', heavy)"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert "HEAVY []" in done.stdout


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command: str) -> None:
    done = outcomes(command, "--help")
    assert "Usage" in done.stdout
    assert len(done.stdout.strip().splitlines()) > 3


def test_version() -> None:
    assert outcomes("--version").stdout.startswith("outcomes ")


def test_env_prints_the_settings_in_effect(warehouse: Warehouse, settings: Settings) -> None:
    lines = dict(line.split("=", 1) for line in outcomes("env").stdout.strip().splitlines())
    assert lines["OUTCOMES_HOME"] == str(settings.home)
    assert "outcomes_analyst@" in lines["OUTCOMES_ANALYST_URL"]
    assert lines["OUTCOMES_WAREHOUSE_EMBEDDED"] == ("true" if warehouse.embedded else "false")
    assert lines["AIRFLOW_HOME"] == str(settings.airflow_home)
    # The printed URL is one a client can use.
    url = lines["OUTCOMES_WAREHOUSE_URL"].strip("'")
    import psycopg

    with psycopg.connect(url) as conn:
        assert conn.execute("select current_database()").fetchone() == (warehouse.database,)


def test_status_shows_the_migration_and_landing(warehouse: Warehouse) -> None:
    done = outcomes("status")
    assert "running" in done.stdout
    assert "(current)" in done.stdout
    assert "registry" in done.stdout


def test_psql_connects_as_the_read_only_analyst(warehouse: Warehouse) -> None:
    done = outcomes("psql", "-Atc", "select current_user")
    assert done.stdout.strip() == "outcomes_analyst"
    denied = outcomes("psql", "-v", "ON_ERROR_STOP=1", "-c", "create table marts.mine (x int)", check=False)
    assert denied.returncode != 0
    assert "permission denied" in denied.stderr


def test_psql_passes_its_own_help_through() -> None:
    assert "psql is the PostgreSQL interactive terminal" in outcomes("psql", "--help").stdout


def test_migrate_is_idempotent(warehouse: Warehouse) -> None:
    assert f"at migration {head_revision()}" in outcomes("migrate").stdout
    assert f"at migration {head_revision()}" in outcomes("migrate").stdout


def test_airflow_runs_with_the_projects_settings(airflow_ready: Settings) -> None:
    done = outcomes("airflow", "config", "get-value", "core", "dags_folder")
    assert done.stdout.strip() == str(airflow_ready.dags_folder)


@pytest.fixture
def other_home() -> Iterator[dict[str, str]]:
    """A separate OUTCOMES_HOME (so stopping its warehouse cannot disturb the session's)."""
    home = Path(tempfile.mkdtemp(prefix="oc-s-", dir="/tmp"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "OUTCOMES_"))}
    env["OUTCOMES_HOME"] = str(home)
    yield env
    subprocess.run([OUTCOMES, "stop"], env=env, capture_output=True, check=False)
    shutil.rmtree(home, ignore_errors=True)


def test_embedded_warehouse_starts_on_demand_and_stops(other_home: dict[str, str]) -> None:
    assert "stopped" in outcomes("status", env=other_home).stdout
    outcomes("migrate", env=other_home)
    assert "running" in outcomes("status", env=other_home).stdout
    assert "stopped the embedded warehouse" in outcomes("stop", env=other_home).stdout
    assert "was not running" in outcomes("stop", env=other_home).stdout


def test_bad_warehouse_url_is_a_clear_error(other_home: dict[str, str]) -> None:
    env = {**other_home, "OUTCOMES_WAREHOUSE_URL": "mysql://localhost/x"}
    done = outcomes("migrate", env=env, check=False)
    assert done.returncode != 0
    assert "must be a PostgreSQL URL" in done.stderr


def test_dbt_runs_with_the_warehouse_profile(warehouse: Warehouse) -> None:
    done = outcomes("dbt", "debug", check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "All checks passed" in done.stdout
