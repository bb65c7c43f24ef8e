"""The quality gate on real data: every error-level expectation broken by a real row blocks the
publish and leaves ``marts`` as it was; a warning publishes and alerts; readers never see a missing
table or a mixed build while a publish swaps the candidate in.

The module builds the synthetic trial once (real loader, real dbt into the candidate schema, the
real gate, a real publish). Each case then restores the candidate to that build (a build of the same
raw rows and as-of date gives the same marts, bit for bit: test_published_numbers.py), breaks it
with one SQL statement and runs the gate's suite for the dataset concerned.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from collections.abc import Iterator

import psycopg
import pytest
from support.builds import synthetic_trial

from outcomes.contracts.fnr import synthetic_fnr
from outcomes.contracts.registry import source_names
from outcomes.settings import Settings
from outcomes.warehouse.connection import Role, Warehouse
from outcomes.warehouse.publish import CANDIDATE, PUBLISHED, PublishError, publish

pytestmark = pytest.mark.slow
UNTIL = dt.date(2026, 11, 21)
C = CANDIDATE
ONE = f"(select min(participant_id) from {C}.dim_participants)"
FNR = synthetic_fnr(dt.date(1980, 5, 17), 3)

#: For every error-level expectation: one statement that breaks it with a real row.
BREAKS: dict[str, str] = {
    "dim_participants.randomised_by_as_of": f"update {C}.dim_participants set randomised_on = date '2026-12-01' "
    f"where participant_id = {ONE}",
    "dim_participants.dates_in_order": f"update {C}.dim_participants "
    f"set intervention_ended_on = randomised_on - 1 where participant_id = {ONE}",
    "dim_participants.observed_until_by_as_of": f"update {C}.dim_participants "
    f"set observed_until = date '2026-12-24', followup_ended_on = null where participant_id = {ONE}",
    "fct_participant_months.checkpoint_is_r_plus_k_months": f"update {C}.fct_participant_months "
    f"set checkpoint_date = checkpoint_date + 1 where participant_id = {ONE} and month_index = 5",
    "fct_participant_months.observed_within_follow_up": f"update {C}.fct_participant_months set is_observed = true "
    f"where (participant_id, month_index) = (select participant_id, month_index from {C}.fct_participant_months "
    "where not is_observed order by 1, 2 limit 1)",
    "fct_employment_outcomes.first_employment_by_as_of": f"update {C}.fct_employment_outcomes "
    f"set first_employment_date = date '2027-01-01' where participant_id = {ONE}",
    "fct_employment_outcomes.days_to_first_employment_match": f"update {C}.fct_employment_outcomes "
    "set days_to_first_employment = days_to_first_employment + 1 where participant_id = "
    f"(select min(participant_id) from {C}.fct_employment_outcomes where first_employment_date is not null)",
    "fct_employment_outcomes.employed_within_matches_date": f"update {C}.fct_employment_outcomes "
    "set is_employed_within = false where is_employed_within and participant_id = "
    f"(select min(participant_id) from {C}.fct_employment_outcomes where is_employed_within)",
    "fct_employment_outcomes.employed_stays_employed": f"update {C}.fct_employment_outcomes "
    "set is_employed_within = null where horizon_months = 24 and participant_id = "
    f"(select min(participant_id) from {C}.fct_employment_outcomes where is_employed_within "
    "and horizon_months = 3)",
    "agg_employment_rates.denominators_nest": f"update {C}.agg_employment_rates "
    "set n_employed = n_known + 1 where horizon_months = 12 and study = 'RCT' and arm = 'IPS'",
    "agg_employment_rates.rates_match_counts": f"update {C}.agg_employment_rates "
    "set rate_itt_pct = rate_itt_pct + 0.1 where horizon_months = 12 and study = 'RCT' and arm = 'IPS'",
    "agg_employment_rates.randomised_match_participants": f"update {C}.agg_employment_rates "
    "set n_randomised = n_randomised + 1 where horizon_months = 12 and study = 'RCT' and arm = 'IPS'",
    "agg_consort_flow.counts_add_up": f"update {C}.agg_consort_flow set n_lost_by_12m = n_randomised + 1 "
    "where study = 'RCT' and arm = 'IPS'",
    "agg_consort_flow.randomised_match_participants": f"update {C}.agg_consort_flow "
    "set n_randomised = n_randomised + 1 where study = 'RCT' and arm = 'TAU'",
    "fct_prom_scores.answered_within_window": f"update {C}.fct_prom_scores set answered_on = target_date + 100 "
    f"where participant_id = {ONE} and timepoint_months = 0",
    "fct_prom_scores.target_is_r_plus_k_months": f"update {C}.fct_prom_scores set target_date = target_date + 1 "
    f"where participant_id = {ONE} and timepoint_months = 6",
    "fct_prom_scores.answered_by_as_of": f"update {C}.fct_prom_scores set answered_on = date '2026-12-01' "
    f"where participant_id = {ONE} and timepoint_months = 0",
    "agg_prom_trajectories.statistics_in_range": f"update {C}.agg_prom_trajectories set sd = -1 "
    "where measure = 'odi_pct' and timepoint_months = 0",
    "adsl_participants.one_row_per_participant": f"delete from {C}.adsl_participants where participant_id = {ONE}",
    "adsl_participants.outcomes_match": f"update {C}.adsl_participants "
    f"set is_employed_within_12m = not is_employed_within_12m where participant_id = {ONE}",
    "adtte_first_employment.events_match_outcomes": f"update {C}.adtte_first_employment "
    "set analysis_days = analysis_days + 1 where participant_id = "
    f"(select min(participant_id) from {C}.adtte_first_employment where is_event)",
    "agg_employment_effects.counts_match_rates": f"update {C}.agg_employment_effects "
    "set n_employed_ips = n_employed_ips + 1 where study = 'RCT' and horizon_months = 12 and analysis = 'itt'",
    "agg_employment_effects.estimates_match_counts": f"update {C}.agg_employment_effects "
    "set risk_ratio = risk_ratio + 0.001 where study = 'RCT' and horizon_months = 12 and analysis = 'itt'",
    "agg_employment_effects.intervals_hold_estimates": f"update {C}.agg_employment_effects "
    "set odds_ratio_ci_high = odds_ratio - 0.001 where study = 'RCT' and horizon_months = 12",
    "agg_employment_effects.p_values_in_range": f"update {C}.agg_employment_effects "
    "set fisher_p = 1.2 where study = 'RCT' and horizon_months = 12 and analysis = 'itt'",
    "agg_time_to_employment_effects.counts_match_times": f"update {C}.agg_time_to_employment_effects "
    "set n_events_tau = n_events_tau + 1 where study = 'RCT'",
    "agg_time_to_employment_effects.estimates_hold": f"update {C}.agg_time_to_employment_effects "
    "set hazard_ratio = null where study = 'RCT'",
    "agg_prom_effects.intervals_hold_estimates": f"update {C}.agg_prom_effects "
    "set difference = difference_ci_high + 1 where study = 'RCT' and measure = 'odi_pct' "
    "and timepoint_months = 6 and method = 'ancova'",
    "plausibility.no_employment_before_randomisation": f"update {C}.fct_employment_outcomes as o "
    "set first_employment_date = d.randomised_on - 30, days_to_first_employment = -30 "
    f"from {C}.dim_participants as d where d.participant_id = o.participant_id and o.participant_id = {ONE}",
    "drift_participants.no_participant_lost": f"delete from {C}.dim_participants where participant_id = {ONE}",
    "drift_volume.row_counts_within_bounds": f"delete from {C}.agg_prom_trajectories where measure <> 'odi_pct'",
    "drift_rates.itt_rates_within_bounds": f"update {C}.agg_employment_rates set rate_itt_pct = "
    "case when rate_itt_pct >= 50 then rate_itt_pct - 30 else rate_itt_pct + 30 end "
    "where study = 'RCT' and arm = 'IPS' and horizon_months = 12",
    "drift_rates.complete_case_rates_within_bounds": f"update {C}.agg_employment_rates "
    "set rate_complete_case_pct = case when rate_complete_case_pct >= 50 then rate_complete_case_pct - 30 "
    "else rate_complete_case_pct + 30 end where study = 'RCT' and arm = 'IPS' and horizon_months = 12",
    "privacy.no_fnr_like_values": f"update {C}.dim_participants set site = '{FNR}' where participant_id = {ONE}",
}


@pytest.fixture(scope="module")
def gated(
    warehouse: Warehouse, settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Warehouse]:
    """A warehouse with the synthetic trial built, gated and published once (the first build: no
    drift to compare yet)."""
    with synthetic_trial(settings, warehouse, tmp_path_factory, "gate", UNTIL) as scratch:
        yield scratch


def restore_candidate(warehouse: Warehouse, source: str = PUBLISHED) -> None:
    """The candidate as a rebuild of the same raw rows gives: a copy of the published build."""
    with psycopg.connect(warehouse.url(), autocommit=True) as conn:
        conn.execute("set role outcomes_owner")
        conn.execute(f"drop schema if exists {C} cascade")
        conn.execute(f"create schema {C}")
        for (table,) in conn.execute(
            "select tablename from pg_tables where schemaname = %s", (source,)
        ).fetchall():
            conn.execute(f"create table {C}.{table} as table {source}.{table}")


def marts_fingerprint(warehouse: Warehouse) -> dict[str, object]:
    """Every published table's rows, hashed, and the publish ledger."""
    with psycopg.connect(warehouse.url()) as conn:
        tables = [r[0] for r in conn.execute("select tablename from pg_tables where schemaname = 'marts'")]
        prints = {
            t: conn.execute(
                f"select md5(string_agg(x::text, '|' order by x::text)) from marts.{t} as x"
            ).fetchone()
            for t in sorted(tables)
        }
        prints["published_builds"] = conn.execute("select count(*) from meta.published_builds").fetchone()
    return prints


