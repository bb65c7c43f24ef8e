"""A mart's structure is dbt's to check, and only dbt's (docs/quality-gate.md, "dbt or the gate"):
each rule below was a gate expectation too, and now lives in one place. One build of the
synthetic trial; the candidate marts are rebuilt from it, every rule is broken by a real row (each
on a participant or cell of its own), and `dbt test` must fail exactly the test that holds it. The
grains of the three facts are unique indexes (tests/transform/test_grain.py) and the
participants' a primary key (checked here on the built table).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from support.builds import synthetic_trial

from outcomes.settings import Settings
from outcomes.transform.dbt import DbtOutcome, run_dbt
from outcomes.warehouse.connection import Warehouse
from outcomes.warehouse.publish import CANDIDATE, prepare_candidate

pytestmark = pytest.mark.slow
UNTIL = dt.date(2026, 11, 21)
C = CANDIDATE
MARTS = ["--select", "path:models/marts", "--exclude", "test_type:unit"]
MONTHS, PROMS = "fct_participant_months", "fct_prom_scores"


def nth(n: int) -> str:
    """The n-th participant by id: each break its own, so that no break hides another."""
    return f"(select participant_id from {C}.dim_participants order by 1 offset {n} limit 1)"


#: (the dbt test, its model, its column or None for a model's test) -> the statement that breaks it
BREAKS: dict[tuple[str, str, str | None], str] = {
    ("accepted_values", "dim_participants", "study"): f"update {C}.dim_participants set study = 'PILOT2' "
    f"where participant_id = {nth(1)}",
    ("accepted_values", "dim_participants", "arm"): f"update {C}.dim_participants set arm = 'CONTROL' "
    f"where participant_id = {nth(2)}",
    ("accepted_values", "dim_participants", "sex"): f"update {C}.dim_participants set sex = 'X' "
    f"where participant_id = {nth(3)}",
    ("value_between", "dim_participants", "age_at_randomisation"): f"update {C}.dim_participants "
    f"set age_at_randomisation = 12 where participant_id = {nth(4)}",
    ("accepted_values", "dim_participants", "followup_end_reason"): f"update {C}.dim_participants "
    f"set followup_end_reason = 'MOVED' where participant_id = {nth(5)}",
    ("value_between", "fct_participant_months", "month_index"): f"update {C}.fct_participant_months "
    f"set month_index = 25 where participant_id = {nth(6)} and month_index = 24",
    ("rows_per_participant", "fct_participant_months", None): f"delete from {C}.fct_participant_months "
    f"where participant_id = {nth(7)} and month_index = 24",
    (
        "relationships",
        "fct_participant_months",
        "work_participation_state",
    ): f"update {C}.fct_participant_months "
    f"set work_participation_state = 'RETIRED' where participant_id = {nth(8)} and month_index = 3",
    (
        "relationships",
        "fct_participant_months",
        "benefit_on_checkpoint",
    ): f"update {C}.fct_participant_months "
    f"set benefit_on_checkpoint = 'PENSION' where participant_id = {nth(9)} and month_index = 3",
    ("value_between", MONTHS, "benefit_grade_pct"): f"update {C}.{MONTHS} "
    f"set benefit_grade_pct = 150 where participant_id = {nth(10)} and month_index = 3",
    (
        "value_between",
        "fct_participant_months",
        "employed_hours_per_week",
    ): f"update {C}.fct_participant_months "
    f"set employed_hours_per_week = 0 where participant_id = {nth(11)} and month_index = 3",
    **{
        ("value_between", "fct_participant_months", column): f"update {C}.fct_participant_months "
        f"set {column} = 40 where participant_id = {nth(12 + i)} and month_index = 3"
        for i, column in enumerate(
            ("days_sykepenger", "days_aap", "days_uforetrygd", "days_dagpenger", "days_other_benefit")
        )
    },
    ("accepted_values", "fct_employment_outcomes", "horizon_months"): f"update {C}.fct_employment_outcomes "
    f"set horizon_months = 9 where participant_id = {nth(17)} and horizon_months = 18",
    ("rows_per_participant", "fct_employment_outcomes", None): f"delete from {C}.fct_employment_outcomes "
    f"where participant_id = {nth(18)} and horizon_months = 24",
    ("accepted_values", "fct_prom_scores", "timepoint_months"): f"update {C}.fct_prom_scores "
    f"set timepoint_months = 3 where participant_id = {nth(19)} and timepoint_months = 24",
    ("rows_per_participant", "fct_prom_scores", None): f"delete from {C}.fct_prom_scores "
    f"where participant_id = {nth(20)} and timepoint_months = 24",
    **{
        (
            "within_measure_range",
            "fct_prom_scores",
            column,
        ): f"update {C}.fct_prom_scores set {column} = {high} + 1 "
        f"where participant_id = {nth(21 + i)} and timepoint_months = 0"
        for i, (column, high) in enumerate(
            (
                ("odi_pct", 100),
                ("nrs_pain_intensity", 10),
                ("nrs_pain_bother", 10),
                ("hscl25_total", 4),
                ("hscl25_anxiety", 4),
                ("hscl25_depression", 4),
                ("eq5d_index", 1),
                ("eq5d_vas", 100),
            )
        )
    },
    ("unique_combination_of_columns", "agg_consort_flow", None): f"insert into {C}.agg_consort_flow "
    f"select * from {C}.agg_consort_flow limit 1",
    ("unique_combination_of_columns", "agg_employment_rates", None): f"insert into {C}.agg_employment_rates "
    f"select * from {C}.agg_employment_rates where horizon_months = 3 limit 1",
    ("value_between", "agg_employment_rates", "rate_complete_case_pct"): f"update {C}.agg_employment_rates "
    "set rate_complete_case_pct = 101 where horizon_months = 12 and study = 'RCT' and arm = 'IPS'",
    ("value_between", "agg_employment_rates", "rate_itt_pct"): f"update {C}.agg_employment_rates "
    "set rate_itt_pct = -1 where horizon_months = 6 and study = 'RCT' and arm = 'IPS'",
    (
        "unique_combination_of_columns",
        "agg_prom_trajectories",
        None,
    ): f"insert into {C}.agg_prom_trajectories "
    f"select * from {C}.agg_prom_trajectories where measure = 'eq5d_vas' limit 1",
    ("relationships", "agg_prom_trajectories", "measure"): f"update {C}.agg_prom_trajectories "
    "set measure = 'sf36_pcs' where measure = 'odi_pct' and timepoint_months = 0",
}


@pytest.fixture(scope="module")
def trial(
    warehouse: Warehouse, settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Warehouse]:
    with synthetic_trial(settings, warehouse, tmp_path_factory, "structure", UNTIL) as scratch:
        yield scratch


def failed_tests(settings: Settings, outcome: DbtOutcome) -> set[tuple[str, str, str | None]]:
    """Each failed data test as (its generic test, its model, its column)."""
    manifest = json.loads(Path(settings.dbt_target_dir, "manifest.json").read_text(encoding="utf-8"))
    found = set()
    for unique_id, status in outcome.statuses.items():
        if status not in {"fail", "error"}:
            continue
        node = manifest["nodes"][unique_id]
        model = node["attached_node"].rsplit(".", 1)[-1]
        found.add((node["test_metadata"]["name"], model, node.get("column_name")))
    return found


def test_dbt_fails_exactly_the_test_that_holds_each_broken_rule(trial: Warehouse, settings: Settings) -> None:
    prepare_candidate(trial)
    assert run_dbt(settings, trial, ["run", *MARTS], as_of=UNTIL).success
    clean = run_dbt(settings, trial, ["test", *MARTS], as_of=UNTIL)
    assert clean.success, clean.failures
    with psycopg.connect(trial.url(), autocommit=True) as conn:
        conn.execute("set role outcomes_owner")
        for rule, statement in BREAKS.items():
            assert conn.execute(statement).rowcount > 0, f"the break of {rule} changed nothing"
    broken = run_dbt(settings, trial, ["test", *MARTS], as_of=UNTIL)
    assert not broken.success
    assert failed_tests(settings, broken) == set(BREAKS)


def test_the_participants_key_is_a_primary_key_on_the_built_table(trial: Warehouse) -> None:
    with psycopg.connect(trial.url()) as conn:
        found = conn.execute(
            """
            select a.attname from pg_constraint c
            join pg_attribute a on a.attrelid = c.conrelid and a.attnum = any(c.conkey)
            where c.conrelid = 'marts.dim_participants'::regclass and c.contype = 'p'
            """
        ).fetchall()
    assert found == [("participant_id",)]
