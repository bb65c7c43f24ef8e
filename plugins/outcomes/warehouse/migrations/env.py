"""Alembic environment for the warehouse: run by :func:`outcomes.warehouse.bootstrap.migrate`.

The caller passes an open SQLAlchemy connection (``config.attributes["connection"]``) as a role
that may create roles and schemas. The version table lives in ``meta.alembic_version``.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import text

connection = context.config.attributes["connection"]
connection.execute(text("create schema if not exists meta"))
context.configure(
    connection=connection,
    version_table_schema="meta",
    transaction_per_migration=True,
)
with context.begin_transaction():
    context.run_migrations()
