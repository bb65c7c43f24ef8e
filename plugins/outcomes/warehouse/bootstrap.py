"""Bring a warehouse to the current schema: databases, then versioned migrations (Alembic).

Idempotent: on an up-to-date warehouse every step is a no-op. Safe to run from every command
and from the maintenance DAG.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from outcomes.settings import Settings
from outcomes.warehouse.connection import Warehouse, resolve

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def ensure_database(warehouse: Warehouse, name: str) -> bool:
    """Create database ``name`` on the warehouse's server if missing. True if it was created."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(warehouse.url(database="postgres"), autocommit=True) as conn:
        exists = conn.execute("select 1 from pg_database where datname = %s", (name,)).fetchone()
        if exists:
            return False
        conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
        log.info("created database %s", name)
        return True


def close_to_public(warehouse: Warehouse, name: str) -> None:
    """No CONNECT or TEMPORARY on database ``name`` for everyone (PostgreSQL grants both to PUBLIC
    on a new database): Airflow's metadata database, whose connections and variables hold secrets,
    is for the admin role Airflow connects as, not for the warehouse's login roles. Idempotent; a
    role that does not own the database gets a warning from PostgreSQL, not an error."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(warehouse.url(database="postgres"), autocommit=True) as conn:
        conn.execute(sql.SQL("revoke all on database {} from public").format(sql.Identifier(name)))


def _alembic_config(connection: object) -> object:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    return config


#: The key of the server-wide advisory lock that serialises migrations (any database, any client).
MIGRATION_LOCK = 0x6F7574636F6D6573  # "outcomes"


def migrate(warehouse: Warehouse, revision: str = "head") -> str | None:
    """Upgrade the warehouse database to ``revision``; returns the revision now applied."""
    return _alembic(warehouse, "upgrade", revision)


def downgrade(warehouse: Warehouse, revision: str) -> str | None:
    """Downgrade the warehouse database to ``revision`` (``base`` for nothing)."""
    return _alembic(warehouse, "downgrade", revision)


def _alembic(warehouse: Warehouse, direction: str, revision: str) -> str | None:
    """Run ``alembic <direction> <revision>`` on the warehouse, one migration at a time per server.

    Migrations create and grant cluster-wide roles, so two of them at once on one server (two
    Airflow components starting together, two warehouses on one server) could collide on a role.
    They take turns: each holds an advisory lock in the server's ``postgres`` database (advisory
    locks are per database) while it runs.
    """
    from alembic import command

    with migration_lock(warehouse):
        engine = warehouse.engine()
        try:
            with engine.begin() as connection:
                getattr(command, direction)(_alembic_config(connection), revision)
        finally:
            engine.dispose()
    return current_revision(warehouse)


@contextmanager
def migration_lock(warehouse: Warehouse) -> Iterator[None]:
    """Hold the server-wide advisory lock of migrations (:data:`MIGRATION_LOCK`) in the server's
    ``postgres`` database; not re-entrant across connections: never nest it."""
    import psycopg

    with psycopg.connect(warehouse.url(database="postgres"), autocommit=True) as guard:
        guard.execute("select pg_advisory_lock(%s)", (MIGRATION_LOCK,))
        try:
            yield
        finally:
            guard.execute("select pg_advisory_unlock(%s)", (MIGRATION_LOCK,))


def current_revision(warehouse: Warehouse) -> str | None:
    """The applied migration revision, or None on an empty database."""
    import psycopg

    with psycopg.connect(warehouse.url()) as conn:
        row = conn.execute("select to_regclass('meta.alembic_version')").fetchone()
        if row is None or row[0] is None:
            return None
        version = conn.execute("select version_num from meta.alembic_version").fetchone()
        return None if version is None else str(version[0])


def head_revision() -> str:
    """The newest migration shipped with this code."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory(str(MIGRATIONS_DIR)).get_current_head()
    if head is None:  # pragma: no cover - the package always ships migrations
        raise RuntimeError("no migrations found")
    return head


def bootstrap(settings: Settings) -> Warehouse:
    """Start (if embedded), create the databases and migrate: a warehouse ready to use."""
    warehouse = resolve(settings, start=True)
    # under the migrations' lock: components starting together (docker compose) each bootstrap,
    # and two at once fail ("tuple concurrently updated" on the revoke, a duplicate database)
    with migration_lock(warehouse):
        ensure_database(warehouse, warehouse.database)
        ensure_database(warehouse, warehouse.airflow_database)
        close_to_public(warehouse, warehouse.airflow_database)
    migrate(warehouse)
    return warehouse
