"""Database locks on a real published build: create, list, verify; read-only to every role; a
changed row is detected; an erasure amends the lock and is recorded; the dashboard shows the
lock beside today; `outcomes history DATE` answers from the history snapshots."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from typer.testing import CliRunner

from outcomes.cli import app
from outcomes.dashboard.snapshots import refresh
from outcomes.settings import Settings
from outcomes.warehouse import locks
from outcomes.warehouse.connection import Role, Warehouse

pytestmark = pytest.mark.slow
TABLES = 13


@pytest.fixture(scope="module")
def locked(published_trial: Warehouse) -> Iterator[locks.Lock]:
    lock = locks.create(published_trial, "12m-lock", note="the 12-month analysis")
    yield lock


def cli(warehouse: Warehouse, *args: str) -> tuple[int, str]:
    done = CliRunner().invoke(app, list(args), env={"OUTCOMES_WAREHOUSE_URL": warehouse.admin_url})
    return done.exit_code, done.output


def test_a_lock_freezes_every_published_table_with_its_manifest(
    published_trial: Warehouse, locked: locks.Lock
) -> None:
    assert locked.schema_name == "lock_12m_lock" and len(locked.tables) == TABLES
    with psycopg.connect(published_trial.url()) as conn:
        build = conn.execute(
            "select build_id, as_of_date from meta.published_builds order by published_at desc"
        ).fetchone()
        for table, (rows, checksum) in locked.tables.items():
            same = conn.execute(locks.checksum_sql("marts", table)).fetchone()
            assert same == (rows, checksum), table
    assert build == (locked.build_id, dt.date.fromisoformat(locked.as_of_date))
    code, out = cli(published_trial, "lock", "verify", "12m-lock")
    assert code == 0 and f"all {TABLES} tables match" in out
    code, out = cli(published_trial, "lock", "list")
    assert code == 0 and "12m-lock" in out and "the 12-month analysis" in out
    code, out = cli(published_trial, "lock", "create", "12m-lock")
    assert code == 1 and "exists already" in out
    code, out = cli(published_trial, "lock", "create", "Bad Name")
    assert code == 1 and "lock name 'Bad Name'" in out


@pytest.mark.parametrize("role", [Role.ANALYST, Role.LOADER, Role.OWNER, None])
@pytest.mark.parametrize(
    "statement",
    [
        "update lock_12m_lock.agg_employment_rates set n_employed = n_employed + 1",
        "delete from lock_12m_lock.dim_participants",
        "insert into lock_12m_lock.agg_consort_flow select * from lock_12m_lock.agg_consort_flow",
        "truncate lock_12m_lock.fct_prom_scores",
    ],
)
def test_a_lock_is_read_only_to_everyone(
    published_trial: Warehouse, locked: locks.Lock, role: Role | None, statement: str
) -> None:
    """The analyst and the loader lack the privilege; the owner and the admin (a superuser) meet the
    lock's trigger."""
    with psycopg.connect(published_trial.url()) as conn:
        if role is not None:
            conn.execute(f"set role {role}")
        with pytest.raises(
            (psycopg.errors.InsufficientPrivilege, psycopg.errors.ReadOnlySqlTransaction)
        ) as error:
            conn.execute(statement)
    if role in (Role.OWNER, None):
        assert "part of a database lock and is read-only" in str(error.value)
    with psycopg.connect(published_trial.url()) as conn:
        conn.execute(f"set role {Role.ANALYST}")
        assert conn.execute("select count(*) from lock_12m_lock.agg_employment_rates").fetchone() == (15,)


def test_verify_detects_a_changed_row(published_trial: Warehouse, locked: locks.Lock) -> None:
    locks.create(published_trial, "tampered")
    with psycopg.connect(published_trial.url()) as conn:  # a superuser who disables the guard
        conn.execute("alter table lock_tampered.agg_employment_rates disable trigger user")
        conn.execute(
            "update lock_tampered.agg_employment_rates set n_employed = n_employed + 1 "
            "where study = 'RCT' and arm = 'IPS' and horizon_months = 12"
        )
    checks = {c.table: c for c in locks.verify(published_trial, "tampered")}
    assert not checks["agg_employment_rates"].ok
    assert checks["agg_employment_rates"].rows == checks["agg_employment_rates"].expected_rows  # same count
    assert all(c.ok for t, c in checks.items() if t != "agg_employment_rates")
    code, out = cli(published_trial, "lock", "verify", "tampered")
    assert (
        code == 1 and "CHANGED" in out and "1 table(s) differ from the manifest: agg_employment_rates" in out
    )


