"""The loader's promises that are not about single rules: atomicity under a kill, delivery order,
the pending area's life cycle, and landing zones that are not a local disk."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest
from support.deliveries import enrolment_row, fnr, prom_rows, spell_row, write_delivery
from support.ingest_kit import KEY, PSEUDONYMISE

from outcomes.contracts import load_contract
from outcomes.ingest.loader import apply_delivery
from outcomes.ingest.pending import purge_pending
from outcomes.ingest.pseudonym import Pseudonymiser
from outcomes.ingest.service import apply_source
from outcomes.settings import Settings
from outcomes.warehouse.connection import Warehouse


def ledger(warehouse: Warehouse, source: str, delivery_id: str) -> dict[str, object] | None:
    with psycopg.connect(warehouse.url()) as conn:
        cur = conn.execute(
            "select * from meta.deliveries where source = %s and delivery_id = %s", (source, delivery_id)
        )
        row = cur.fetchone()
        return None if row is None else dict(zip([d.name for d in cur.description], row, strict=True))


def count(warehouse: Warehouse, table: str, delivery_id: str) -> int:
    with psycopg.connect(warehouse.url()) as conn:
        row = conn.execute(f"select count(*) from {table} where delivery_id = %s", (delivery_id,)).fetchone()
        return int(row[0]) if row else 0


def reconciles(row: dict[str, object] | None) -> bool:
    assert row is not None
    parts = ("rows_loaded", "rows_pending", "rows_purged", "rows_quarantined")
    return row["rows_received"] == sum(int(row[p]) for p in parts)  # type: ignore[call-overload]


# --- atomicity ------------------------------------------------------------------------------

KILL_CHILD = """
import os, sys
from pathlib import Path
from outcomes.ingest.loader import apply_delivery
from outcomes.ingest.pseudonym import Pseudonymiser
from outcomes.ingest.service import loader_connection
from outcomes.settings import load_settings
with loader_connection(load_settings()) as conn:
    apply_delivery(conn, Path(sys.argv[1]), pseudonymise=Pseudonymiser(sys.argv[2].encode()))
