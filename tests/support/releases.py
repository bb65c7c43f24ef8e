"""A deployment at a release, kept for the upgrade test (tests/test_upgrade.py): the warehouse and
Airflow's metadata database as that release's code left them after a published build.

``make release-snapshot`` (run when a release is tagged, from its checkout) builds the synthetic
trial (the demo's deliveries, seed 42, as of ``support.builds.PUBLISHED_AS_OF``) with ``outcomes
run`` on a fresh embedded warehouse and writes, into ``tests/releases/<version>/``:

- ``warehouse.sql.gz`` and ``airflow.sql.gz``: ``pg_dump`` of the two databases, the warehouse's
  with its owners and privileges (its roles are the cluster's, made by its migrations), Airflow's
  without owners (the admin role of the server it is restored to owns it);
- ``release.json``: the version and commit, the warehouse's migration revision, Airflow's version
  and its database's revision, the as-of date, the privileges on the warehouse's database itself
  (a dump of its contents holds none), the row count of every table of the warehouse, and the
  published marts' checksums (``outcomes.warehouse.locks.checksum_sql``).

The data is synthetic (no fnr is ever in the warehouse) and the key below is the snapshot's own.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import psycopg

from support.deployments import own_environment, pg_dump, postgres_tool

OUTCOMES = str(Path(sys.executable).parent / "outcomes")
RELEASES = Path(__file__).resolve().parents[1] / "releases"
#: The pseudonymisation key of every snapshot (synthetic data; a test key, not a deployment's).
SNAPSHOT_KEY = "release snapshot key of the synthetic trial, not a secret"  # pragma: allowlist secret
#: The schemas of the warehouse whose tables the snapshot counts (every schema the project makes).
SCHEMA_QUERY = """
    select table_schema, table_name from information_schema.tables
    where table_type = 'BASE TABLE'
      and table_schema not in ('pg_catalog', 'information_schema', 'public')
      and table_schema not like 'pg_%'
    order by 1, 2
"""


def clean_environment(home: Path) -> dict[str, str]:
    """The environment of a deployment of its own under ``home``, with the snapshot's key."""
    return {**own_environment(home), "OUTCOMES_PSEUDONYM_KEY": SNAPSHOT_KEY}


def outcomes(*args: str, env: dict[str, str], timeout: int = 1800) -> subprocess.CompletedProcess[str]:
    """The installed ``outcomes`` command, as an operator runs it; its output kept."""
    return subprocess.run(
        [OUTCOMES, *args], capture_output=True, text=True, env=env, timeout=timeout, check=False
    )


def plain_url(url: str) -> str:
    """A SQLAlchemy URL (``postgresql+psycopg2://``) as libpq takes it."""
    from sqlalchemy.engine import make_url

    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def table_counts(url: str) -> dict[str, int]:
    with psycopg.connect(url) as conn:
        tables = conn.execute(SCHEMA_QUERY).fetchall()
        return {
            f"{schema}.{name}": int(conn.execute(f'select count(*) from "{schema}"."{name}"').fetchone()[0])  # type: ignore[index]
            for schema, name in tables
        }


def mart_checksums(url: str) -> dict[str, list[Any]]:
    """Every published mart: [rows, md5 of its rows] (the database locks' checksum)."""
    from outcomes.warehouse.locks import checksum_sql

    with psycopg.connect(url) as conn:
        tables = [
            r[0]
            for r in conn.execute(
                "select table_name from information_schema.tables where table_schema = 'marts' order by 1"
            )
        ]
        out: dict[str, list[Any]] = {}
        for table in tables:
            n, digest = conn.execute(checksum_sql("marts", table)).fetchone() or (0, "")
            out[table] = [int(n), digest]
        return out


