"""Where a person is still held: every base table whose rows' text holds one of some values; and
what in a text is shaped like a national identity number (fnr)."""

from __future__ import annotations

import re
from collections.abc import Iterable

import psycopg

from outcomes.contracts.fnr import has_valid_check_digits
from outcomes.warehouse.connection import Warehouse

#: 11 digits, or 6 and 5 with a space between (as people write them), not inside a longer number
#: or a hex string (a hash's run of digits is no fnr; :func:`delivered_in` finds known ones anywhere).
FNR_SHAPED = re.compile(rb"(?<![0-9A-Fa-f])([0-9]{6}) ?([0-9]{5})(?![0-9A-Fa-f])")
DIGIT_RUN = re.compile(rb"[0-9]{10,}")


def is_person_shaped(number: str) -> bool:
    """An fnr with valid check digits and a date a person's can have: day 1-31 (a D-number adds
    40), month 1-12 (an H-number adds 40, a synthetic number 80)."""
    if not has_valid_check_digits(number):
        return False
    day, month = int(number[:2]), int(number[2:4])
    real_day = 1 <= day <= 31 or 41 <= day <= 71
    return real_day and (1 <= month <= 12 or 41 <= month <= 52 or 81 <= month <= 92)


def fnrs_in(data: bytes) -> set[str]:
    """Every person-shaped fnr in ``data``."""
    found = {(head + tail).decode() for head, tail in FNR_SHAPED.findall(data)}
    return {number for number in found if is_person_shaped(number)}


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


def delivered_in(data: bytes, fnrs: set[str]) -> set[str]:
    """Every fnr of ``fnrs`` in ``data``: also inside a longer number or a hex string, and also
    with its leading zero lost (an fnr that went through an integer)."""
    short = {fnr[1:]: fnr for fnr in fnrs if fnr.startswith("0")}
    found = set()
    for run in DIGIT_RUN.findall(data):
        digits = run.decode()
        for start in range(len(digits) - 9):
            if digits[start : start + 11] in fnrs:
                found.add(digits[start : start + 11])
            if digits[start : start + 10] in short:
                found.add(short[digits[start : start + 10]])
    return found