"""


@pytest.mark.slow
def test_a_kill_mid_copy_leaves_nothing_and_a_rerun_completes(
    tmp_path: Path, settings: Settings, warehouse: Warehouse, loader: psycopg.Connection
) -> None:
    delivery_id = "20250301T0200Z-77"
    rows = [row for form in range(12_000) for row in prom_rows(f"K{form}", 900_000 + form % 500)]
    delivery = write_delivery(tmp_path, "registry", delivery_id, {"proms.csv": rows})
    child = subprocess.Popen([sys.executable, "-c", KILL_CHILD, str(delivery), KEY], env=dict(os.environ))
    copying = False
    deadline = time.monotonic() + 60
    with psycopg.connect(warehouse.url(), autocommit=True) as watch:
        while time.monotonic() < deadline and child.poll() is None:
            active = watch.execute(
                "select count(*) from pg_stat_activity "
                "where application_name = 'outcomes-loader' and query ilike 'copy %%'"
            ).fetchone()
            if active and active[0]:
                copying = True
                break
            time.sleep(0.02)
    assert copying, "the loader never reached its COPY"
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)

    assert ledger(warehouse, "registry", delivery_id) is None
    for table in ("raw.registry_proms", "pending.registry_proms", "quarantine.rows"):
        assert count(warehouse, table, delivery_id) == 0, table

    outcome = apply_delivery(loader, delivery, pseudonymise=PSEUDONYMISE)
    assert outcome.status == "loaded"
    assert outcome.rows_received == len(rows)
    assert count(warehouse, "pending.registry_proms", delivery_id) + count(
        warehouse, "raw.registry_proms", delivery_id
    ) == len(rows)
    assert reconciles(ledger(warehouse, "registry", delivery_id))


# --- delivery order -------------------------------------------------------------------------


def test_registry_before_enrolment_waits_in_pending_then_moves_in(
    tmp_path: Path, warehouse: Warehouse, loader: psycopg.Connection
) -> None:
    person = 910_001
    registry = write_delivery(
        tmp_path, "registry", "20250114T0200Z-11", {"proms.csv": prom_rows("P1", person)}
    )
    first = apply_delivery(loader, registry, pseudonymise=PSEUDONYMISE)
    assert (first.rows_loaded, first.rows_pending) == (0, 4)
    assert count(warehouse, "pending.registry_proms", "20250114T0200Z-11") == 4

    trial = write_delivery(
        tmp_path, "trial", "20250115T0100Z-11", {"enrolment.csv": [enrolment_row("ORD-001", person)]}
    )
    enrolled = apply_delivery(loader, trial, pseudonymise=PSEUDONYMISE)
    assert enrolled.rows_moved_from_pending == 4
    assert count(warehouse, "pending.registry_proms", "20250114T0200Z-11") == 0
    assert count(warehouse, "raw.registry_proms", "20250114T0200Z-11") == 4
    after = ledger(warehouse, "registry", "20250114T0200Z-11")
    assert after is not None and (after["rows_loaded"], after["rows_pending"]) == (4, 0)
    assert reconciles(after)


def test_a_correction_delivered_before_its_original_still_wins(
    tmp_path: Path, warehouse: Warehouse, loader: psycopg.Connection
) -> None:
    person = 910_002
    apply_delivery(
        loader,
        write_delivery(
            tmp_path, "trial", "20250116T0100Z-12", {"enrolment.csv": [enrolment_row("ORD-002", person)]}
        ),
        pseudonymise=PSEUDONYMISE,
    )
    corrected = spell_row("ORDER-S1", person, to_date="2025-03-31", registered_at="2025-04-02T08:00:00Z")
    original = spell_row("ORDER-S1", person, to_date=None, registered_at="2024-10-02T08:00:00Z")
    for delivery_id, row in (("20250407T0300Z-12", corrected), ("20250414T0300Z-12", original)):
        folder = write_delivery(tmp_path, "welfare", delivery_id, {"benefit_spells.csv": [row]})
        assert apply_delivery(loader, folder, pseudonymise=PSEUDONYMISE).rows_loaded == 1
    with psycopg.connect(warehouse.url()) as conn:
        versions = conn.execute(
            "select delivery_id, to_date from raw.welfare_benefit_spells where spell_id = 'ORDER-S1' "
            "order by registered_at desc"
        ).fetchall()
    assert versions == [("20250407T0300Z-12", dt.date(2025, 3, 31)), ("20250414T0300Z-12", None)]


def test_pending_rows_are_purged_after_the_retention_window_and_counted(
    tmp_path: Path, warehouse: Warehouse, loader: psycopg.Connection
) -> None:
    delivery_id = "20250110T0200Z-13"
    folder = write_delivery(tmp_path, "registry", delivery_id, {"proms.csv": prom_rows("NP1", 920_001)})
    assert apply_delivery(loader, folder, pseudonymise=PSEUDONYMISE).rows_pending == 4
    contract = load_contract()
    with loader.transaction():  # day 119: kept
        purge_pending(loader, contract, dt.datetime(2025, 5, 9, 1, tzinfo=dt.UTC), 120)
    assert count(warehouse, "pending.registry_proms", delivery_id) == 4
    with loader.transaction():  # day 121: purged
        purge_pending(loader, contract, dt.datetime(2025, 5, 11, 3, tzinfo=dt.UTC), 120)
    assert count(warehouse, "pending.registry_proms", delivery_id) == 0
    after = ledger(warehouse, "registry", delivery_id)
    assert after is not None and (after["rows_pending"], after["rows_purged"]) == (0, 4)
    assert reconciles(after)


# --- landing zones that are not a local disk ------------------------------------------------


def test_a_landing_zone_on_a_non_local_fsspec_file_system(settings: Settings, warehouse: Warehouse) -> None:
    """memory:// has no local path at all: the loader must go through the file-system API."""
    import fsspec

    fs = fsspec.filesystem("memory")
    local = Path(f"/tmp/oc-memory-src-{os.getpid()}")
    folder = write_delivery(
        local, "trial", "20250117T0100Z-14", {"enrolment.csv": [enrolment_row("MEM-001", 930_001)]}
    )
    for path in folder.iterdir():
        fs.pipe(f"/landing-test/trial/{folder.name}/{path.name}", path.read_bytes())
    os.environ.setdefault("OUTCOMES_PSEUDONYM_KEY", KEY)
    outcomes = apply_source(settings, "trial", url="memory:///landing-test")
    assert [(o.delivery_id, o.status, o.rows_loaded) for o in outcomes] == [
        ("20250117T0100Z-14", "loaded", 1)
    ]
    fs.rm("/landing-test", recursive=True)


def test_a_file_url_goes_through_airflow_object_storage(tmp_path: Path, settings: Settings) -> None:
    from outcomes.ingest.landing import complete_deliveries, landing_root

    write_delivery(tmp_path, "registry", "20250118T0200Z-15", {"proms.csv": prom_rows("U1", 930_002)})
    root = landing_root(f"file://{tmp_path}")
    assert type(root).__name__ == "ObjectStoragePath"
    assert [p.name for p in complete_deliveries(root, "registry")] == ["20250118T0200Z-15"]


def test_no_fnr_in_the_pseudonym() -> None:
    pseudonym = PSEUDONYMISE(fnr(1))
    assert len(pseudonym) == 64 and fnr(1) not in pseudonym
    assert Pseudonymiser(b"another key of thirty-two bytes!!")(fnr(1)) != pseudonym
