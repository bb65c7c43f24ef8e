"""dbt staging on a real warehouse: latest versions whatever the arrival order, annulled, deleted and
withdrawn records gone, the enrolment as its latest extract less the erased, and the as-of cutoff
(docs/definitions.md, "Time")."""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from support.deliveries import enrolment_row, prom_rows, spell_row, write_delivery

from outcomes.ingest.loader import apply_delivery
from outcomes.ingest.pseudonym import Pseudonymiser
from outcomes.settings import Settings
from outcomes.transform.dbt import run_dbt
from outcomes.warehouse.bootstrap import ensure_database, migrate
from outcomes.warehouse.connection import Warehouse

pytestmark = pytest.mark.slow
PSEUDONYMISE = Pseudonymiser(b"s" * 64)
AS_OF = dt.date(2025, 6, 30)


@pytest.fixture(scope="module")
def scratch(warehouse: Warehouse) -> Iterator[Warehouse]:
    name = f"{warehouse.database}_stg_{secrets.token_hex(3)}"
    ensure_database(warehouse, name)
    scratch = warehouse.for_database(name)
    migrate(scratch)
    yield scratch
    with psycopg.connect(warehouse.url(database="postgres"), autocommit=True) as conn:
        conn.execute(f'drop database if exists "{name}" with (force)')


def job(job_id: str, participant_id: str, recorded_at: str, **overrides: Any) -> dict[str, Any]:
    row = {
        "job_id": job_id,
        "participant_id": participant_id,
        "start_date": "2025-03-01",
        "end_date": None,
        "job_type": "COMPETITIVE",
        "hours_per_week": "20",
        "recorded_at": recorded_at,
        "is_deleted": "false",
    }
    return {**row, **overrides}


