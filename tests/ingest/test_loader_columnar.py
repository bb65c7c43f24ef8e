"""The loader stores the same rows whichever path checked and stored the file.

A plain file takes the columnar check (batches of good rows, bad rows one by one) and its good rows
are loaded direct into raw and pending; the same rows with every field quoted are not plain, are
read row by row and go through the temporary table. Both deliveries are applied to the
real warehouse, after an enrolment, and must leave the same rows in raw, pending and quarantine
(with the same pseudonyms, types, NULLs, line numbers and violations) and the same ledger counts.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from unittest import mock

import psycopg
from support.deliveries import contract_header, csv_bytes, enrolment_row, fnr, prom_rows, write_delivery
from support.ingest_kit import PSEUDONYMISE

from outcomes.contracts import columnar
from outcomes.ingest.loader import apply_delivery
from outcomes.ingest.sinks import _Direct
from outcomes.warehouse.connection import Warehouse


def registry_rows() -> list[dict[str, Any]]:
    """100 forms of 4 items, for enrolled and not enrolled people, with three bad rows (under the
    5 % that quarantines a whole delivery) and one fnr where a form_id belongs."""
    rows: list[dict[str, Any]] = []
    for form in range(100):
        rows += prom_rows(f"COL-{form}", 7100 + form % 7, answered_on=f"2025-0{1 + form % 9}-1{form % 10}")
    rows[5]["value"] = 9  # nrs_pain_intensity is 0..10: fine; odi_01 below is not
    rows[8]["value"] = 7  # odi_01 is 0..5
    rows[41]["answered_on"] = "2025-02-30"
    rows[77]["item"] = "odi_99"
    rows[90]["form_id"] = fnr(7999)  # kept, pseudonymised and flagged (fnr_in_other_column)
    rows[123]["value"] = None  # a skipped item: NULL, valid
    return rows


def write_quoted(root: Path, delivery_id: str, rows: list[dict[str, Any]]) -> Path:
    """The same rows with every field quoted (not plain: read row by row), true manifest."""
    data = csv_bytes(contract_header("proms.csv"), rows, quote_all=True)
    return write_delivery(
        root, "registry", delivery_id, {"proms.csv": data}, extracted_at="2025-10-01T02:00:00Z"
    )


def stored(conn: psycopg.Connection, delivery_id: str) -> dict[str, list[tuple[Any, ...]]]:
    columns = "source_line, form_id, person_pseudonym, answered_on, item, value, updated_at, is_deleted"
    out = {
        table: conn.execute(
            f"select {columns} from {table} where delivery_id = %s order by source_line", (delivery_id,)
        ).fetchall()
        for table in ("raw.registry_proms", "pending.registry_proms")
    }
    out["quarantine"] = conn.execute(
        "select source_line, record, replace(violations::text, %s, 'the delivery') from quarantine.rows "
        "where delivery_id = %s order by source_line",
        (delivery_id, delivery_id),
    ).fetchall()
    return out


def test_plain_and_quoted_files_store_the_same_rows(
    tmp_path: Path, loader: psycopg.Connection, warehouse: Warehouse
) -> None:
    root = tmp_path / "landing"
    enrolment = write_delivery(
        root, "trial", "20250930T0100Z", {"enrolment.csv": [enrolment_row("IPS-7101", 7101)]}
    )
    assert apply_delivery(loader, enrolment, pseudonymise=PSEUDONYMISE).status == "loaded"
    rows = registry_rows()
    plain = write_delivery(root, "registry", "20251001T0200Z", {"proms.csv": rows})
    quoted = write_quoted(root, "20251001T0300Z", rows)

    taken: list[bool] = []
    check_file = columnar.check_file

    def spy(*args: Any) -> Any:
        result = check_file(*args)
        taken.append(result is not None)
        return result

    direct: list[int] = []
    write = _Direct.write

    def spy_direct(self: _Direct, *args: Any) -> None:
        write(self, *args)
        direct.append(self.loaded + self.pending)

    with mock.patch.object(columnar, "check_file", spy), mock.patch.object(_Direct, "write", spy_direct):
        fast = apply_delivery(loader, plain, pseudonymise=PSEUDONYMISE)
        assert taken == [True] and direct  # the plain file: columnar, its good rows loaded direct
        slow = apply_delivery(loader, quoted, pseudonymise=PSEUDONYMISE)
    assert taken[1:] and not any(taken[1:])  # the quoted file: row by row, through the temp table
    assert direct[-1] == fast.rows_loaded + fast.rows_pending

    assert fast.status == slow.status == "loaded"
    counts = ("rows_received", "rows_loaded", "rows_pending", "rows_quarantined", "rows_purged")
    assert [getattr(fast, c) for c in counts] == [getattr(slow, c) for c in counts]
    # Person 7101 (enrolled) has 15 forms; one of their rows (rows[90]) is quarantined.
    assert (fast.rows_loaded, fast.rows_quarantined) == (4 * 15 - 1, 4)

    with psycopg.connect(warehouse.url()) as conn:
        by_plain, by_quoted = stored(conn, fast.delivery_id), stored(conn, slow.delivery_id)
    assert by_plain == by_quoted
    rules = {v["rule"] for _, _, violations in by_plain["quarantine"] for v in json.loads(violations)}
    assert rules == {"item_range", "type", "item_code", "fnr_in_other_column"}
    flagged = next(r for r in by_plain["quarantine"] if r[0] == 92)  # rows[90] is on line 92
    assert flagged[1]["form_id"] == PSEUDONYMISE(fnr(7999))
    assert any(r[5] is None for r in by_plain["raw.registry_proms"] + by_plain["pending.registry_proms"])
