"""``outcomes export``: the analysis datasets of the published build or of a lock, for R and Stata
(docs/analysts-guide.md, "Exports").

The datasets are the marts whose dbt YAML says ``config: {meta: {export: true}}``; their codebook
is generated from the same dbt documentation (descriptions, types, accepted values, the units in
``meta.unit``), so it cannot drift from the marts. Every format is written from the same typed
columns; a directory holds one export: the datasets, ``codebook.md`` and ``manifest.json`` (each
file's SHA-256). Nothing in the export depends on when it was made, so an export of a lock is
the same byte for byte whenever it is made again.

Spreadsheets: a text cell that begins with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return
would be read by Excel or LibreOffice as a formula, so in CSV such a cell is written with a
leading apostrophe (OWASP's rule for CSV injection); Parquet and Stata files hold data, never
formulas, and keep the text as it is.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import shutil
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

FORMATS = ("csv", "parquet", "dta")
#: Text that a spreadsheet would take for a formula (OWASP, "CSV Injection").
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
#: Stata's value labels of a true/false column (stored as 0 and 1).
BOOLEAN_LABELS = {0: "false", 1: "true"}
STATA_LABEL_MAX = 80
#: Stata's longest variable name.
STATA_NAME_MAX = 32


class ExportError(RuntimeError):
    """An export that cannot be made (no such lock, a directory in use, no documentation)."""


@dataclass(frozen=True)
class Column:
    name: str
    data_type: str
    description: str
    unit: str | None
    allowed: tuple[str, ...]

    @property
    def label(self) -> str:
        """The first sentence of the description, within Stata's 80 characters."""
        first = re.split(r"\.\s+(?=[A-Z])", self.description, maxsplit=1)[0].rstrip(".")
        return first if len(first) <= STATA_LABEL_MAX else first[: STATA_LABEL_MAX - 3] + "..."


@dataclass(frozen=True)
class Dataset:
    name: str
    description: str
    columns: tuple[Column, ...]


def documented(manifest: Path) -> list[Dataset]:
    """The datasets to export, with their documentation, from the parsed dbt project."""
    if not manifest.exists():
        raise ExportError(f"{manifest} is missing: run `outcomes dbt parse` first")
    nodes = json.loads(manifest.read_text(encoding="utf-8"))["nodes"]
    allowed: dict[tuple[str, str], tuple[str, ...]] = {}
    for node in nodes.values():
        meta = node.get("test_metadata") or {}
        if node["resource_type"] == "test" and meta.get("name") == "accepted_values":
            values = tuple(str(v) for v in meta["kwargs"]["values"])
            allowed[(node["attached_node"], node["column_name"])] = values
    datasets = []
    for unique_id, node in sorted(nodes.items()):
        if node["resource_type"] != "model" or not node["config"].get("meta", {}).get("export"):
            continue
        columns = tuple(
            Column(
                name=name,
                data_type=str(column.get("data_type") or ""),
                description=" ".join((column.get("description") or "").split()),
                unit=(column.get("meta") or {}).get("unit")
                or (column.get("config") or {}).get("meta", {}).get("unit"),
                allowed=allowed.get((unique_id, name), ()),
            )
            for name, column in node["columns"].items()
        )
        datasets.append(Dataset(node["name"], " ".join(node["description"].split()), columns))
    if not datasets:
        raise ExportError("no dbt model is marked for export (config: {meta: {export: true}})")
    if long := [f"{d.name}.{c.name}" for d in datasets for c in d.columns if len(c.name) > STATA_NAME_MAX]:
        raise ExportError(f"column names longer than Stata's {STATA_NAME_MAX} characters: {', '.join(long)}")
    return datasets


def _frame(conn: Any, schema: str, dataset: Dataset) -> tuple[list[str], list[str], list[tuple[Any, ...]]]:
    """The dataset's rows in a fixed order (every column), with PostgreSQL's type of each column."""
    from psycopg import sql

    found = conn.execute(
        "select column_name, data_type from information_schema.columns "
        "where table_schema = %s and table_name = %s order by ordinal_position",
        (schema, dataset.name),
    ).fetchall()
    if not found:
        raise ExportError(f"{schema}.{dataset.name} does not exist (a lock made before it was published?)")
    names = [n for n, _ in found]
    order = sql.SQL(", ").join(sql.Literal(i + 1) for i in range(len(names)))
    rows = conn.execute(
        sql.SQL("select * from {} order by {}").format(sql.Identifier(schema, dataset.name), order)
    ).fetchall()
    return names, [t for _, t in found], rows


def _text_for_spreadsheet(value: str) -> str:
    return "'" + value if value.startswith(FORMULA_START) else value


def _csv_cell(value: Any, pg_type: str) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.date | Decimal | int | float):
        return value.isoformat() if isinstance(value, dt.date) else str(value)
    return _text_for_spreadsheet(str(value))


def _write_csv(path: Path, names: list[str], types: list[str], rows: list[tuple[Any, ...]]) -> None:
    import csv

    with path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(names)
        writer.writerows([_csv_cell(v, t) for v, t in zip(row, types, strict=True)] for row in rows)


def _arrow(names: list[str], types: list[str], rows: list[tuple[Any, ...]]) -> Any:
    import pyarrow as pa

    kinds = {"text": pa.string(), "integer": pa.int32(), "bigint": pa.int64(), "boolean": pa.bool_(),
             "date": pa.date32(), "numeric": pa.float64(), "double precision": pa.float64()}  # fmt: skip
    arrays = []
    for i, (name, pg_type) in enumerate(zip(names, types, strict=True)):
        kind = kinds.get(pg_type)
        if kind is None:
            raise ExportError(f"column {name}: no export type for PostgreSQL's {pg_type}")
        values = [row[i] for row in rows]
        if pg_type == "numeric":
            values = [None if v is None else float(v) for v in values]
        arrays.append(pa.array(values, type=kind))
    return pa.table(arrays, names=names)


