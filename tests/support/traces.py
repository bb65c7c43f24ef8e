"""Where a person is still held: every base table whose rows' text holds one of some values."""

from __future__ import annotations

from collections.abc import Iterable

import psycopg

from outcomes.warehouse.connection import Warehouse


def tables_holding(
    warehouse: Warehouse,
    values: Iterable[str],
    *,
    schemas: Iterable[str] | None = None,
    leaving_out: Iterable[str] = (),
) -> list[str]:
    """``schema.table`` of every base table (of ``schemas``, default all but the catalogues; but
    those of ``leaving_out``) with a row whose text holds one of ``values``, in order."""
    values = list(values)
    skipped = set(leaving_out)
    with psycopg.connect(warehouse.url()) as conn:
        tables = conn.execute(
            """
            select table_schema, table_name from information_schema.tables
            where table_type = 'BASE TABLE' and table_schema not in ('pg_catalog', 'information_schema')
              and (%(schemas)s::text[] is null or table_schema = any(%(schemas)s::text[]))
            order by 1, 2
            """,
            {"schemas": None if schemas is None else list(schemas)},
        ).fetchall()
        found = []
        for schema, table in tables:
            if f"{schema}.{table}" in skipped:
                continue
            where = " or ".join("t::text like %s" for _ in values)
            hit = conn.execute(
                f'select 1 from "{schema}"."{table}" t where {where} limit 1', [f"%{v}%" for v in values]
            ).fetchone()
            if hit:
                found.append(f"{schema}.{table}")
    return found