#: Each aggregate of a lock counted again from the lock's row-level tables, written here
#: independently of the dbt models (the counts only: the rounding of rates and scores is dbt's).
COUNTED_AGAIN = {
    "agg_employment_rates": (
        "select study, arm, horizon_months, n_randomised, n_known, n_employed from {s}.agg_employment_rates",
        "select study, arm, horizon_months, count(*), count(is_employed_within), "
        "count(*) filter (where is_employed_within) from {s}.fct_employment_outcomes group by 1, 2, 3",
    ),
    "agg_baseline_by_arm": (
        "select study, arm, category, n from {s}.agg_baseline_by_arm where characteristic = 'sex'",
        "select study, arm, sex, count(*) from {s}.dim_participants group by 1, 2, 3",
    ),
    "agg_consort_flow": (
        "select study, arm, n_randomised from {s}.agg_consort_flow",
        "select study, arm, count(*) from {s}.dim_participants group by 1, 2",
    ),
    "agg_employment_effects": (
        "select study, horizon_months, analysis, n_ips, n_employed_ips, n_tau, n_employed_tau "
        "from {s}.agg_employment_effects",
        "select study, horizon_months, a, "
        "count(*) filter (where arm = 'IPS' and (a = 'itt' or is_employed_within is not null)), "
        "count(*) filter (where arm = 'IPS' and is_employed_within), "
        "count(*) filter (where arm = 'TAU' and (a = 'itt' or is_employed_within is not null)), "
        "count(*) filter (where arm = 'TAU' and is_employed_within) "
        "from {s}.fct_employment_outcomes cross join (values ('itt'), ('complete_case')) as v (a) "
        "where study = 'RCT' group by 1, 2, 3",
    ),
    "agg_time_to_employment_effects": (
        "select study, n_ips, n_events_ips, n_tau, n_events_tau from {s}.agg_time_to_employment_effects",
        "select d.study, count(*) filter (where d.arm = 'IPS'), "
        "count(*) filter (where d.arm = 'IPS' "
        "and o.first_employment_date <= d.randomised_on + interval '24 months'), "
        "count(*) filter (where d.arm = 'TAU'), "
        "count(*) filter (where d.arm = 'TAU' "
        "and o.first_employment_date <= d.randomised_on + interval '24 months') "
        "from {s}.dim_participants d join {s}.fct_employment_outcomes o "
        "on o.participant_id = d.participant_id and o.horizon_months = 24 where d.study = 'RCT' group by 1",
    ),
    "agg_prom_trajectories": (
        "select study, arm, timepoint_months, measure, n from {s}.agg_prom_trajectories",
        "select d.study, d.arm, p.timepoint_months, m.measure, count(m.score) "
        "from {s}.fct_prom_scores p join {s}.dim_participants d using (participant_id) "
        "cross join lateral (values {measures}) as m (measure, score) group by 1, 2, 3, 4",
    ),
}


def counted(warehouse: Warehouse, schema: str) -> dict[str, tuple[set[Any], set[Any]]]:
    """For each aggregate of ``schema``: its rows, and the same counted from the rows beside it."""
    with psycopg.connect(warehouse.url()) as conn:
        # each measure is a column of fct_prom_scores of its name
        names = [r[0] for r in conn.execute(f"select distinct measure from {schema}.agg_prom_trajectories")]
        measures = ", ".join(f"('{m}', p.{m}::numeric)" for m in sorted(names))
        assert len(names) == 8
        return {
            table: (
                set(conn.execute(shown.format(s=schema)).fetchall()),
                set(conn.execute(again.format(s=schema, measures=measures)).fetchall()),
            )
            for table, (shown, again) in COUNTED_AGAIN.items()
        }


