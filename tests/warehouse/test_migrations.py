"""Bootstrap and migrations on a real PostgreSQL: schemas, roles, grants, idempotence."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from outcomes.warehouse.bootstrap import current_revision, downgrade, ensure_database, head_revision, migrate
from outcomes.warehouse.connection import Role, Warehouse

SCHEMAS = ("history", "marts", "meta", "pending", "quarantine", "raw")


def catalogue_fingerprint(warehouse: Warehouse) -> dict[str, object]:
    """Everything a migration may change that a second run must leave alone."""
    with psycopg.connect(warehouse.url()) as conn:
        schemas = conn.execute(
            """
            select nspname, pg_get_userbyid(nspowner), coalesce(nspacl::text, '')
            from pg_namespace where nspname not like 'pg\\_%' and nspname <> 'information_schema'
            order by nspname
            """
        ).fetchall()
        default_acls = conn.execute(
            """
            select pg_get_userbyid(defaclrole), n.nspname, defaclobjtype, defaclacl::text
            from pg_default_acl d left join pg_namespace n on n.oid = d.defaclnamespace
            order by 1, 2, 3
            """
        ).fetchall()
        roles = conn.execute(
            """
            select rolname, rolcanlogin, rolsuper, rolcreaterole, rolcreatedb
            from pg_roles where rolname like 'outcomes\\_%' order by rolname
            """
        ).fetchall()
        database_acl = conn.execute(
            "select datacl::text from pg_database where datname = current_database()"
        ).fetchone()
        tables = conn.execute(
            """
            select schemaname, tablename from pg_tables
            where schemaname = any(%s) order by 1, 2
            """,
            (list(SCHEMAS),),
        ).fetchall()
        version = conn.execute("select version_num from meta.alembic_version").fetchall()
    return {
        "schemas": schemas,
        "default_acls": default_acls,
        "roles": roles,
        "database_acl": database_acl,
        "tables": tables,
        "version": version,
    }


@pytest.fixture
def scratch(warehouse: Warehouse) -> Iterator[Warehouse]:
    """A throwaway database on the session's server, migrated from nothing."""
    name = f"{warehouse.database}_scratch_{secrets.token_hex(3)}"
    ensure_database(warehouse, name)
    yield warehouse.for_database(name)
    with psycopg.connect(warehouse.url(database="postgres"), autocommit=True) as conn:
        conn.execute(f'drop database if exists "{name}" with (force)')


def test_bootstrap_creates_the_schemas_owned_by_the_owner_role(warehouse: Warehouse) -> None:
    assert current_revision(warehouse) == head_revision()
    with psycopg.connect(warehouse.url()) as conn:
        owners = dict(
            conn.execute(
                "select nspname, pg_get_userbyid(nspowner) from pg_namespace where nspname = any(%s)",
                (list(SCHEMAS),),
            ).fetchall()
        )
    assert owners == dict.fromkeys(SCHEMAS, "outcomes_owner")


def test_roles_exist_with_login_only_for_loader_and_analyst(warehouse: Warehouse) -> None:
    with psycopg.connect(warehouse.url()) as conn:
        roles = dict(
            conn.execute(
                "select rolname, rolcanlogin from pg_roles where rolname = any(%s)",
                ([str(r) for r in Role],),
            ).fetchall()
        )
    assert roles == {"outcomes_owner": False, "outcomes_loader": True, "outcomes_analyst": True}


def test_the_airflow_metadata_database_lives_beside_the_warehouse(warehouse: Warehouse) -> None:
    with psycopg.connect(warehouse.url(database=warehouse.airflow_database)) as conn:
        assert conn.execute("select current_database()").fetchone() == (warehouse.airflow_database,)


def test_migrations_apply_twice_without_change(scratch: Warehouse) -> None:
    assert current_revision(scratch) is None
    migrate(scratch)
    first = catalogue_fingerprint(scratch)
    migrate(scratch)
    assert catalogue_fingerprint(scratch) == first
    assert first["version"] == [(head_revision(),)]


def test_downgrade_then_upgrade_gives_the_same_warehouse(scratch: Warehouse) -> None:
    migrate(scratch)
    before = catalogue_fingerprint(scratch)
    assert downgrade(scratch, "base") is None
    with psycopg.connect(scratch.url()) as conn:
        left = conn.execute(
            "select nspname from pg_namespace where nspname = any(%s)", (list(SCHEMAS),)
        ).fetchall()
    assert left == [("meta",)]  # alembic keeps its version table there
    migrate(scratch)
    assert catalogue_fingerprint(scratch) == before