def dataset_of(name: str) -> str:
    return name.split(".", 1)[0]


def test_every_error_level_expectation_has_a_breaking_case(gated: Warehouse, settings: Settings) -> None:
    from outcomes.quality.config import load_gate_config
    from outcomes.quality.gate import context_for, suite_modules

    restore_candidate(gated)
    with psycopg.connect(gated.url()) as conn:
        gate = context_for(conn, UNTIL, None, load_gate_config())
    names = {
        e.meta["name"]
        for module in suite_modules(settings)
        if (dataset := module.build(gate)) is not None
        for e in dataset.expectations
        if e.meta["severity"] == "error"
    }
    assert len(names) > 20
    assert names == set(BREAKS)


@pytest.mark.parametrize("expectation", sorted(BREAKS))
def test_breaking_an_error_level_expectation_blocks_the_publish(
    expectation: str, gated: Warehouse, settings: Settings
) -> None:
    from outcomes.quality.gate import new_build_id, record, run_gate

    restore_candidate(gated)
    before = marts_fingerprint(gated)
    with psycopg.connect(gated.url(), autocommit=True) as conn:
        conn.execute("set role outcomes_owner")
        participants = {
            row[0]
            for row in conn.execute(
                f"select participant_id from {C}.dim_participants "
                f"union select participant_id from {PUBLISHED}.dim_participants"
            )
        }
        assert conn.execute(BREAKS[expectation]).rowcount != 0, "the break changed nothing"
    started = time.time()
    report = run_gate(
        settings, gated, build_id=new_build_id(), as_of=UNTIL, datasets=[dataset_of(expectation)]
    )
    record(gated, report)
    failed = {o.name: o for o in report.failed("error")}
    assert expectation in failed, report.message()
    assert report.status == "blocked"
    assert failed[expectation].observed not in {"0", "n/a", ""}
    assert expectation in report.message() and failed[expectation].observed in report.message()
    # whom a violation is about never leaves the rows: not in the message (the task log, the
    # alert, meta.gate_results), nor in the results and Data Docs GX wrote for this run
    written = [p for p in settings.gx_dir.rglob("*") if p.is_file() and p.stat().st_mtime >= started - 1]
    assert written, "GX wrote nothing for this run"
    for text in [report.message(), *(p.read_text(errors="replace") for p in written)]:
        assert not [pid for pid in participants if pid in text], expectation
    with pytest.raises(PublishError):
        publish(gated, build_id=report.build_id, as_of=UNTIL, gate_result=report.status, gate_summary={})
    assert marts_fingerprint(gated) == before


