"""docs/definitions.md, "Identity and privacy": no fnr is ever stored in the warehouse (raw, pending,
quarantine, meta: rows, records, violations, messages) nor written to the ingest logs.

The scan looks for every fnr this test suite wrote (``ingest_kit.FNRS``: all the deliveries of
test_bad_input.py and test_column_rules.py when they ran first in the session, and this module's
own deliveries, so it is meaningful alone too).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest
from support.ingest_kit import (
    FNRS,
    INGEST_SCHEMAS,
    PSEUDONYMISE,
    assert_applied,
    broken_fnr,
    check_reconciliation,
    columns,
    csv_bytes,
    enrolment_row,
    ledger,
    new_fnr,
    prom_row,
    quarantined,
    spell_row,
    write_delivery,
)

from outcomes.contracts.registry import fnr_keyed_sources
from outcomes.ingest.loader import apply_delivery
from outcomes.ingest.service import loader_connection
from outcomes.runners.inprocess import DagRunOutcome
from outcomes.settings import Settings

ELEVEN_DIGITS = re.compile(r"(?=(\d{11}))")


def text_columns(conn: psycopg.Connection) -> list[tuple[str, str, str]]:
    return conn.execute(
        """
        select table_schema, table_name, column_name from information_schema.columns
        where table_schema = any(%s)
          and data_type in ('text', 'character varying', 'character', 'json', 'jsonb', 'bytea')
        order by 1, 2, 3
        """,
        (list(INGEST_SCHEMAS),),
    ).fetchall()


def fnrs_in(text: str, needles: set[str]) -> set[str]:
    """The needles found in ``text`` (every 11-digit window of it)."""
    return {m for m in ELEVEN_DIGITS.findall(text) if m in needles}


def stored_fnrs(conn: psycopg.Connection, needles: set[str]) -> dict[str, set[str]]:
    """``schema.table.column`` -> the needles it holds, over every text-like column ingestion writes."""
    found: dict[str, set[str]] = {}
    for schema, table, column in text_columns(conn):
        rows = conn.execute(
            f'select distinct "{column}"::text from "{schema}"."{table}" where "{column}"::text ~ %s',
            (r"\d{11}",),
        ).fetchall()
        hits = set().union(*(fnrs_in(r[0], needles) for r in rows)) if rows else set()
        if hits:
            found[f"{schema}.{table}.{column}"] = hits
    return found


@pytest.mark.slow
def test_no_fnr_written_appears_anywhere_in_the_warehouse_or_the_logs(
    landing: Path,
    db: psycopg.Connection,
    ingest: Callable[..., DagRunOutcome],
    capfd: pytest.CaptureFixture[str],
) -> None:
    # This module's own deliveries: loaded, pending, rows quarantined for a broken fnr, a whole
    # delivery quarantined (its rows kept as records), and a file whose header row is missing
    # (its first data row, fnr included, read as the header).
    enrolment = [enrolment_row() for _ in range(20)] + [enrolment_row(fnr=broken_fnr())]
    trial = write_delivery(landing, "trial", {"enrolment.csv": enrolment})
    spells = [spell_row() for _ in range(30)] + [spell_row(fnr=broken_fnr())]
    welfare = write_delivery(landing, "welfare", {"benefit_spells.csv": spells})

    def lie(doc: dict) -> None:
        doc["files"][0]["rows"] += 1

    lying = write_delivery(
        landing, "registry", {"proms.csv": [prom_row() for _ in range(6)]}, edit_manifest=lie
    )
    headless = csv_bytes("proms.csv", [prom_row() for _ in range(3)]).split(b"\n", 1)[1]
    no_header = write_delivery(landing, "registry", {"proms.csv": headless})
    for source in ("trial", *fnr_keyed_sources()):
        assert_applied(ingest(source))

    # Each delivery took the path it was written for, so the scan covers every one of them.
    expected = {
        ("trial", trial.name): ("loaded", 1),
        ("welfare", welfare.name): ("loaded", 1),
        ("registry", lying.name): ("quarantined", 6),
        ("registry", no_header.name): ("quarantined", 2),
    }
    for (source, delivery_id), (status, bad) in expected.items():
        entry = ledger(db, source, delivery_id)
        assert entry is not None and (entry["status"], entry["rows_quarantined"]) == (status, bad)

    assert FNRS
    scanned = {f"{s}.{t}.{c}" for s, t, c in text_columns(db)}
    assert {"quarantine.rows.record", "quarantine.rows.violations", "meta.deliveries.message"} <= scanned
    assert {"quarantine.delivery_problems.message", "meta.delivery_events.detail"} <= scanned
    assert stored_fnrs(db, FNRS) == {}

    logs = capfd.readouterr()
    assert fnrs_in(logs.out + logs.err, FNRS) == set()


def test_an_fnr_under_the_wrong_column_name_is_not_stored(
    settings: Settings, landing: Path, db: psycopg.Connection
) -> None:
    people = {new_fnr(track=False) for _ in range(4)}
    names = columns("proms.csv")
    data = csv_bytes("proms.csv", [prom_row(fnr=person) for person in sorted(people)])
    swapped = ["fnr" if c == "form_id" else "form_id" if c == "fnr" else c for c in names]
    data = data.replace(",".join(names).encode(), ",".join(swapped).encode(), 1)
    folder = write_delivery(landing, "registry", {"proms.csv": data})
    with loader_connection(settings) as conn:
        outcome = apply_delivery(conn, folder, pseudonymise=PSEUDONYMISE)
    assert outcome.status == "quarantined"
    assert len(quarantined(db, "registry", folder.name)) == 4
    assert stored_fnrs(db, people) == {}


@pytest.mark.slow
def test_every_delivery_of_the_suite_reconciles_at_the_end(db: psycopg.Connection) -> None:
    assert check_reconciliation(db) > 0
