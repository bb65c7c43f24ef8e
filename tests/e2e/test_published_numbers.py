"""The published numbers, reproduced from raw deliveries: the synthetic trial (shaped like the IPS in
Pain RCT and its pilot) through the real loader and the real dbt build, into agg_employment_rates.
And the same raw rows with the same as-of date give the same marts, bit for bit."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest
from support.builds import PUBLISHED_AS_OF, build_gate_publish
from support.prom_reference import expected_prom_scores

from outcomes.analysis.tasks import estimate_effects
from outcomes.settings import Settings
from outcomes.transform.dbt import run_dbt
from outcomes.warehouse.connection import Warehouse
from outcomes.warehouse.publish import CANDIDATE

pytestmark = pytest.mark.slow
UNTIL = PUBLISHED_AS_OF
MARTS = (
    "dim_participants",
    "fct_participant_months",
    "fct_employment_outcomes",
    "agg_employment_rates",
    "agg_consort_flow",
    "fct_prom_scores",
    "agg_prom_trajectories",
    "adtte_first_employment",
    "adsl_participants",
    "agg_baseline_by_arm",
)
#: The marts whose estimates the build computes into dbt's rows (outcomes.analysis).
EFFECTS = ("agg_employment_effects", "agg_time_to_employment_effects", "agg_prom_effects")


@pytest.fixture(scope="module")
def landing(published_landing: Path) -> Path:
    """The default synthetic trial's deliveries (tests/conftest.py)."""
    return published_landing


@pytest.fixture(scope="module")
def trial(published_trial: Warehouse) -> Warehouse:
    """A fresh warehouse with the default synthetic trial applied and published as of UNTIL."""
    return published_trial


def rates(warehouse: Warehouse, horizon: int) -> dict[tuple[str, str], tuple[object, ...]]:
    with psycopg.connect(warehouse.url()) as conn:
        rows = conn.execute(
            """
            select study, arm, n_randomised, n_known, n_employed, rate_complete_case_pct, rate_itt_pct
            from marts.agg_employment_rates where horizon_months = %s
            """,
            (horizon,),
        ).fetchall()
    return {(r[0], r[1]): tuple(r[2:]) for r in rows}


def test_the_rct_at_12_months_is_19_of_36_vs_7_of_18(trial: Warehouse) -> None:
    at12 = rates(trial, 12)
    assert at12[("RCT", "IPS")] == (38, 36, 19, Decimal("52.8"), Decimal("50.0"))
    assert at12[("RCT", "TAU")] == (20, 18, 7, Decimal("38.9"), Decimal("35.0"))


def test_the_pilot_is_0_1_and_3_of_8(trial: Warehouse) -> None:
    employed = {h: rates(trial, h)[("PILOT", "IPS")][:3] for h in (3, 6, 12)}
    assert employed == {3: (8, 8, 0), 6: (8, 8, 1), 12: (8, 8, 3)}


def test_the_analyst_reads_the_marts(trial: Warehouse) -> None:
    with psycopg.connect(trial.url()) as conn:
        conn.execute("set role outcomes_analyst")
        assert conn.execute("select count(*) from marts.dim_participants").fetchone() == (66,)
        assert conn.execute("select count(*) from marts.fct_participant_months").fetchone() == (66 * 25,)
        states = conn.execute(
            "select count(distinct work_participation_state) from marts.fct_participant_months"
        ).fetchone()
        assert states is not None and states[0] >= 6  # a realistic mix of states


def checksums(warehouse: Warehouse, schema: str = "marts", tables: tuple[str, ...] = MARTS) -> dict[str, str]:
    with psycopg.connect(warehouse.url()) as conn:
        return {
            table: str(
                conn.execute(
                    "select md5(coalesce(string_agg(t::text, '|' order by t::text), '')) "
                    f"from {schema}.{table} t"
                ).fetchone()
            )
            for table in tables
        }


def test_the_same_raw_rows_and_as_of_give_the_same_marts_bit_for_bit(
    trial: Warehouse, settings: Settings
) -> None:
    before = checksums(trial, tables=MARTS + EFFECTS)  # the published build
    assert run_dbt(settings, trial, ["run"], as_of=UNTIL).success  # a rebuild, into the candidate
    estimate_effects(trial)  # and its estimates, digit for digit
    assert checksums(trial, CANDIDATE, MARTS + EFFECTS) == before
    before = {table: before[table] for table in MARTS}
    # A different as-of date is a different world: the 24-month horizon moves.
    assert run_dbt(settings, trial, ["run"], as_of=UNTIL - dt.timedelta(days=400)).success
    assert checksums(trial, CANDIDATE) != before
    assert run_dbt(settings, trial, ["run"], as_of=UNTIL).success
    assert checksums(trial, CANDIDATE) == before