def test_the_privacy_result_names_the_column_never_the_value(gated: Warehouse, settings: Settings) -> None:
    from outcomes.quality.gate import new_build_id, run_gate

    restore_candidate(gated)
    with psycopg.connect(gated.url(), autocommit=True) as conn:
        conn.execute(BREAKS["privacy.no_fnr_like_values"])
    report = run_gate(settings, gated, build_id=new_build_id(), as_of=UNTIL, datasets=["privacy"])
    (failure,) = report.failed("error")
    assert "dim_participants" in failure.observed and "site" in failure.observed
    assert FNR not in json.dumps(report.summary()) and FNR not in report.message()
    # GX keeps each result under validations/<suite>/<run name = build id>/<run time>/
    files = [f for run in settings.gx_dir.rglob(report.build_id) for f in run.rglob("*") if f.is_file()]
    assert files, "the validation results are kept in the GX file context"
    texts = [path.read_text(errors="replace") for path in files]
    assert any("values_like_fnr" in text for text in texts)  # the stored result has the evidence...
    assert not any(FNR in text for text in texts)  # ...and never the value


def test_a_drift_reason_publishes_a_large_move_with_a_warning(gated: Warehouse, settings: Settings) -> None:
    from outcomes.quality.gate import new_build_id, run_gate

    restore_candidate(gated)
    with psycopg.connect(gated.url(), autocommit=True) as conn:
        conn.execute(BREAKS["drift_volume.row_counts_within_bounds"])
    report = run_gate(
        settings,
        gated,
        build_id=new_build_id(),
        as_of=UNTIL,
        datasets=["drift_volume"],
        drift_reason="questionnaire measures withdrawn by the steering committee",
    )
    assert report.status == "warned"
    assert [o.name for o in report.failed("warn")] == ["drift_volume.row_counts_within_bounds"]
    assert report.summary()["drift_reason"].startswith("questionnaire measures")


