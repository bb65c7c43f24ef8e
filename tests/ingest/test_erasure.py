"""Erasure (docs/definitions.md): a participant with ``erase = true`` disappears from every table at the next
run, later deliveries about them are dropped on arrival, every delivery stays reconciled, and the
run records that an erasure happened, not whom. The register keeps tombstones only; the queue of
erasures the next build carries into the locks and history holds the participant ID until then
(tests/warehouse/test_erasure_build.py follows it through a build)."""

from __future__ import annotations

from pathlib import Path

import psycopg
from support.deliveries import contract_header, csv_bytes, enrolment_row, prom_rows, spell_row, write_delivery
from support.traces import tables_holding

from outcomes.ingest.erasure import tombstone
from outcomes.ingest.loader import apply_delivery
from outcomes.ingest.pseudonym import Pseudonymiser
from outcomes.warehouse.connection import Warehouse

PSEUDONYMISE = Pseudonymiser(b"e" * 64)
ERASED, KEPT = 960_001, 960_002


def checkpoint(participant_id: str, month: int, recorded: str) -> dict[str, object]:
    return {
        "participant_id": participant_id,
        "checkpoint_month": month,
        "assessed_on": "2025-04-15",
        "status": "COMPETITIVE",
        "hours_per_week": "20",
        "recorded_at": recorded,
    }


def job(participant_id: str, job_id: str) -> dict[str, object]:
    return {
        "job_id": job_id,
        "participant_id": participant_id,
        "start_date": "2025-04-01",
        "end_date": None,
        "job_type": "COMPETITIVE",
        "hours_per_week": "20",
        "recorded_at": "2025-04-16T09:00:00Z",
        "is_deleted": "false",
    }


def traces(warehouse: Warehouse, participant_id: str, pseudonym: str) -> list[str]:
    """Every table of the loader's schemas (but the build's queue) holding a row about this person:
    the register of tombstones included."""
    return tables_holding(
        warehouse,
        [participant_id, pseudonym],
        schemas=("raw", "pending", "quarantine", "meta"),
        leaving_out=("pending.erasure_queue",),
    )


def queued(warehouse: Warehouse, prefix: str) -> list[str]:
    with psycopg.connect(warehouse.url()) as conn:
        rows = conn.execute(
            "select participant_id from pending.erasure_queue where participant_id like %s order by 1",
            (f"{prefix}%",),
        ).fetchall()
    return [r[0] for r in rows]


def unreconciled(warehouse: Warehouse) -> list[tuple[str, str]]:
    with psycopg.connect(warehouse.url()) as conn:
        return conn.execute(
            """
            select source, delivery_id from meta.deliveries
            where status <> 'duplicate'
              and rows_received <> rows_loaded + rows_pending + rows_purged + rows_quarantined
            """
        ).fetchall()


def test_an_erasure_removes_every_trace_and_keeps_the_books(
    tmp_path: Path, warehouse: Warehouse, loader: psycopg.Connection
) -> None:
    def apply(source: str, delivery_id: str, files: dict[str, list[dict[str, object]]]) -> object:
        return apply_delivery(
            loader, write_delivery(tmp_path, source, delivery_id, files), pseudonymise=PSEUDONYMISE
        )

    enrolment = [enrolment_row("ERA-001", ERASED), enrolment_row("ERA-002", KEPT)]
    apply("trial", "20250401T0100Z-41", {"enrolment.csv": enrolment})
    proms = prom_rows("ERAF1", ERASED) + prom_rows("ERAF2", KEPT)
    proms += [row for form in range(30) for row in prom_rows(f"ERAK{form}", KEPT)]
    proms.append({**prom_rows("ERAF3", ERASED)[0], "value": 42})  # quarantined row about them
    apply("registry", "20250402T0200Z-41", {"proms.csv": proms})
    apply("welfare", "20250407T0300Z-41", {"benefit_spells.csv": [spell_row("ERA-S1", ERASED)]})
    apply(
        "employment",
        "20250416T0400Z-41",
        {
            "checkpoints.csv": [checkpoint("ERA-001", 3, "2025-04-16T09:00:00Z")],
            "jobs.csv": [job("ERA-001", "ERA-001-J1"), job("ERA-002", "ERA-002-J1")],
        },
    )
    # a delivery that lost its header line: the first data row is read as the header, the whole
    # file is quarantined with its rows kept under those values as names
    headless = csv_bytes(
        contract_header("jobs.csv"), [job("ERA-002", "ERA-002-J3"), job("ERA-001", "ERA-001-J3")]
    ).split(b"\n", 1)[1]
    lost = apply("employment", "20250417T0400Z-41", {"jobs.csv": headless})  # type: ignore[dict-item]
    assert lost.status == "quarantined"  # type: ignore[attr-defined]
    pseudonym = PSEUDONYMISE(enrolment[0]["fnr"])
    assert traces(warehouse, "ERA-001", pseudonym)  # they are there before
    assert "ERA-002" not in str(lost)  # the header it read names nobody in the ledger

    erase = [enrolment_row("ERA-001", ERASED, erase="true"), enrolment_row("ERA-002", KEPT)]
    outcome = apply("trial", "20250420T0100Z-41", {"enrolment.csv": erase})
    assert outcome.participants_erased == 1, outcome  # type: ignore[attr-defined]
    left = traces(warehouse, "ERA-001", pseudonym)
    assert left == [], (left, outcome)
    assert unreconciled(warehouse) == []
    assert queued(warehouse, "ERA-") == ["ERA-001"]  # for the next build: locks and history

    with psycopg.connect(warehouse.url()) as conn:
        [(rows, detail)] = conn.execute(
            "select rows, detail from meta.delivery_events "
            "where event = 'erasure' and delivery_id = '20250420T0100Z-41'"
        ).fetchall()
        kept = conn.execute(
            "select count(*) from raw.registry_proms where delivery_id = '20250402T0200Z-41'"
        ).fetchone()
    assert rows == 1 and "ERA-001" not in detail and pseudonym not in detail
    assert kept == (4 + 30 * 4,)  # the other participant's rows are untouched

    # Later deliveries about them are dropped on arrival, counted as purged, never quarantined.
    later = apply("registry", "20250421T0200Z-41", {"proms.csv": prom_rows("ERAF9", ERASED)})
    assert (later.rows_loaded, later.rows_pending, later.rows_purged) == (0, 0, 4)  # type: ignore[attr-defined]
    late_job = apply("employment", "20250421T0400Z-41", {"jobs.csv": [job("ERA-001", "ERA-001-J2")]})
    assert (late_job.rows_quarantined, late_job.rows_purged) == (0, 1)  # type: ignore[attr-defined]
    again = apply(
        "trial", "20250427T0100Z-41", {"enrolment.csv": [*erase, enrolment_row("ERA-003", 960_003)]}
    )
    assert again.rows_purged == 1 and again.participants_erased == 0  # type: ignore[attr-defined]
    assert traces(warehouse, "ERA-001", pseudonym) == []
    assert unreconciled(warehouse) == []


def test_a_tombstone_is_keyed_and_never_a_pseudonym() -> None:
    other = Pseudonymiser(b"f" * 64)
    mark = tombstone(PSEUDONYMISE, "participant_id", "ERA-001")
    assert mark != tombstone(other, "participant_id", "ERA-001")  # no key, no match
    assert mark != tombstone(PSEUDONYMISE, "person_pseudonym", "ERA-001")  # one domain per kind
    assert mark not in {PSEUDONYMISE("ERA-001"), "ERA-001"}
