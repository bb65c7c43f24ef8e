"""Upgrades in place: a deployment as the last release left it (its warehouse and Airflow's metadata
database after a published build, kept in tests/releases/<version>/ by ``make release-snapshot``),
upgraded by this checkout's ``outcomes prepare`` (docker compose's airflow-init: the warehouse's
migrations and Airflow's ``db migrate``) keeps every row, leaves the published marts as they were,
and a rebuild as of the same day publishes the same marts, row for row.

Until a release adds a migration the upgrade has nothing to migrate; from the first one on, this
test is what holds it to the data of the release before. ``make test-deployment``."""

from __future__ import annotations

import json
import secrets
import shutil
import tempfile
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import make_url
from support.releases import (
    clean_environment,
    grant,
    latest,
    mart_checksums,
    outcomes,
    restore,
    revision,
    table_counts,
)

from outcomes.warehouse.bootstrap import head_revision
from outcomes.warehouse.connection import Warehouse


def airflow_head() -> str:
    """The revision Airflow's ``db migrate`` takes its database to, with this checkout's Airflow."""
    from airflow.utils.db import _get_alembic_config
    from alembic.script import ScriptDirectory

    return str(ScriptDirectory.from_config(_get_alembic_config()).get_current_head())


def test_the_last_release_is_kept_and_its_migration_is_in_this_checkouts_chain() -> None:
    """Quick (``make test``): the snapshot is there, whole, not from the future, and its warehouse
    revision is one this checkout's migrations know (a migration renamed or squashed after a
    release would leave its deployments with no way up)."""
    from importlib.metadata import version

    from alembic.script import ScriptDirectory

    from outcomes.warehouse.bootstrap import MIGRATIONS_DIR

    snapshot = latest()
    release = json.loads((snapshot / "release.json").read_text())
    assert {p.name for p in snapshot.iterdir()} == {"release.json", "warehouse.sql.gz", "airflow.sql.gz"}
    assert release["version"] == snapshot.name
    assert tuple(map(int, snapshot.name.split("."))) <= tuple(map(int, version("outcomes").split(".")))
    chain = [r.revision for r in ScriptDirectory(str(MIGRATIONS_DIR)).walk_revisions()]
    assert release["warehouse_revision"] in chain and head_revision() == chain[0]
    assert release["marts"] and all(rows > 0 for rows, _ in release["marts"].values()), release["marts"]


@pytest.mark.slow
@pytest.mark.deployment
def test_the_last_release_upgrades_in_place_and_publishes_the_same_marts(warehouse: Warehouse) -> None:
    snapshot = latest()
    release = json.loads((snapshot / "release.json").read_text())
    name = f"outcomes_upgrade_{secrets.token_hex(3)}"
    # the session's server: its roles exist (the release's privileges name them), as on a
    # deployment's server
    url = make_url(warehouse.admin_url).set(database=name).render_as_string(hide_password=False)
    airflow_url = make_url(url).set(database=f"{name}_airflow").render_as_string(hide_password=False)
    home = Path(tempfile.mkdtemp(prefix="ou-", dir="/tmp"))
    env = {**clean_environment(home), "OUTCOMES_WAREHOUSE_URL": url}
    try:
        with psycopg.connect(warehouse.admin_url, autocommit=True) as conn:
            for database in (name, f"{name}_airflow"):
                conn.execute(f'create database "{database}"')
        restore(snapshot / "warehouse.sql.gz", url)
        grant(url, release["database_grants"])  # the database is the release's, privileges and all
        restore(snapshot / "airflow.sql.gz", airflow_url)
        assert revision(url, "meta.alembic_version") == release["warehouse_revision"]
        assert revision(airflow_url, "alembic_version") == release["airflow_revision"]

        prepared = outcomes("prepare", env=env)
        assert prepared.returncode == 0, prepared.stdout + prepared.stderr
        assert revision(url, "meta.alembic_version") == head_revision()
        assert revision(airflow_url, "alembic_version") == airflow_head()
        # every row the release held is still there, and the analysts' tables are untouched
        counts = table_counts(url)
        lost = {
            table: (n, counts.get(table)) for table, n in release["tables"].items() if counts.get(table) != n
        }
        assert not lost, f"tables whose rows the upgrade changed (release, now): {lost}"
        assert mart_checksums(url) == release["marts"]

        rebuilt = outcomes("rebuild", "--as-of", release["as_of"], env=env)  # the gate alone: no drift reason
        assert rebuilt.returncode == 0, rebuilt.stdout + rebuilt.stderr
        assert mart_checksums(url) == release["marts"]
        with psycopg.connect(url) as conn:
            builds = conn.execute(
                "select as_of_date::text from meta.published_builds order by published_at"
            ).fetchall()
        assert builds == [(release["as_of"],), (release["as_of"],)]
    finally:
        with psycopg.connect(warehouse.admin_url, autocommit=True) as conn:
            for database in (name, f"{name}_airflow"):
                conn.execute(f'drop database if exists "{database}" with (force)')
        shutil.rmtree(home, ignore_errors=True)