def test_an_erasure_may_move_a_rate_by_what_it_alone_can_and_no_more(
    gated: Warehouse, settings: Settings
) -> None:
    """One participant of an arm erased (queued, and gone from the candidate): that arm's ITT rate
    may move by up to 100 / (n - 1) points beyond the bound, as their leaving alone can move it so
    far; a move beyond that blocks, and so does the same move when nobody left, or when the queued
    person is still in the candidate."""
    from outcomes.quality.config import load_gate_config
    from outcomes.quality.gate import new_build_id, run_gate

    bound = load_gate_config().max_itt_rate_change_pp
    where = "study = 'RCT' and arm = 'IPS' and horizon_months = 12"
    erased = (
        f"(select min(participant_id) from {PUBLISHED}.dim_participants where study = 'RCT' and arm = 'IPS')"
    )
    with psycopg.connect(gated.url(), autocommit=True) as conn:
        row = conn.execute(
            f"select n_randomised from {PUBLISHED}.agg_employment_rates where {where}"
        ).fetchone()
        assert row is not None
        allowance = 100.0 / (row[0] - 1)

    def gate_after_a_move(points: float, *, queued: bool, gone: bool) -> str:
        restore_candidate(gated)
        with psycopg.connect(gated.url(), autocommit=True) as conn:
            conn.execute("set role outcomes_owner")
            conn.execute(
                f"update {C}.agg_employment_rates set rate_itt_pct = "
                f"case when rate_itt_pct >= 50 then rate_itt_pct - {points} else rate_itt_pct + {points} end "
                f"where {where}"
            )
            if queued:
                conn.execute(f"insert into pending.erasure_queue (participant_id) select {erased}")
            if gone:
                conn.execute(f"delete from {C}.dim_participants where participant_id = {erased}")
        try:
            report = run_gate(settings, gated, build_id=new_build_id(), as_of=UNTIL, datasets=["drift_rates"])
        finally:
            with psycopg.connect(gated.url(), autocommit=True) as conn:
                conn.execute("delete from pending.erasure_queue")
        return report.status

    within = round(bound + allowance / 2, 1)
    assert allowance / 2 > 0.5, "the arm is too large for the test to tell the bounds apart"
    assert gate_after_a_move(within, queued=False, gone=False) == "blocked"  # nobody left
    assert gate_after_a_move(within, queued=True, gone=False) == "blocked"  # queued, not yet gone
    assert gate_after_a_move(within, queued=True, gone=True) == "passed"  # erased: they may move it
    assert gate_after_a_move(round(bound + allowance + 1, 1), queued=True, gone=True) == "blocked"