class TestGrants:
    """Each role sees exactly its schemas (docs/definitions.md: analysts read published marts only)."""

    @pytest.fixture(autouse=True, scope="class")
    @classmethod
    def tables(cls, warehouse: Warehouse) -> Iterator[None]:
        with psycopg.connect(warehouse.url(), autocommit=True) as conn:
            conn.execute("set role outcomes_owner")
            for schema in SCHEMAS:
                conn.execute(f"create table {schema}.grant_probe (x int)")
                conn.execute(f"insert into {schema}.grant_probe values (1)")
        yield
        with psycopg.connect(warehouse.url(), autocommit=True) as conn:
            for schema in SCHEMAS:
                conn.execute(f"drop table {schema}.grant_probe")

    @staticmethod
    def _can(warehouse: Warehouse, role: Role, sql: str) -> bool:
        with psycopg.connect(warehouse.url(role=role)) as conn:
            try:
                conn.execute(sql)
            except psycopg.errors.InsufficientPrivilege:
                return False
            return True

    @pytest.mark.parametrize(
        ("schema", "readable"),
        [
            ("marts", True),
            ("history", True),
            ("meta", True),
            ("raw", False),
            ("quarantine", False),
            ("pending", False),
        ],
    )
    def test_analyst_reads_only_marts_history_and_meta(
        self, warehouse: Warehouse, schema: str, readable: bool
    ) -> None:
        assert self._can(warehouse, Role.ANALYST, f"select * from {schema}.grant_probe") is readable

    @pytest.mark.parametrize("schema", SCHEMAS)
    def test_analyst_writes_nowhere(self, warehouse: Warehouse, schema: str) -> None:
        assert not self._can(warehouse, Role.ANALYST, f"insert into {schema}.grant_probe values (2)")
        assert not self._can(warehouse, Role.ANALYST, f"create table {schema}.mine (x int)")

    @pytest.mark.parametrize(
        ("schema", "granted"),
        [
            ("raw", True),
            ("quarantine", True),
            ("meta", True),
            ("pending", True),
            ("marts", False),
            ("history", False),
        ],
    )
    def test_loader_reads_and_writes_only_what_it_loads(
        self, warehouse: Warehouse, schema: str, granted: bool
    ) -> None:
        assert self._can(warehouse, Role.LOADER, f"insert into {schema}.grant_probe values (2)") is granted
        assert self._can(warehouse, Role.LOADER, f"select * from {schema}.grant_probe") is granted

    def test_nobody_but_the_owner_uses_the_public_schema(self, warehouse: Warehouse) -> None:
        assert not self._can(warehouse, Role.ANALYST, "create table public.mine (x int)")
        assert not self._can(warehouse, Role.LOADER, "create table public.mine (x int)")

    @pytest.mark.parametrize("role", [Role.ANALYST, Role.LOADER])
    @pytest.mark.parametrize(
        "statement",
        [
            "create schema mine",
            "create role mine",
            "create database mine",
            "set role outcomes_owner",
            "select pg_read_file('postgresql.conf')",
            "copy (select 1) to program 'true'",
        ],
    )
    def test_a_login_role_is_refused_everything_beyond_its_schemas(
        self, warehouse: Warehouse, role: Role, statement: str
    ) -> None:
        with (
            psycopg.connect(warehouse.url(role=role), autocommit=True) as conn,  # (create database)
            pytest.raises(psycopg.errors.InsufficientPrivilege),
        ):
            conn.execute(statement)

    def test_the_analyst_makes_no_temporary_tables(self, warehouse: Warehouse) -> None:
        # the loader may: COPY through a temporary table is its fast path
        assert not self._can(warehouse, Role.ANALYST, "create temporary table mine (x int)")
        assert self._can(warehouse, Role.LOADER, "create temporary table mine (x int)")

    @pytest.mark.parametrize("role", [Role.ANALYST, Role.LOADER])
    def test_a_login_role_cannot_reach_airflows_metadata_database(
        self, warehouse: Warehouse, role: Role
    ) -> None:
        """Airflow's database holds its connections and variables (secrets among them)."""
        with pytest.raises(psycopg.OperationalError, match="permission denied for database"):
            psycopg.connect(warehouse.url(role=role, database=warehouse.airflow_database)).close()


def test_an_old_erasure_register_becomes_tombstones_and_a_queue(scratch: Warehouse, tmp_path: Path) -> None:
    """Migration 0009: a register that held pseudonyms and participant IDs is renamed; its IDs are
    queued for the next build; the loader's next delivery turns it into tombstones, empties it,
    and drops that person's rows on arrival as before."""
    from support.deliveries import enrolment_row, prom_rows, write_delivery

    from outcomes.ingest.erasure import tombstone
    from outcomes.ingest.loader import apply_delivery
    from outcomes.ingest.pseudonym import Pseudonymiser

    pseudonymise = Pseudonymiser(b"m" * 64)
    person = 960_021
    pseudonym = pseudonymise(enrolment_row("MIG-021", person)["fnr"])
    migrate(scratch, "0008")
    with psycopg.connect(scratch.url()) as conn:  # as the loader of before left it
        conn.execute(
            "insert into pending.erasures (person_pseudonym, participant_id) values (%s, 'MIG-021')",
            (pseudonym,),
        )
    migrate(scratch)
    with psycopg.connect(scratch.url()) as conn:
        assert conn.execute("select participant_id from pending.erasure_queue").fetchall() == [("MIG-021",)]
        assert conn.execute("select count(*) from pending.erasures_unconverted").fetchone() == (1,)
    delivery = write_delivery(
        tmp_path, "registry", "20250502T0200Z-21", {"proms.csv": prom_rows("MIGF", person)}
    )
    with psycopg.connect(scratch.url(), autocommit=True) as conn:
        conn.execute(f"set role {Role.LOADER}")
        outcome = apply_delivery(conn, delivery, pseudonymise=pseudonymise)
    assert (outcome.rows_loaded, outcome.rows_pending, outcome.rows_purged) == (0, 0, 4)
    with psycopg.connect(scratch.url()) as conn:
        assert conn.execute("select count(*) from pending.erasures_unconverted").fetchone() == (0,)
        marks = {r[0] for r in conn.execute("select tombstone from pending.erasure_tombstones")}
    assert marks == {
        tombstone(pseudonymise, "person_pseudonym", pseudonym),
        tombstone(pseudonymise, "participant_id", "MIG-021"),
    }


def test_a_downgrade_below_the_tombstones_is_refused_while_anyone_is_registered(scratch: Warehouse) -> None:
    migrate(scratch)
    with psycopg.connect(scratch.url()) as conn:
        conn.execute("insert into pending.erasure_queue (participant_id) values ('MIG-031')")
    with pytest.raises(Exception, match="refusing to downgrade below 0009"):
        downgrade(scratch, "0008")
    assert current_revision(scratch) == head_revision()
