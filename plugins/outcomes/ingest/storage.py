"""Where a contract file lands in the warehouse: its table name, its columns and their SQL types
(the fnr replaced by the pseudonym) and the ``COPY`` that writes rows."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Any

from outcomes.contracts.registry import fnr_keyed_sources
from outcomes.contracts.spec import FileSpec

if TYPE_CHECKING:
    import psycopg


FNR = "fnr"


PSEUDONYM = "person_pseudonym"


#: Sources keyed by fnr (the contract's ``keyed_by``): rows of people not (yet) enrolled are held in
#: ``pending``.
FNR_KEYED = fnr_keyed_sources()


SQL_TYPES = {
    "text": "text",
    "int": "integer",
    "decimal": "numeric",
    "date": "date",
    "timestamp": "timestamptz",
    "bool": "boolean",
}


def raw_table(source: str, file: str) -> str:
    """``raw``/``pending`` table of a contract file: ``registry`` + ``proms.csv`` -> ``registry_proms``."""
    return f"{source}_{file.removesuffix('.csv')}"


def _columns(spec: FileSpec) -> list[tuple[str, str]]:
    """(warehouse column, SQL type) in contract order, with fnr replaced by the pseudonym."""
    return [(PSEUDONYM if c.name == FNR else c.name, SQL_TYPES[c.type]) for c in spec.columns]


def _storable(text: str | None) -> str | None:
    """PostgreSQL text and jsonb cannot hold NUL: show it as U+FFFD."""
    return None if text is None else text.replace("\x00", "\ufffd")


def _copy_csv(conn: psycopg.Connection, table: str, rows: Any) -> None:
    """One ``COPY`` of a pyarrow table (its column names are the target's) in CSV."""
    from pyarrow import csv as pacsv

    out = io.BytesIO()
    pacsv.write_csv(rows, out, write_options=pacsv.WriteOptions(include_header=False))
    columns = ", ".join(rows.column_names)
    with conn.cursor() as cursor, cursor.copy(f"copy {table} ({columns}) from stdin (format csv)") as copy:
        copy.write(out.getbuffer())