def test_the_published_twelve_month_comparison_is_in_the_effects_mart(trial: Warehouse) -> None:
    """19/36 against 7/18: risk difference 13.9 points, odds ratio 1.76, Fisher's p 0.395,
    chi-square p 0.336 (the report: 'did not reach statistical significance')."""
    columns = (
        "n_ips, n_employed_ips, n_tau, n_employed_tau, risk_difference_pct, odds_ratio, fisher_p, chi2_p"
    )
    with psycopg.connect(trial.url()) as conn:
        conn.execute("set role outcomes_analyst")
        rows = conn.execute(
            f"select analysis, {columns} from marts.agg_employment_effects "
            "where study = 'RCT' and horizon_months = 12 order by analysis"
        ).fetchall()
        studies = conn.execute("select distinct study from marts.agg_employment_effects").fetchall()
        grid = conn.execute("select count(*), count(fisher_p) from marts.agg_employment_effects").fetchone()
    complete_case, itt = rows
    assert complete_case == (
        "complete_case",
        36,
        19,
        18,
        7,
        Decimal("13.9"),
        Decimal("1.756"),
        Decimal("0.3955"),
        Decimal("0.3356"),
    )
    assert itt[:5] == ("itt", 38, 19, 20, 7)  # everyone randomised, unknown as not employed
    assert studies == [("RCT",)]  # the pilot has one arm: nothing to compare
    assert grid == (5 * 2, 5 * 2)  # 5 horizons x 2 analyses, every one estimated


def test_time_to_employment_and_the_secondary_outcomes_are_compared(trial: Warehouse) -> None:
    with psycopg.connect(trial.url()) as conn:
        conn.execute("set role outcomes_analyst")
        times = conn.execute(
            "select study, n_ips, n_tau, n_events_ips, n_events_tau, logrank_p, hazard_ratio, "
            "hazard_ratio_ci_low, hazard_ratio_ci_high from marts.agg_time_to_employment_effects"
        ).fetchall()
        events = conn.execute(
            "select arm, count(*) filter (where is_event), count(*) filter (where censor_reason is not null) "
            "from marts.adtte_first_employment where study = 'RCT' group by arm order by arm"
        ).fetchall()
        secondary = conn.execute(
            "select method, count(*), count(difference) from marts.agg_prom_effects group by 1 order by 1"
        ).fetchall()
    ((study, n_ips, n_tau, e_ips, e_tau, p, hr, low, high),) = times
    assert (study, n_ips, n_tau) == ("RCT", 38, 20)
    assert events == [("IPS", e_ips, n_ips - e_ips), ("TAU", e_tau, n_tau - e_tau)]
    assert 0 < p < 1 and low < hr < high
    # 6 measures: ANCOVA at 6 and 12 months, the mixed model at 6, 12 and 24; every one fitted
    assert secondary == [("ancova", 12, 12), ("mixed_model", 18, 18)]


def test_every_event_names_the_raw_row_that_decided_it(trial: Warehouse) -> None:
    """adtte_first_employment's lineage: the delivery and line of each event lead to a raw row of
    the employment source that says what the event says."""
    with psycopg.connect(trial.url()) as conn:
        events = conn.execute(
            "select participant_id, event_date, event_source, event_record, event_delivery_id, "
            "event_source_line from marts.adtte_first_employment where is_event"
        ).fetchall()
        found = {}
        for participant, day, source, record, delivery, line in events:
            if source == "job":
                row = conn.execute(
                    "select participant_id, start_date, 'job ' || job_id, job_type from raw.employment_jobs "
                    "where delivery_id = %s and source_line = %s",
                    (delivery, line),
                ).fetchone()
            else:
                row = conn.execute(
                    "select participant_id, assessed_on, 'checkpoint month ' || checkpoint_month, status "
                    "from raw.employment_checkpoints where delivery_id = %s and source_line = %s",
                    (delivery, line),
                ).fetchone()
            found[participant] = row == (participant, day, record, "COMPETITIVE")
    assert len(found) == len(events) > 20 and all(found.values()), [p for p, ok in found.items() if not ok]