def test_a_warning_publishes_and_alerts(gated: Warehouse, settings: Settings) -> None:
    from outcomes.quality import tasks
    from outcomes.quality.gate import new_build_id

    restore_candidate(gated)
    with psycopg.connect(gated.url(), autocommit=True) as conn:
        conn.execute(
            f"""
            update {C}.fct_participant_months
            set employed_hours_per_week = 40, benefit_on_checkpoint = 'UFORETRYGD', benefit_grade_pct = 100,
                is_employed = true
            where participant_id = {ONE} and month_index = 3
            """
        )
    build_id = new_build_id()
    gate = tasks.quality_gate(build_id, UNTIL.isoformat(), None, "test-run", warehouse=gated)
    assert gate["status"] == "warned", gate
    assert gate["failed_errors"] == []
    assert [f.split(":")[0] for f in gate["failed_warnings"]] == [
        "plausibility.full_time_job_on_full_disability"
    ]
    tasks.publish_build(build_id, UNTIL.isoformat(), gate, "test-run", warehouse=gated)
    alerts = [json.loads(line) for line in settings.alerts_log.read_text().splitlines()]
    warned = [a for a in alerts if a["kind"] == "gate_warnings" and a["details"]["build_id"] == build_id]
    assert warned and "plausibility.full_time_job_on_full_disability" in warned[0]["summary"]
    with psycopg.connect(gated.url()) as conn:
        conn.execute(f"set role {Role.ANALYST}")
        hours = conn.execute(
            f"select employed_hours_per_week from marts.fct_participant_months "
            f"where participant_id = {ONE.replace(C, 'marts')} and month_index = 3"
        ).fetchone()
        assert hours is not None and hours[0] == 40
        row = conn.execute(
            "select gate_result, gate_summary, deliveries from meta.published_builds where build_id = %s",
            (build_id,),
        ).fetchone()
    assert row is not None and row[0] == "warned"
    assert row[1]["failed_warnings"] and set(row[2]) == set(source_names())


def test_a_blocked_gate_fails_the_task_with_every_failure_listed(
    gated: Warehouse, settings: Settings
) -> None:
    from airflow.sdk.exceptions import AirflowFailException

    from outcomes.quality import tasks
    from outcomes.quality.gate import new_build_id

    restore_candidate(gated)
    before = marts_fingerprint(gated)
    with psycopg.connect(gated.url(), autocommit=True) as conn:
        conn.execute(BREAKS["fct_participant_months.checkpoint_is_r_plus_k_months"])
        conn.execute(BREAKS["agg_employment_rates.denominators_nest"])
    with pytest.raises(AirflowFailException) as failure:
        tasks.quality_gate(new_build_id(), UNTIL.isoformat(), None, "test-run", warehouse=gated)
    message = str(failure.value)
    assert "blocked" in message
    assert "fct_participant_months.checkpoint_is_r_plus_k_months" in message
    assert "agg_employment_rates.denominators_nest" in message
    assert "observed" in message
    assert marts_fingerprint(gated) == before