@pytest.fixture(scope="module")
def built(scratch: Warehouse, settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Warehouse:
    root = tmp_path_factory.mktemp("staging-landing")
    deliveries: list[tuple[str, str, dict[str, list[dict[str, Any]]]]] = [
        (
            "trial",
            "20250110T0100Z",
            {
                "enrolment.csv": [
                    enrolment_row(
                        "STG-001",
                        1,
                        randomised_on="2025-01-06",
                        followup_ended_on="2025-07-15",
                        followup_end_reason="LOST",
                    ),
                    enrolment_row("STG-002", 2, randomised_on="2025-01-08", erase="false"),
                    enrolment_row("STG-003", 3, randomised_on="2025-01-09"),
                ]
            },
        ),
        (
            "registry",
            "20250111T0200Z",
            {"proms.csv": prom_rows("F1", 1, "2025-01-05") + prom_rows("F2", 2) + prom_rows("FX", 99)},
        ),  # person 99: a clinic patient
        # The registry corrects one item and withdraws form F2.
        (
            "registry",
            "20250301T0200Z",
            {
                "proms.csv": [
                    {**prom_rows("F1", 1, "2025-01-05")[0], "value": 4, "updated_at": "2025-02-28T10:00:00Z"},
                    *[
                        {**r, "is_deleted": "true", "updated_at": "2025-02-28T11:00:00Z"}
                        for r in prom_rows("F2", 2)
                    ],
                ]
            },
        ),
        # A correction that arrives BEFORE its original (delivery order is not version order).
        (
            "welfare",
            "20250303T0300Z",
            {
                "benefit_spells.csv": [
                    spell_row("S1", 1, to_date="2025-02-28", registered_at="2025-03-02T08:00:00Z"),
                    spell_row(
                        "S2", 1, benefit="AAP", registered_at="2025-03-02T08:00:00Z", status="ANNULLED"
                    ),
                ]
            },
        ),
        (
            "welfare",
            "20250310T0300Z",
            {
                "benefit_spells.csv": [
                    spell_row("S1", 1, to_date=None, registered_at="2024-10-02T08:00:00Z"),
                    spell_row(
                        "S3", 2, benefit="AAP", from_date="2025-03-01", registered_at="2025-03-09T08:00:00Z"
                    ),
                ]
            },
        ),
        (
            "employment",
            "20250401T0400Z",
            {
                "jobs.csv": [
                    job("J1", "STG-001", "2025-03-31T09:00:00Z"),
                    job("J2", "STG-002", "2025-03-31T09:00:00Z"),
                ]
            },
        ),
        (
            "employment",
            "20250402T0400Z",
            {
                "jobs.csv": [
                    job("J2", "STG-002", "2025-04-01T09:00:00Z", is_deleted="true"),  # entered in error
                ]
            },
        ),
        # After the as-of date: must not count in a build as of 2025-06-30.
        ("employment", "20250701T0400Z", {"jobs.csv": [job("J3", "STG-003", "2025-07-01T01:00:00Z")]}),
        (
            "welfare",
            "20250630T2359Z",
            {
                "benefit_spells.csv": [
                    spell_row("S4", 2, registered_at="2025-07-01T00:00:00Z"),  # a version stamped after D
                ]
            },
        ),
        # The next trial extract: STG-003 asks to be erased.
        (
            "trial",
            "20250501T0100Z",
            {
                "enrolment.csv": [
                    enrolment_row(
                        "STG-001",
                        1,
                        randomised_on="2025-01-06",
                        followup_ended_on="2025-07-15",
                        followup_end_reason="LOST",
                    ),
                    enrolment_row("STG-002", 2, randomised_on="2025-01-08"),
                    enrolment_row("STG-003", 3, randomised_on="2025-01-09", erase="true"),
                ]
            },
        ),
    ]
    with psycopg.connect(scratch.url(), autocommit=True) as conn:
        conn.execute("set role outcomes_loader")
        for source, delivery_id, files in deliveries:
            outcome = apply_delivery(
                conn, write_delivery(root, source, delivery_id, files), pseudonymise=PSEUDONYMISE
            )
            assert outcome.status == "loaded", outcome
    # with the seeds: staging's tests check the value sets against them
    result = run_dbt(
        settings,
        scratch,
        ["build", "--select", "staging", "path:seeds", "--indirect-selection", "cautious"],
        as_of=AS_OF,
    )
    assert result.success, result.failures
    return scratch


def query(warehouse: Warehouse, sql: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(warehouse.url()) as conn:
        return conn.execute(sql).fetchall()


def test_participants_come_from_the_latest_extract_without_the_erased(built: Warehouse) -> None:
    rows = query(
        built, "select participant_id, followup_ended_on from staging.stg_trial__participants order by 1"
    )
    # STG-001's follow-up ends on 2025-07-15: after the as-of day, so not known yet.
    assert rows == [("STG-001", None), ("STG-002", None)]


def test_the_latest_item_version_wins_and_withdrawn_forms_and_outsiders_are_gone(built: Warehouse) -> None:
    rows = query(
        built,
        "select form_id, item, value from staging.stg_registry__prom_items order by 1, 2",
    )
    # F2 withdrawn; FX is a clinic patient's, whose rows wait in pending and never reach raw
    assert {r[0] for r in rows} == {"F1"}
    assert ("F1", "odi_01", 4) in rows  # the correction


def test_a_correction_delivered_before_its_original_still_wins_and_annulled_spells_vanish(
    built: Warehouse,
) -> None:
    rows = query(built, "select spell_id, to_date from staging.stg_welfare__benefit_spells order by 1")
    assert rows == [("S1", dt.date(2025, 2, 28)), ("S3", None)]


def test_deleted_jobs_and_everything_after_the_as_of_day_are_left_out(built: Warehouse) -> None:
    assert query(built, "select job_id from staging.stg_employment__jobs order by 1") == [("J1",)]


def test_a_later_as_of_sees_later_deliveries(built: Warehouse, settings: Settings) -> None:
    result = run_dbt(settings, built, ["run", "--select", "staging"], as_of=dt.date(2025, 7, 20))
    assert result.success, result.failures
    rows = query(
        built,
        "select participant_id, followup_ended_on, followup_end_reason "
        "from staging.stg_trial__participants order by 1",
    )
    assert rows[0] == ("STG-001", dt.date(2025, 7, 15), "LOST")
    spells = query(built, "select spell_id from staging.stg_welfare__benefit_spells order by 1")
    assert spells == [("S1",), ("S3",), ("S4",)]  # S4's version was stamped after 2025-06-30
    # J3 belongs to STG-003, who was erased: it never comes back, whatever the as-of date.
    assert query(built, "select job_id from staging.stg_employment__jobs order by 1") == [("J1",)]


def test_analysts_cannot_read_staging(built: Warehouse) -> None:
    with psycopg.connect(built.url(role=None)) as conn:
        conn.execute("set role outcomes_analyst")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("select * from staging.stg_trial__participants")


def test_no_dbt_artefact_is_left_in_the_checkout(settings: Settings) -> None:
    assert not (Path(settings.dbt_project_dir) / "target" / "run").exists()


def test_the_build_first_analyses_sources_a_large_delivery_changed(
    built: Warehouse, settings: Settings
) -> None:
    """A large delivery committed just before the build leaves its tables without planner
    statistics until autovacuum comes round; the build analyses every raw, pending or meta table
    never analysed or changed by more than a tenth since its last analysis (on-run-start)."""
    with psycopg.connect(built.url(), autocommit=True) as conn:
        conn.execute("set role outcomes_owner")
        conn.execute(
            """
            insert into pending.registry_proms
                (delivery_id, source_line, form_id, person_pseudonym, answered_on, item, value,
                 updated_at, is_deleted, held_since)
            select '20250601T0200Z', n, 'BULK' || n, md5(n::text), date '2025-05-01', 'odi_01', 1,
                   timestamptz '2025-05-01 10:00Z', false, now()
            from generate_series(1, 5000) as n
            """
        )
        conn.execute("select pg_stat_force_next_flush()")
    try:
        result = run_dbt(settings, built, ["run", "--select", "stg_trial__participants"], as_of=AS_OF)
        assert result.success, result.failures
        stats = dict(
            query(
                built,
                "select schemaname || '.' || relname, n_mod_since_analyze from pg_stat_user_tables "
                "where schemaname in ('raw', 'pending')",
            )
        )
        assert stats["pending.registry_proms"] == 0
        log = (settings.dbt_log_dir / "dbt.log").read_text()
        assert "analysed pending.registry_proms" in log
    finally:
        with psycopg.connect(built.url(), autocommit=True) as conn:
            conn.execute("delete from pending.registry_proms where delivery_id = '20250601T0200Z'")