def test_the_aggregates_of_an_intact_lock_recompute_to_themselves(
    settings: Settings, published_trial: Warehouse, locked: locks.Lock
) -> None:
    """The SQL an erasure recomputes a lock's aggregates with (the dbt models', over the lock's
    own rows) gives back every aggregate of the lock as frozen, byte for byte."""
    from outcomes.warehouse.erasures import Aggregates

    frozen = {t: v for t, v in locked.tables.items() if t.startswith("agg_")}
    assert len(frozen) == 7  # the effects' estimates too: computed again, digit for digit
    queries = Aggregates(settings, published_trial).queries(frozen)
    with psycopg.connect(published_trial.url()) as conn:
        conn.execute(f"set local role {Role.OWNER}")
        for table in frozen:
            locks._recompute(conn, "lock_12m_lock", table, queries[table])
            assert conn.execute(locks.checksum_sql("lock_12m_lock", table)).fetchone() == frozen[table], table
        conn.rollback()
    for table, (shown, again) in counted(published_trial, "lock_12m_lock").items():
        assert shown == again and shown, table  # the independent count agrees


def test_an_erasure_amends_the_lock_and_is_recorded(
    settings: Settings, published_trial: Warehouse, locked: locks.Lock
) -> None:
    from outcomes.warehouse.erasures import Aggregates

    with psycopg.connect(published_trial.url()) as conn:
        (participant,) = conn.execute(
            "select participant_id from lock_12m_lock.dim_participants order by participant_id limit 1"
        ).fetchone()  # type: ignore[misc]
        conn.execute("insert into pending.erasure_queue (participant_id) values (%s)", (participant,))
    before = counted(published_trial, "lock_12m_lock")

    aggregates = Aggregates(settings, published_trial)
    try:
        held = len(locks.list_locks(published_trial))  # every lock holds them (12m-lock, tampered)
        with pytest.raises(locks.LockError, match="need recomputing"):
            locks.apply_erasures(published_trial)  # not without its aggregates' SQL
        # without a build: the locks only (a build would also clean and recount the history,
        # which this module's trial shares with other tests)
        removed = locks.apply_erasures(published_trial, aggregates=aggregates)
        # the person, 25 months, 5 horizons, 4 time points, their time to employment and their
        # subject-level row
        assert removed == held * (1 + 25 + 5 + 4 + 1 + 1)
        assert locks.apply_erasures(published_trial, aggregates=aggregates) == 0  # applied once
        # the build that claimed it closes it; an erasure queued while the build ran waits
        with psycopg.connect(published_trial.url()) as conn:
            conn.execute(
                "update pending.erasure_queue set claimed_by = 'b-test-locks' where participant_id = %s",
                (participant,),
            )
            conn.execute("insert into pending.erasure_queue (participant_id) values ('test-later')")
        assert locks.close_erasures(published_trial, "b-test-locks", aggregates) == 1
        with psycopg.connect(published_trial.url()) as conn:
            left = conn.execute("select participant_id, claimed_by from pending.erasure_queue").fetchall()
        assert left == [("test-later", None)]
    finally:
        with psycopg.connect(published_trial.url()) as conn:
            conn.execute(
                "delete from pending.erasure_queue where participant_id in (%s, 'test-later')", (participant,)
            )
    with psycopg.connect(published_trial.url()) as conn:
        left = conn.execute(
            "select count(*) from lock_12m_lock.fct_participant_months where participant_id = %s",
            (participant,),
        ).fetchone()
        amendments = conn.execute(
            "select table_name, reason, rows_removed from meta.lock_amendments "
            "where name = '12m-lock' order by table_name"
        ).fetchall()
        text = " ".join(
            str(v) for row in conn.execute("select * from meta.lock_amendments").fetchall() for v in row
        )
    assert left == (0,)
    assert amendments == [
        ("adsl_participants", "erasure", 1),
        ("adtte_first_employment", "erasure", 1),
        ("agg_baseline_by_arm", "erasure", 0),
        ("agg_consort_flow", "erasure", 0),  # recomputed: one fewer randomised in their arm
        ("agg_employment_effects", "erasure", 0),  # and the estimates with it
        ("agg_employment_rates", "erasure", 0),
        ("agg_prom_effects", "erasure", 0),
        ("agg_prom_trajectories", "erasure", 0),
        ("agg_time_to_employment_effects", "erasure", 0),
        ("dim_participants", "erasure", 1),
        ("fct_employment_outcomes", "erasure", 5),
        ("fct_participant_months", "erasure", 25),
        ("fct_prom_scores", "erasure", 4),
    ]
    after = counted(published_trial, "lock_12m_lock")
    for table, (shown, again) in after.items():
        assert shown == again, table  # the aggregates count the rows left, without them
        assert shown != before[table][0], table  # and they counted them before
    assert participant not in text  # the amendment says that, never whom
    assert all(c.ok for c in locks.verify(published_trial, "12m-lock"))  # the manifest follows


