"""Foundation: the warehouse's schemas, roles and grants.

Schemas (all owned by ``outcomes_owner``):

- ``raw``: every record version from the sources, pseudonymised (loader writes);
- ``quarantine``: rejected deliveries and rows with reasons (loader only);
- ``meta``: deliveries, builds, gate results (loader writes, analyst reads);
- ``marts``: the analysts' contract (analyst reads);
- ``history``: nightly SCD2 snapshots of the marts (analyst reads).

Roles are cluster-wide, so they are created only when missing and never dropped by a downgrade (they
may own or be granted objects in other databases of a shared server). ``outcomes_owner`` is a group
role (NOLOGIN) that the migrating user is made a member of; ``outcomes_loader`` and
``outcomes_analyst`` can log in (set their passwords on a shared server; trust auth on the embedded
one).

Revision ID: 0001
Revises:
Create Date: 2026-11-21
"""

from __future__ import annotations

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

OWNER, LOADER, ANALYST = "outcomes_owner", "outcomes_loader", "outcomes_analyst"
SCHEMAS = ("raw", "quarantine", "meta", "marts", "history")
LOADER_WRITES = ("raw", "quarantine", "meta")
ANALYST_READS = ("marts", "history", "meta")


def _create_role(name: str, login: bool) -> None:
    option = "login" if login else "nologin"
    op.execute(
        f"""
        do $$
        begin
            if not exists (select from pg_roles where rolname = '{name}') then
                create role {name} {option};
            end if;
        end
        $$
        """
    )


def _on_this_database(statement: str) -> None:
    """Run ``statement`` with ``%I`` replaced by the current database (its name is the deployment's)."""
    op.execute(f"do $$ begin execute format('{statement}', current_database()); end $$")


def upgrade() -> None:
    _create_role(OWNER, login=False)
    _create_role(LOADER, login=True)
    _create_role(ANALYST, login=True)
    op.execute(f"grant {OWNER} to current_user")

    # Nobody but the owner sees anything by default: not even `public`.
    _on_this_database("revoke all on database %I from public")
    op.execute("revoke all on schema public from public")
    for role in (OWNER, LOADER, ANALYST):
        _on_this_database(f"grant connect on database %I to {role}")
    _on_this_database(f"grant create, temporary on database %I to {OWNER}")
    # COPY through a temporary staging table is the loader's fast path.
    _on_this_database(f"grant temporary on database %I to {LOADER}")

    for schema in SCHEMAS:
        op.execute(f"create schema if not exists {schema} authorization {OWNER}")
        op.execute(f"alter schema {schema} owner to {OWNER}")

    for schema in LOADER_WRITES:
        op.execute(f"grant usage on schema {schema} to {LOADER}")
        op.execute(
            f"alter default privileges for role {OWNER} in schema {schema} "
            f"grant select, insert, update, delete on tables to {LOADER}"
        )
        op.execute(
            f"alter default privileges for role {OWNER} in schema {schema} "
            f"grant usage, select on sequences to {LOADER}"
        )
    for schema in ANALYST_READS:
        op.execute(f"grant usage on schema {schema} to {ANALYST}")
        op.execute(
            f"alter default privileges for role {OWNER} in schema {schema} "
            f"grant select on tables to {ANALYST}"
        )


def downgrade() -> None:
    for schema in LOADER_WRITES:
        op.execute(
            f"alter default privileges for role {OWNER} in schema {schema} revoke all on tables from {LOADER}"
        )
        op.execute(
            f"alter default privileges for role {OWNER} in schema {schema} "
            f"revoke all on sequences from {LOADER}"
        )
    for schema in ANALYST_READS:
        op.execute(
            f"alter default privileges for role {OWNER} in schema {schema} "
            f"revoke all on tables from {ANALYST}"
        )
    # Restrict, not cascade: a downgrade must never drop data it did not create.
    for schema in reversed(SCHEMAS):
        if schema != "meta":  # holds alembic_version until the very end
            op.execute(f"drop schema if exists {schema} restrict")