def database_grants(url: str) -> list[list[str]]:
    """The privileges on the database itself ([role, privilege], PUBLIC as "public"), which a dump
    of its contents does not hold: the release's migrations granted them (CONNECT for its roles)."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            """
            select coalesce(r.rolname, 'public'), a.privilege_type
            from pg_database d, aclexplode(d.datacl) a
            left join pg_roles r on r.oid = a.grantee
            where d.datname = current_database() and a.grantee <> d.datdba
            order by 1, 2
            """
        ).fetchall()
    return [[role, privilege] for role, privilege in rows]


def grant(url: str, grants: list[list[str]]) -> None:
    """``grants`` (as :func:`database_grants` reads them) on the database of ``url``."""
    from psycopg import sql

    with psycopg.connect(url, autocommit=True) as conn:
        database = conn.execute("select current_database()").fetchone()[0]  # type: ignore[index]
        conn.execute(sql.SQL("revoke all on database {} from public").format(sql.Identifier(database)))
        for role, privilege in grants:
            grantee = sql.SQL("public") if role == "public" else sql.Identifier(role)
            conn.execute(
                sql.SQL("grant {} on database {} to {}").format(
                    sql.SQL(privilege), sql.Identifier(database), grantee
                )
            )


def revision(url: str, table: str) -> str:
    with psycopg.connect(url) as conn:
        return str(conn.execute(f"select version_num from {table}").fetchone()[0])  # type: ignore[index]


def dump(url: str, path: Path, *, owners: bool) -> None:
    """``pg_dump`` of a database, gzipped; with ``owners``, each object keeps its owner (the
    warehouse's schemas and tables belong to its roles, cluster-wide, made by its migrations)."""
    done = pg_dump(url, owners=owners)
    # what the admin role owns (the migrations' version table) goes to whoever restores it: the
    # admin of the server the snapshot is restored on need not be called as this one is
    from sqlalchemy.engine import make_url

    admin = make_url(url).username or "postgres"
    text = done.replace(f" OWNER TO {admin};".encode(), b" OWNER TO CURRENT_USER;")
    with gzip.GzipFile(path, "wb", mtime=0) as handle:
        handle.write(text)


def restore(path: Path, url: str) -> None:
    """A snapshot's dump into an empty database (its roles must exist: the warehouse's are made by
    the migrations, cluster-wide)."""
    done = subprocess.run(
        [postgres_tool("psql"), "-q", "-v", "ON_ERROR_STOP=1", "-d", url, "-f", "-"],
        input=gzip.decompress(path.read_bytes()),
        capture_output=True,
        timeout=600,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"restoring {path.name}: {done.stderr.decode()[-2000:]}")


def make_snapshot(out: Path) -> dict[str, Any]:
    """Build the synthetic trial with this checkout and keep the deployment as ``out``."""
    from importlib.metadata import version

    from outcomes.demo.sources import generate_sources
    from support.builds import PUBLISHED_AS_OF

    home = Path(tempfile.mkdtemp(prefix="rs-", dir="/tmp"))  # short: unix socket paths
    env = clean_environment(home)
    try:
        generate_sources(home / "landing", seed=42, until=PUBLISHED_AS_OF)
        done = outcomes("run", "--as-of", PUBLISHED_AS_OF.isoformat(), env=env)
        if done.returncode != 0:
            raise RuntimeError(done.stdout + done.stderr)
        shown = outcomes("env", "--show-secrets", env=env)
        values = dict(line.split("=", 1) for line in shown.stdout.splitlines() if "=" in line)
        warehouse = plain_url(values["OUTCOMES_WAREHOUSE_URL"].strip("'"))
        airflow = plain_url(values["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].strip("'"))
        out.mkdir(parents=True, exist_ok=True)
        dump(warehouse, out / "warehouse.sql.gz", owners=True)
        dump(airflow, out / "airflow.sql.gz", owners=False)
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=RELEASES.parent, check=False
        ).stdout.strip()
        release = {
            "version": version("outcomes"),
            "commit": commit,
            "made": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "as_of": PUBLISHED_AS_OF.isoformat(),
            "warehouse_revision": revision(warehouse, "meta.alembic_version"),
            "airflow_version": version("apache-airflow"),
            "airflow_revision": revision(airflow, "alembic_version"),
            "database_grants": database_grants(warehouse),
            "tables": table_counts(warehouse),
            "marts": mart_checksums(warehouse),
        }
        (out / "release.json").write_text(json.dumps(release, indent=2) + "\n")
        return release
    finally:
        subprocess.run([OUTCOMES, "stop"], env=env, capture_output=True, timeout=120, check=False)
        shutil.rmtree(home, ignore_errors=True)


def latest() -> Path:
    """The newest release's snapshot folder (versions compared as numbers)."""
    folders = [p for p in RELEASES.iterdir() if (p / "release.json").exists()]
    return max(folders, key=lambda p: tuple(int(part) for part in p.name.split(".")))


if __name__ == "__main__":
    from importlib.metadata import version as _version

    made = make_snapshot(RELEASES / (sys.argv[1] if len(sys.argv) > 1 else _version("outcomes")))
    print(json.dumps({k: v for k, v in made.items() if k not in ("tables", "marts")}, indent=2))