def test_an_aggregate_that_does_not_recompute_to_what_was_frozen_is_emptied(
    settings: Settings, published_trial: Warehouse, locked: locks.Lock
) -> None:
    """A lock whose rows were altered after it was made (or whose aggregate's rule changed since):
    today's rule no longer gives back its frozen rates, so an erasure empties them rather than
    keep a number that counted the erased participant or one of another rule; the amendment
    records the table as found. The aggregates that still recompute are recomputed."""
    from outcomes.warehouse.erasures import Aggregates

    lock = locks.create(published_trial, "rule-changed")
    with psycopg.connect(published_trial.url()) as conn:  # a superuser who disables the guard
        conn.execute("alter table lock_rule_changed.fct_employment_outcomes disable trigger user")
        conn.execute(
            "update lock_rule_changed.fct_employment_outcomes "
            "set is_employed_within = not is_employed_within "
            "where (participant_id, horizon_months) = (select participant_id, horizon_months "
            "from lock_rule_changed.fct_employment_outcomes where is_employed_within is not null "
            "order by participant_id, horizon_months limit 1)"
        )
        conn.execute("alter table lock_rule_changed.fct_employment_outcomes enable trigger user")
        (participant,) = conn.execute(
            "select participant_id from lock_rule_changed.dim_participants "
            "order by participant_id desc limit 1"
        ).fetchone()  # type: ignore[misc]
        conn.execute("insert into pending.erasure_queue (participant_id) values (%s)", (participant,))
    try:
        assert locks.apply_erasures(published_trial, aggregates=Aggregates(settings, published_trial)) > 0
    finally:
        with psycopg.connect(published_trial.url()) as conn:
            conn.execute("delete from pending.erasure_queue where participant_id = %s", (participant,))
    with psycopg.connect(published_trial.url()) as conn:
        rates = conn.execute("select count(*) from lock_rule_changed.agg_employment_rates").fetchone()
        scores = conn.execute("select count(*) from lock_rule_changed.agg_prom_trajectories").fetchone()
        amended = {
            table: (rows, before)
            for table, rows, before in conn.execute(
                "select table_name, rows_removed, checksum_before from meta.lock_amendments "
                "where name = 'rule-changed'"
            ).fetchall()
        }
    assert rates == (0,) and scores is not None and scores[0] > 0
    assert lock.tables["agg_employment_rates"][0] == 15 and amended["agg_employment_rates"][0] == 15
    assert amended["agg_consort_flow"][0] == 0  # recomputed: the altered value is not one it counts
    # the record shows the lock as found: not as it was frozen
    assert amended["fct_employment_outcomes"][1] != lock.tables["fct_employment_outcomes"][1]
    assert amended["dim_participants"][1] == lock.tables["dim_participants"][1]


def test_the_dashboard_shows_the_lock_beside_today(
    own_home: Settings, published_trial: Warehouse, locked: locks.Lock
) -> None:
    path = refresh(own_home, published_trial, compare_lock="12m-lock")
    page = path.read_text(encoding="utf-8")
    assert "12m-lock vs today" in page and "12m-lock (as of 2026-11-21)" in page
    assert "52.8 % (19/36)" in page


def test_history_gives_the_rates_as_published_on_a_day(published_trial: Warehouse) -> None:
    today = dt.datetime.now(dt.UTC).date()
    code, out = cli(published_trial, "history", today.isoformat())
    assert code == 0, out
    assert "as published on" in out and "RCT" in out and "52.8" in out
    # exact counts, small ones included (the policy: readers of history read the row-level marts
    # too); the dashboard prints the pilot's 3 of 8 employed within 12 months as <5
    rows = [[c.strip() for c in line.split("│")[1:-1]] for line in out.splitlines() if "PILOT" in line]
    assert ["PILOT", "IPS", "12", "8", "8", "3"] in [row[:6] for row in rows], out
    code, out = cli(published_trial, "history", "2001-01-01")
    assert code == 1 and "nothing was published by the end of 2001-01-01" in out
