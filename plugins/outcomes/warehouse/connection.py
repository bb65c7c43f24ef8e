"""Where the warehouse is, and how each role connects to it.

The warehouse is one PostgreSQL database (``outcomes`` by default) on either the embedded server
or the server named by ``OUTCOMES_WAREHOUSE_URL``. The Airflow metadata database lives on the same
server as ``<warehouse database>_airflow``. URLs here are libpq URIs (``postgresql://...``), which
psql, psycopg and dbt understand; :func:`sqlalchemy_url` adds a driver for SQLAlchemy.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from outcomes.settings import AIRFLOW_DB_SUFFIX, DEFAULT_WAREHOUSE_DB, Settings

if TYPE_CHECKING:
    from sqlalchemy.engine import URL, Engine


class Role(StrEnum):
    """The warehouse's roles (see ``migrations/versions/0001_foundation.py``)."""

    OWNER = "outcomes_owner"  # owns every schema and table; builds and publishes the marts
    LOADER = "outcomes_loader"  # writes raw, quarantine and meta
    ANALYST = "outcomes_analyst"  # reads marts, history and meta only


def _parse(url: str) -> URL:
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if not parsed.drivername.startswith(("postgresql", "postgres")):
        raise ValueError(f"OUTCOMES_WAREHOUSE_URL must be a PostgreSQL URL, not {parsed.drivername!r}")
    return parsed.set(drivername="postgresql")


@dataclass(frozen=True)
class Warehouse:
    """A resolved warehouse: the admin URL (a role that may create roles and databases)."""

    admin_url: str
    embedded: bool

    @property
    def database(self) -> str:
        return _parse(self.admin_url).database or DEFAULT_WAREHOUSE_DB

    @property
    def airflow_database(self) -> str:
        return f"{self.database}{AIRFLOW_DB_SUFFIX}"

    def for_database(self, name: str) -> Warehouse:
        """The same server and admin role, another database (tests, scratch builds)."""
        return Warehouse(admin_url=self.url(database=name), embedded=self.embedded)

    def url(self, *, role: Role | None = None, database: str | None = None) -> str:
        """A libpq URI, optionally as another ``role`` or to another ``database``."""
        parsed = _parse(self.admin_url).set(database=database or self.database)
        if role is not None:
            parsed = parsed.set(username=str(role), password=None)
        return parsed.render_as_string(hide_password=False)

    def display_url(self, *, role: Role | None = None, database: str | None = None) -> str:
        """Like :meth:`url` with any password masked: safe for logs and terminals."""
        from urllib.parse import unquote

        parsed = _parse(self.url(role=role, database=database))
        return unquote(parsed.render_as_string(hide_password=True))

    def airflow_sql_alchemy_conn(self) -> str:
        """SQLAlchemy URL of the Airflow metadata database (psycopg2, Airflow's default driver)."""
        parsed = _parse(self.url(database=self.airflow_database))
        return parsed.set(drivername="postgresql+psycopg2").render_as_string(hide_password=False)

    def engine(self, *, role: Role | None = None, database: str | None = None, **kwargs: object) -> Engine:
        """A SQLAlchemy engine (psycopg 3)."""
        from sqlalchemy import create_engine

        return create_engine(sqlalchemy_url(self.url(role=role, database=database)), **kwargs)


def sqlalchemy_url(url: str) -> str:
    """``url`` with the psycopg 3 driver for SQLAlchemy."""
    return _parse(url).set(drivername="postgresql+psycopg").render_as_string(hide_password=False)


def resolve(settings: Settings, *, start: bool = True) -> Warehouse:
    """The warehouse for ``settings``; starts the embedded server when needed and ``start``."""
    if settings.warehouse_url is not None:
        parsed = _parse(settings.warehouse_url)
        if not parsed.database:
            parsed = parsed.set(database=DEFAULT_WAREHOUSE_DB)
        return Warehouse(admin_url=parsed.render_as_string(hide_password=False), embedded=False)
    from outcomes.warehouse import embedded

    server = embedded.ensure_running(settings.pgdata) if start else embedded.status(settings.pgdata)
    if server is None:
        raise WarehouseNotRunning(f"the embedded warehouse in {settings.pgdata} is not running")
    return Warehouse(admin_url=server.url(database=DEFAULT_WAREHOUSE_DB), embedded=True)


class WarehouseNotRunning(RuntimeError):
    """The embedded server is stopped and the caller asked not to start it."""


#: PostgreSQL names the duplicated key when a unique index refuses a row
#: ("Key (participant_id, month_index)=(P-001, 3) is duplicated"): a participant's id.
DUPLICATE_KEY = re.compile(r"Key \((?P<columns>[^)]*)\)=\((?:[^()]|\([^()]*\))*\)")


#: A constraint's refusal of a row (NOT NULL, CHECK) quotes the whole row in its detail.
FAILING_ROW = re.compile(r"Failing row contains \(.*\)")


def redact_key_values(text: str) -> str:
    """``text`` (a database error, as dbt or a task reports it) with the values of any key or
    row PostgreSQL quoted in it replaced: what alerts and dbt's failure lists may carry."""
    text = DUPLICATE_KEY.sub(lambda m: f"Key ({m.group('columns')})=(...)", text)
    return FAILING_ROW.sub("Failing row contains (...)", text)