def _write_parquet(path: Path, table: Any) -> None:
    import pyarrow.parquet as pq

    pq.write_table(table, path, compression="zstd", store_schema=True)


def _write_dta(path: Path, table: Any, dataset: Dataset, stamp: dt.datetime) -> None:
    """Stata 118 (Unicode), with a variable label per column and value labels on true/false."""
    import pandas as pd

    frame = table.to_pandas(date_as_object=False)
    labels = {c.name: c.label for c in dataset.columns}
    value_labels = {}
    dates = {}
    for field in table.schema:
        kind = str(field.type)
        if kind == "bool":
            frame[field.name] = frame[field.name].map({True: 1, False: 0}).astype("Int8")
            value_labels[field.name] = BOOLEAN_LABELS
        elif kind == "date32[day]":
            frame[field.name] = pd.to_datetime(frame[field.name])
            dates[field.name] = "td"
        elif kind in ("int32", "int64"):
            frame[field.name] = frame[field.name].astype("Int32" if kind == "int32" else "Int64")
    frame.to_stata(
        path,
        write_index=False,
        version=118,
        time_stamp=stamp,
        data_label=dataset.name,
        variable_labels={n: labels.get(n, "") for n in frame.columns},
        value_labels=value_labels or None,
        convert_dates=dates or None,
    )


def codebook(datasets: list[Dataset], source: str) -> str:
    """Every exported column: label, type, unit, allowed values and definition (Markdown)."""
    out = [f"# Codebook: {source}", "", "Generated from the dbt documentation of the marts.", ""]
    for d in datasets:
        out += [f"## {d.name}", "", d.description, ""]
        out += ["| column | label | type | unit | allowed values | definition |", "|---|---|---|---|---|---|"]
        for c in d.columns:
            allowed = ", ".join(f"`{v}`" for v in c.allowed) or (
                "`true`, `false`" if c.data_type == "boolean" else ""
            )
            out.append(
                f"| `{c.name}` | {c.label} | {c.data_type} | {c.unit or ''} | {allowed} | "
                + c.description.replace("|", "\\|")
                + " |"
            )
        out.append("")
    return "\n".join(out)


def export(conn: Any, manifest: Path, out: Path, fmt: str, lock: str | None = None) -> dict[str, Any]:
    """Write the analysis datasets of ``marts`` (or of the lock ``lock``) into the new or empty
    directory ``out`` as ``fmt``; returns the export's manifest (also written as manifest.json)."""
    from outcomes.warehouse.locks import schema_for
    from outcomes.warehouse.publish import PUBLISHED, schema_build_id

    if fmt not in FORMATS:
        raise ExportError(f"format {fmt!r}: choose one of {', '.join(FORMATS)}")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ExportError(f"{out} is not an empty directory: an export goes into a directory of its own")
    if lock is None:
        schema, source = PUBLISHED, "the published build"
        made = conn.execute(
            "select build_id, as_of_date, published_at from meta.published_builds where build_id = %s",
            (schema_build_id(conn, PUBLISHED),),
        ).fetchone()
    else:
        schema, source = schema_for(lock), f"the lock {lock}"
        made = conn.execute(
            "select build_id, as_of_date, created_at from meta.locks where name = %s", (lock,)
        ).fetchone()
    if made is None:
        raise ExportError(f"{source} is not in the warehouse" if lock else "nothing is published yet")
    build_id, as_of, stamp = made
    datasets = documented(manifest)
    present = {
        t
        for (t,) in conn.execute(
            "select table_name from information_schema.tables where table_schema = %s", (schema,)
        )
    }
    # a lock made before a dataset was published has none of it: left out, and said so
    missing = [d.name for d in datasets if d.name not in present]
    datasets = [d for d in datasets if d.name in present]
    if not datasets:
        raise ExportError(f"{source} holds none of the datasets to export")
    staging = out.with_name(out.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    files: dict[str, dict[str, Any]] = {}
    for dataset in datasets:
        names, types, rows = _frame(conn, schema, dataset)
        path = staging / f"{dataset.name}.{fmt}"
        if fmt == "csv":
            _write_csv(path, names, types, rows)
        else:
            table = _arrow(names, types, rows)
            if fmt == "parquet":
                _write_parquet(path, table)
            else:
                # the stamp in UTC: the file never depends on the session's time zone
                _write_dta(path, table, dataset, stamp.astimezone(dt.UTC).replace(tzinfo=None, microsecond=0))
        files[path.name] = {"rows": len(rows), "columns": len(names)}
    title = f"{source} ({build_id}, as of {as_of.isoformat()})"
    (staging / "codebook.md").write_text(codebook(datasets, title) + "\n", encoding="utf-8")
    files["codebook.md"] = {}
    for name, entry in files.items():
        entry["sha256"] = hashlib.sha256((staging / name).read_bytes()).hexdigest()
    record = {
        "source": source,
        "schema": schema,
        "build_id": build_id,
        "as_of_date": as_of.isoformat(),
        "format": fmt,
        "files": files,
        "not_in_source": missing,
    }
    (staging / "manifest.json").write_text(
        json.dumps(record, indent=2, sort_keys=True) + "\n", encoding="utf-8"
    )
    if out.exists():
        out.rmdir()
    staging.rename(out)
    return record