def test_the_subject_level_dataset_agrees_with_the_marts(trial: Warehouse) -> None:
    with psycopg.connect(trial.url()) as conn:
        conn.execute("set role outcomes_analyst")
        adsl = conn.execute(
            "select arm, count(*), count(*) filter (where is_complete_case_12m), "
            "count(*) filter (where is_employed_within_12m) from marts.adsl_participants "
            "where study = 'RCT' group by arm order by arm"
        ).fetchall()
        scores = conn.execute(
            "select count(*) from marts.adsl_participants a join marts.fct_prom_scores s "
            "on s.participant_id = a.participant_id and s.timepoint_months = 0 "
            "where a.baseline_odi_pct is distinct from s.odi_pct "
            "or a.baseline_eq5d_index is distinct from s.eq5d_index"
        ).fetchone()
        benefits = conn.execute(
            "select count(*) from marts.adsl_participants a join marts.fct_participant_months m "
            "on m.participant_id = a.participant_id and m.month_index = 0 "
            "where (a.benefit_at_randomisation, a.benefit_grade_at_randomisation) "
            "is distinct from (m.benefit_on_checkpoint, m.benefit_grade_pct)"
        ).fetchone()
        rows = conn.execute("select count(*) from marts.adsl_participants").fetchone()
    assert adsl == [("IPS", 38, 36, 19), ("TAU", 20, 18, 7)]  # the published 19/36 and 7/18
    assert scores == (0,) and benefits == (0,) and rows == (66,)


def test_the_baseline_table_counts_the_subject_level_rows(trial: Warehouse) -> None:
    """Table 1 recomputed here in Python from adsl_participants: counts and percentages per
    category (every category of the study in every arm), and n, mean and SD of age."""
    from statistics import mean, stdev

    with psycopg.connect(trial.url()) as conn:
        conn.execute("set role outcomes_analyst")
        people = conn.execute(
            "select arm, sex, coalesce(benefit_at_randomisation, 'NONE'), age_at_randomisation "
            "from marts.adsl_participants where study = 'RCT'"
        ).fetchall()
        table = {
            (r[0], r[1], r[2]): r[3:]
            for r in conn.execute(
                "select arm, characteristic, category, n_arm, n_known, n, pct, mean, sd "
                "from marts.agg_baseline_by_arm where study = 'RCT'"
            ).fetchall()
        }
    for arm in ("IPS", "TAU"):
        mine = [p for p in people if p[0] == arm]
        for column, name in ((1, "sex"), (2, "benefit_at_randomisation")):
            for category in {p[column] for p in people}:  # the study's categories, in each arm
                n = sum(p[column] == category for p in mine)
                pct = Decimal(100 * n / len(mine)).quantize(Decimal("0.1"))
                assert table[(arm, name, category)][:4] == (len(mine), len(mine), n, pct), (arm, category)
        ages = [p[3] for p in mine]
        n_arm, n_known, n, pct, got_mean, got_sd = table[(arm, "age_at_randomisation", None)]
        assert (n_arm, n_known, n, pct) == (len(mine), len(ages), len(ages), None)
        assert abs(float(got_mean) - mean(ages)) < 0.0006 and abs(float(got_sd) - stdev(ages)) < 0.0006


def test_no_dbt_files_are_written_into_the_checkout(settings: Settings) -> None:
    assert not (Path(settings.dbt_project_dir) / "target").exists()
    assert not (Path(settings.dbt_project_dir) / "logs").exists()


def test_the_consort_flow_matches_the_published_shape(trial: Warehouse) -> None:
    with psycopg.connect(trial.url()) as conn:
        rows = conn.execute(
            "select study, arm, n_randomised, n_intervention_ended, n_lost_by_12m, n_analysed_12m "
            "from marts.agg_consort_flow order by 1, 2"
        ).fetchall()
    by_arm = {(r[0], r[1]): r[2:] for r in rows}
    assert by_arm[("PILOT", "IPS")][:2] == (8, 1)  # one stopped IPS a few weeks in and stayed in the 8
    assert by_arm[("RCT", "IPS")][0] == 38 and by_arm[("RCT", "IPS")][2:] == (2, 36)
    assert by_arm[("RCT", "TAU")][0] == 20 and by_arm[("RCT", "TAU")][2:] == (2, 18)


PROM_COLUMNS = (
    "target_date",
    "form_id",
    "answered_on",
    "odi_pct",
    "nrs_pain_intensity",
    "nrs_pain_bother",
    "hscl25_total",
    "hscl25_anxiety",
    "hscl25_depression",
    "is_hscl25_case",
    "eq5d_index",
    "eq5d_value_set",
    "eq5d_vas",
)


