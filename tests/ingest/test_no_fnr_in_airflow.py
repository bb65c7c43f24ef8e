"""No fnr in logs, XComs or anywhere in Airflow's metadata database after real ingest runs,
including runs over bad rows (whose messages quote values) and an invalid fnr."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
from support.deliveries import enrolment_row, fnr, prom_rows, write_delivery

from outcomes.runners import inprocess
from outcomes.settings import Settings, load_settings
from outcomes.warehouse.connection import Warehouse

pytestmark = pytest.mark.slow


def text_columns(conn: psycopg.Connection, schemas: tuple[str, ...]) -> list[tuple[str, str, str]]:
    return conn.execute(
        """
        select table_schema, table_name, column_name from information_schema.columns
        where table_schema = any(%s) and data_type in ('text', 'character varying', 'jsonb', 'json', 'bytea')
        order by 1, 2, 3
        """,
        (list(schemas),),
    ).fetchall()


def holders(conn: psycopg.Connection, schemas: tuple[str, ...], needles: list[str]) -> list[str]:
    found = []
    for schema, table, column in text_columns(conn, schemas):
        for needle in needles:
            hit = conn.execute(
                f'select 1 from "{schema}"."{table}" where "{column}"::text like %s limit 1', (f"%{needle}%",)
            ).fetchone()
            if hit:
                found.append(f"{schema}.{table}.{column}")
    return found


def test_ingest_runs_leave_no_fnr_in_logs_xcoms_or_metadata(
    tmp_path: Path,
    airflow_ready: Settings,
    warehouse: Warehouse,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("OUTCOMES_LANDING", str(tmp_path))
    monkeypatch.setenv("OUTCOMES_PSEUDONYM_KEY", "f" * 64)
    enrolled, outsider = 940_001, 940_002
    bad = fnr(940_003)
    invalid = bad[:-1] + str((int(bad[-1]) + 1) % 10)
    write_delivery(
        tmp_path,
        "trial",
        "20250201T0100Z-21",
        {
            "enrolment.csv": [
                enrolment_row("PRV-001", enrolled),
                enrolment_row("PRV-002", 940_004, fnr=invalid),
            ]
        },
    )
    proms = prom_rows("PRIV1", enrolled) + prom_rows("PRIV2", outsider)
    proms += [{**prom_rows("PRIV3", 940_005)[0], "fnr": invalid}]  # a bad row: its message quotes nothing
    proms += [{**prom_rows("PRIV4", 940_006)[0], "value": 99}]
    proms += [row for form in range(40) for row in prom_rows(f"PRIVF{form}", enrolled)]
    write_delivery(tmp_path, "registry", "20250202T0200Z-21", {"proms.csv": proms})

    settings = load_settings()
    for dag_id in ("ingest_trial", "ingest_registry"):
        outcome = inprocess.run_dag(settings, dag_id, conf={"wait": False})
        assert outcome.succeeded, outcome
    needles = [fnr(n) for n in (enrolled, outsider, 940_004, 940_005, 940_006)] + [invalid]

    printed = capfd.readouterr()
    for needle in needles:
        assert needle not in printed.out and needle not in printed.err

    for path in Path(airflow_ready.airflow_home).rglob("*"):
        if path.is_file() and path.stat().st_size < 50_000_000:
            content = path.read_bytes()
            for needle in needles:
                assert needle.encode() not in content, path

    with psycopg.connect(warehouse.url(database=warehouse.airflow_database)) as conn:
        assert holders(conn, ("public",), needles) == []
        xcoms = conn.execute(
            "select count(*) from xcom where dag_id in ('ingest_trial', 'ingest_registry')"
        ).fetchone()
        assert xcoms and xcoms[0] > 0  # the runs did push summaries, and they are clean
    with psycopg.connect(warehouse.url()) as conn:
        assert holders(conn, ("raw", "pending", "quarantine", "meta", "marts", "history"), needles) == []
        quarantined = conn.execute(
            "select count(*) from quarantine.rows "
            "where delivery_id in ('20250201T0100Z-21', '20250202T0200Z-21')"
        ).fetchone()
        # The trial delivery has 1 bad row of 2 (over the 5 % threshold): both rows are kept in
        # quarantine; the registry delivery quarantines its 2 bad rows.
        assert quarantined == (4,)
