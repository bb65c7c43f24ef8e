"""What the models incremental by key keep beside their tables (dbt_project/macros/incremental_by_key.sql)."""

from __future__ import annotations

from typing import Any

import psycopg


def fingerprints_kept(warehouse: Any, table: str, key: str) -> dict[Any, tuple[int, str]]:
    """``<table>__fingerprints``: each key's fingerprint, and the transaction that wrote it."""
    with psycopg.connect(warehouse.url()) as conn:
        name = conn.execute(
            "select column_name from information_schema.columns"
            " where table_schema || '.' || table_name = %s and column_name <> %s",
            (f"{table}__fingerprints", key),
        ).fetchone()
        assert name is not None, f"{table} keeps no fingerprints beside it"
        return {
            row[0]: (row[1], row[2])
            for row in conn.execute(f"select {key}, {name[0]}, xmin::text from {table}__fingerprints")
        }


def fingerprints(kept: dict[Any, tuple[int, str]]) -> dict[Any, int]:
    """The fingerprints alone."""
    return {k: v[0] for k, v in kept.items()}


def rewritten_keys(before: list[tuple[Any, ...]], after: list[tuple[Any, ...]]) -> set[Any]:
    """The keys (first column) with a row the build wrote (new xmin, the last column), or a row it
    deleted; rows are told apart by their first two columns (key and item or month)."""
    old = {(r[0], r[1]): r[-1] for r in before}
    new = {(r[0], r[1]): r[-1] for r in after}
    return {key[0] for key, xmin in new.items() if old.get(key) != xmin} | {
        key[0] for key in old.keys() - new.keys()
    }