def test_every_prom_score_agrees_with_an_independent_reference(trial: Warehouse, landing: Path) -> None:
    expected = expected_prom_scores(landing, UNTIL)
    with psycopg.connect(trial.url()) as conn:
        rows = conn.execute(
            f"select participant_id, timepoint_months, {', '.join(PROM_COLUMNS)} from marts.fct_prom_scores"
        ).fetchall()
    actual = {(r[0], r[1]): dict(zip(PROM_COLUMNS, r[2:], strict=True)) for r in rows}
    assert actual.keys() == expected.keys()
    differences = {key: (actual[key], expected[key]) for key in expected if actual[key] != expected[key]}
    assert not differences, list(differences.items())[:3]
    # The fixture exercises the rules, not only the happy path: forms missing from windows,
    # unscorable forms (too few items) and all eight scores present somewhere.
    values = list(expected.values())
    assert sum(v["form_id"] is None for v in values) > 20
    assert any(v["form_id"] is not None and v["odi_pct"] is None for v in values)
    assert any(v["form_id"] is not None and v["eq5d_index"] is None for v in values)
    assert all(any(v[c] is not None for v in values) for c in PROM_COLUMNS)


def test_the_trajectories_summarise_the_scores(trial: Warehouse) -> None:
    with psycopg.connect(trial.url()) as conn:
        conn.execute("set role outcomes_analyst")
        mismatched = conn.execute(
            """
            with recomputed as (
                select p.study, p.arm, s.timepoint_months,
                       count(s.odi_pct)::integer as n, round(avg(s.odi_pct), 3) as mean,
                       round(stddev_samp(s.odi_pct), 3) as sd
                from marts.fct_prom_scores s join marts.dim_participants p using (participant_id)
                group by 1, 2, 3
            )
            select * from recomputed r
            full join (select * from marts.agg_prom_trajectories where measure = 'odi_pct') t
                using (study, arm, timepoint_months)
            where r.n is distinct from t.n or r.mean is distinct from t.mean or r.sd is distinct from t.sd
            """
        ).fetchall()
        grid = conn.execute("select count(*) from marts.agg_prom_trajectories").fetchone()
    assert mismatched == []
    assert grid == (3 * 4 * 8,)  # (PILOT IPS, RCT IPS, RCT TAU) x 4 time points x 8 measures


def all_rates(warehouse: Warehouse) -> dict[tuple[object, ...], tuple[object, ...]]:
    with psycopg.connect(warehouse.url()) as conn:
        rows = conn.execute("select * from marts.agg_employment_rates").fetchall()
    return {r[:3]: r[3:] for r in rows}


def test_history_answers_what_the_numbers_said_on_an_earlier_night(
    trial: Warehouse, settings: Settings
) -> None:
    """The fixture's build published as of UNTIL; night 1 publishes as of 10 days earlier, night 2
    as of UNTIL again. History keeps every version: a rate that never changed has one version, a
    rate that moved has three, and night 1's numbers are one query away. A repeated snapshot
    adds nothing."""
    history = "select study, arm, horizon_months, count(*) from history.agg_employment_rates group by 1, 2, 3"
    # rewinding ten days moves rates beyond the gate's nightly drift bounds: a stated reason
    build_gate_publish(settings, trial, UNTIL - dt.timedelta(days=10), drift_reason="history test: night 1")
    snapshot = ["snapshot"]
    with psycopg.connect(trial.url(), autocommit=True) as conn:
        night1 = conn.execute("select clock_timestamp()").fetchone()
        assert night1 is not None
    old = all_rates(trial)
    build_gate_publish(settings, trial, UNTIL, drift_reason="history test: night 2")
    new = all_rates(trial)
    with psycopg.connect(trial.url()) as conn:
        before_repeat = conn.execute(history).fetchall()
    assert run_dbt(settings, trial, snapshot, marts_schema="marts").success
    with psycopg.connect(trial.url()) as conn:
        conn.execute("set role outcomes_analyst")
        then = conn.execute(
            """
            select study, arm, horizon_months, n_randomised, n_known, n_employed,
                   rate_complete_case_pct, rate_itt_pct
            from history.agg_employment_rates
            where dbt_valid_from <= %s and (dbt_valid_to > %s or dbt_valid_to is null)
            """,
            (night1[0], night1[0]),
        ).fetchall()
        after_repeat = conn.execute(history).fetchall()
        current_outcomes = conn.execute(
            "select count(*) from history.fct_employment_outcomes where dbt_valid_to is null"
        ).fetchone()
    assert len(old) == 15 and {r[:3]: r[3:] for r in then} == old
    moved = {key for key in new if old.get(key) != new[key]}
    assert moved and moved != set(new)  # those days moved some numbers (18 months, RCT IPS), not others
    assert after_repeat == before_repeat
    assert {r[:3]: r[3] for r in after_repeat} == {key: 3 if key in moved else 1 for key in new}
    assert current_outcomes == (66 * 5,)