def test_readers_see_one_whole_build_or_the_other_during_publishes(
    gated: Warehouse, settings: Settings
) -> None:
    """Two builds that differ in every table alternate as `marts` while an analyst queries in a loop."""
    from outcomes.quality.gate import GateReport, new_build_id, record

    with psycopg.connect(gated.url(), autocommit=True) as conn:
        conn.execute("set role outcomes_owner")
        conn.execute("drop schema if exists pristine cascade")
        conn.execute("create schema pristine")
        for (table,) in conn.execute("select tablename from pg_tables where schemaname = 'marts'").fetchall():
            conn.execute(f"create table pristine.{table} as table marts.{table}")
        conn.execute("set role outcomes_analyst")
        full = conn.execute(
            "select (select count(*) from marts.dim_participants), "
            "(select sum(n_randomised) from marts.agg_consort_flow)::int"
        ).fetchone()
    assert full is not None and full[0] == full[1]

    def candidate(smaller: bool) -> None:
        restore_candidate(gated, "pristine")
        if smaller:  # a whole, consistent build with the first participant of each arm gone
            with psycopg.connect(gated.url(), autocommit=True) as conn:
                conn.execute(f"delete from {C}.dim_participants where participant_id = {ONE}")
                conn.execute(
                    f"update {C}.agg_consort_flow set n_randomised = n_randomised - 1 "
                    "where (study, arm) = (select study, arm from pristine.dim_participants "
                    f"where participant_id = {ONE.replace(C, 'pristine')})"
                )

    seen: set[tuple[int, int]] = set()
    errors: list[str] = []
    stop = threading.Event()

    def reader() -> None:
        with psycopg.connect(gated.url(role=Role.ANALYST), autocommit=True) as conn:
            while not stop.is_set():
                try:
                    row = conn.execute(
                        "select (select count(*) from marts.dim_participants), "
                        "(select sum(n_randomised) from marts.agg_consort_flow)::int"
                    ).fetchone()
                    assert row is not None
                    seen.add((row[0], row[1]))
                except Exception as error:  # a missing table, a failed lock, anything
                    errors.append(repr(error))

    thread = threading.Thread(target=reader)
    thread.start()
    publishes = 0
    try:
        for i in range(12):
            candidate(smaller=i % 2 == 0)
            build_id = new_build_id()
            # the gate ran on these builds above; here only the swap is under test
            record(gated, GateReport(build_id=build_id, as_of=UNTIL))
            publish(gated, build_id=build_id, as_of=UNTIL, gate_result="passed", gate_summary={})
            publishes += 1
            time.sleep(0.02)
    finally:
        stop.set()
        thread.join(timeout=30)
    assert publishes == 12
    assert errors == []
    assert seen == {(full[0], full[1]), (full[0] - 1, full[1] - 1)}, seen
    restore_candidate(gated, "pristine")  # leave the published build whole for the tests after this
    record(gated, GateReport(build_id=(build_id := new_build_id()), as_of=UNTIL))
    publish(gated, build_id=build_id, as_of=UNTIL, gate_result="passed", gate_summary={})


def test_the_gate_keeps_data_docs_and_its_results(gated: Warehouse, settings: Settings) -> None:
    """The fixture's whole-gate run: its Data Docs, and every expectation's row in meta."""
    assert (settings.gx_data_docs_dir / "index.html").exists()
    with psycopg.connect(gated.url()) as conn:
        conn.execute(f"set role {Role.ANALYST}")  # analysts may read the gate's ledger
        run = conn.execute(
            # the fixture's run of the whole gate: the first
            "select build_id, status, expectations from meta.gate_runs order by checked_at limit 1"
        ).fetchone()
        assert run is not None and run[1] == "passed"
        rows = conn.execute(
            "select severity, count(*) from meta.gate_results where build_id = %s group by 1", (run[0],)
        ).fetchall()
    assert sum(n for _, n in rows) == run[2] and {s for s, _ in rows} == {"error", "warn"}


def test_a_check_whose_rows_say_whom_keeps_only_that_they_were_withheld(
    gated: Warehouse, settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """A suite whose violation rows carry participant IDs (a check written carelessly): the gate
    still reports the count and the other columns, never the IDs."""
    import dataclasses

    from outcomes.quality.gate import new_build_id, run_gate
    from outcomes.quality.suite import WITHHELD

    project = tmp_path_factory.mktemp("careless-suite")
    (project / "expectations").mkdir()
    (project / "expectations" / "careless.py").write_text(
        "from outcomes.quality.suite import Dataset, no_violations\n\n"
        "def build(gate):\n"
        "    return Dataset(name='careless', table='dim_participants', expectations=[no_violations(\n"
        "        'careless.every_participant', 'select participant_id, study from {batch}',\n"
        "        severity='error', description='lists every participant')])\n"
    )
    restore_candidate(gated)
    with psycopg.connect(gated.url()) as conn:
        participants = {row[0] for row in conn.execute(f"select participant_id from {C}.dim_participants")}
    report = run_gate(
        dataclasses.replace(settings, project_dir=project), gated, build_id=new_build_id(), as_of=UNTIL
    )
    (outcome,) = report.outcomes
    assert not outcome.success and outcome.observed.startswith(f"{len(participants)} row(s): ")
    assert WITHHELD in outcome.observed and '"study": "' in outcome.observed
    assert not [pid for pid in participants if pid in outcome.observed + report.message()]
