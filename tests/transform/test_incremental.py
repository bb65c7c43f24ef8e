"""The incremental questionnaire models (stg_registry__prom_items, int_prom_forms_scored) on a
real warehouse.

Night after night of deliveries (corrections, a withdrawal, a clinic patient who enrols later and
whose pending forms are released, an erasure, a form answered after the as-of day), and as-of
dates that move forwards and back (a backfill): after every incremental build the table must
hold exactly what a full refresh of the same raw rows and as-of date holds, row for row; and an
incremental build must rewrite only the forms that changed, in both models.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from support.builds import scratch_database
from support.deliveries import apply_directly, enrolment_row, prom_rows
from support.incremental import fingerprints, fingerprints_kept, rewritten_keys

from outcomes.ingest.pseudonym import Pseudonymiser
from outcomes.settings import Settings
from outcomes.transform.dbt import run_dbt
from outcomes.warehouse.connection import Warehouse

pytestmark = pytest.mark.slow
PSEUDONYMISE = Pseudonymiser(b"i" * 64)
MODEL = "stg_registry__prom_items"
TABLE = f"staging.{MODEL}"
SCORED = "intermediate.int_prom_forms_scored"
#: the two models and their parents, seeds included (the scored forms join the EQ-5D value set)
SELECT = [
    "build",
    "--select",
    "+int_prom_forms_scored",
    "--resource-type",
    "model",
    "--resource-type",
    "seed",
]


@pytest.fixture(scope="module")
def scratch(warehouse: Warehouse) -> Iterator[Warehouse]:
    with scratch_database(warehouse, f"{warehouse.database}_inc_{secrets.token_hex(3)}") as scratch:
        yield scratch


def deliver(warehouse: Warehouse, root: Path, source: str, delivery_id: str, files: dict[str, Any]) -> None:
    apply_directly(warehouse, root, source, delivery_id, files, PSEUDONYMISE)


def rows(warehouse: Warehouse) -> list[tuple[Any, ...]]:
    """Every row of the model, and the transaction that wrote it (the same xmin: not rewritten)."""
    with psycopg.connect(warehouse.url()) as conn:
        return conn.execute(
            f"select form_id, item, person_pseudonym, answered_on, value, updated_at, delivery_id, "
            f"form_fingerprint, xmin::text from {TABLE} order by form_id, item"
        ).fetchall()


def scored(warehouse: Warehouse) -> list[tuple[Any, ...]]:
    """Every scored form, and the transaction that wrote it."""
    with psycopg.connect(warehouse.url()) as conn:
        return conn.execute(f"select *, xmin::text from {SCORED} order by form_id").fetchall()


def build(settings: Settings, warehouse: Warehouse, as_of: dt.date, *extra: str) -> None:
    result = run_dbt(settings, warehouse, [*SELECT, *extra], as_of=as_of)
    assert result.success, result.failures


def content(table: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    return [row[:-1] for row in table]


SUMMARY_OF_RAW = """
    select form_id, delivery_id, updated_at, answered_on, person_pseudonym, count(*),
           sum(hashtextextended(delivery_id || '/' || source_line::text, 0))
    from raw.registry_proms group by 1, 2, 3, 4, 5
"""
SUMMARY = """
    select form_id, delivery_id, updated_at, answered_on, person_pseudonym, row_count, identity_hash_sum
    from raw.registry_form_rows
"""


def summary_matches_raw(conn: psycopg.Connection, *, empty: bool = False) -> None:
    """raw.registry_form_rows (kept by triggers) is the aggregate of raw.registry_proms, exactly."""
    kept = sorted(conn.execute(SUMMARY).fetchall())
    assert kept == sorted(conn.execute(SUMMARY_OF_RAW).fetchall())
    assert empty or kept, "the comparison would pass vacuously"


def incremental_equals_full_refresh(
    settings: Settings, warehouse: Warehouse, as_of: dt.date
) -> tuple[set[str], set[str]]:
    """Build incrementally, then a full refresh of the same raw rows and as-of date: the same rows.
    Returns the forms the incremental build rewrote in staging, and those it scored again."""
    with psycopg.connect(warehouse.url()) as conn:
        summary_matches_raw(conn)
    before, scored_before = rows(warehouse), scored(warehouse)
    build(settings, warehouse, as_of)
    incremental, scored_incremental = rows(warehouse), scored(warehouse)
    kept = {name: fingerprints(fingerprints_kept(warehouse, name, "form_id")) for name in (TABLE, SCORED)}
    build(settings, warehouse, as_of, "--full-refresh")
    assert content(incremental) == content(rows(warehouse))
    assert content(scored_incremental) == content(scored(warehouse))
    for name in (TABLE, SCORED):
        # the fingerprints kept beside each table: those a full refresh computes
        assert kept[name] == fingerprints(fingerprints_kept(warehouse, name, "form_id")), name
    rewritten = rewritten_keys(before, incremental)
    old = {r[1]: r[-1] for r in scored_before}
    new = {r[1]: r[-1] for r in scored_incremental}
    rescored = {form for form, xmin in new.items() if old.get(form) != xmin} | (old.keys() - new.keys())
    return rewritten, rescored


def test_incremental_builds_give_what_a_full_refresh_gives(
    scratch: Warehouse, settings: Settings, tmp_path: Path
) -> None:
    # night 1: persons 1-3 enrolled; forms of 1 and 2, of clinic patient 4 (pending) and of 3
    # answered after the first as-of day
    deliver(
        scratch,
        tmp_path,
        "trial",
        "20250110T0100Z",
        {
            "enrolment.csv": [
                enrolment_row("INC-001", 1, randomised_on="2025-01-06"),
                enrolment_row("INC-002", 2, randomised_on="2025-01-08"),
                enrolment_row("INC-003", 3, randomised_on="2025-01-09"),
            ]
        },
    )
    deliver(
        scratch,
        tmp_path,
        "registry",
        "20250111T0200Z",
        {
            "proms.csv": prom_rows("F1", 1)
            + prom_rows("F2", 2)
            + prom_rows("F4", 4)
            + prom_rows("F3", 3, "2025-02-10", updated_at="2025-01-10T10:00:00Z")
        },
    )
    first = dt.date(2025, 1, 31)
    build(settings, scratch, first)  # the table's first build: every form
    assert {r[0] for r in rows(scratch)} == {"F1", "F2"}
    # the planner is told the fraction of distinct forms: 2 forms of 8 rows
    with psycopg.connect(scratch.url()) as conn:
        (options,) = conn.execute(
            "select attoptions from pg_attribute "
            "where attrelid = 'staging.stg_registry__prom_items'::regclass and attname = 'form_id'"
        ).fetchone()
    # (a server may keep options of its own there: Debian's PostgreSQL 15 adds pg_attver)
    assert "n_distinct=-0.25" in options, options
    # nothing new: nothing rewritten
    assert incremental_equals_full_refresh(settings, scratch, first) == (set(), set())

    # night 2: F1 corrected, F2 withdrawn, a new form of person 2
    deliver(
        scratch,
        tmp_path,
        "registry",
        "20250301T0200Z",
        {
            "proms.csv": [
                {**prom_rows("F1", 1)[0], "value": 4, "updated_at": "2025-02-28T10:00:00Z"},
                *[
                    {**r, "is_deleted": "true", "updated_at": "2025-02-28T11:00:00Z"}
                    for r in prom_rows("F2", 2)
                ],
                *prom_rows("F5", 2, "2025-02-20"),
            ]
        },
    )
    second = dt.date(2025, 3, 1)
    # F3 becomes visible (answered after the first as-of day), F1, F2 and F5 changed
    changed = {"F1", "F2", "F3", "F5"}
    assert incremental_equals_full_refresh(settings, scratch, second) == (changed, changed)
    forms = {r[0] for r in rows(scratch)}
    assert forms == {"F1", "F3", "F5"}
    # the scored form is the participant's (staging keeps the person's pseudonym)
    assert ("INC-001", "F1") in {r[:2] for r in scored(scratch)}
    assert [r[4] for r in rows(scratch) if r[:2] == ("F1", "odi_01")] == [4]
    # the withdrawn form has no rows, and its fingerprint is kept beside each table: a build with
    # nothing new recomputes no form, F2 included
    kept = {name: fingerprints_kept(scratch, name, "form_id") for name in (TABLE, SCORED)}
    assert all("F2" in kept[name] for name in kept)
    build(settings, scratch, second)
    assert kept == {name: fingerprints_kept(scratch, name, "form_id") for name in (TABLE, SCORED)}

    # night 3: person 4 enrols (their pending form F4 is released into raw), person 3 is erased
    deliver(
        scratch,
        tmp_path,
        "trial",
        "20250305T0100Z",
        {
            "enrolment.csv": [
                enrolment_row("INC-001", 1, randomised_on="2025-01-06"),
                enrolment_row("INC-002", 2, randomised_on="2025-01-08"),
                enrolment_row("INC-003", 3, randomised_on="2025-01-09", erase="true"),
                enrolment_row("INC-004", 4, randomised_on="2025-03-04"),
            ]
        },
    )
    third = dt.date(2025, 3, 6)
    assert incremental_equals_full_refresh(settings, scratch, third) == ({"F3", "F4"}, {"F3", "F4"})
    assert {r[0] for r in rows(scratch)} == {"F1", "F4", "F5"}

    # a backfill: as of the first day again (F1's correction, F2's withdrawal and F5 not known
    # yet, person 4 not yet enrolled), then forwards again
    # F4's rows stay staged (raw holds them, delivered by then); its form is no participant's as
    # of the first day, so it leaves the scored forms, and comes back with person 4's enrolment
    assert incremental_equals_full_refresh(settings, scratch, first) == (
        {"F1", "F2", "F5"},
        {"F1", "F2", "F4", "F5"},
    )
    assert {r[0] for r in rows(scratch)} == {"F1", "F2", "F4"}
    assert {r[1] for r in scored(scratch)} == {"F1", "F2"}
    assert incremental_equals_full_refresh(settings, scratch, third) == (
        {"F1", "F2", "F5"},
        {"F1", "F2", "F4", "F5"},
    )
    assert {r[0] for r in rows(scratch)} == {"F1", "F4", "F5"}

    # one fingerprint per form, different forms different fingerprints
    fingerprints = {r[0]: r[7] for r in rows(scratch)}
    assert len(set(fingerprints.values())) == len(fingerprints) == 3

    # the fingerprint hashes a digest of the model's code and macros with the rows: another code
    # (here one more comment in the model), another fingerprint, so every form is recomputed
    changed = tmp_path / "changed"
    shutil.copytree(
        settings.dbt_project_dir, changed / "dbt_project", ignore=shutil.ignore_patterns("target")
    )
    model = changed / "dbt_project" / "models" / "staging" / "registry" / f"{MODEL}.sql"
    model.write_text(model.read_text() + "\n-- another version of the code\n")
    before = rows(scratch)
    build(dataclasses.replace(settings, project_dir=changed), scratch, third)
    after = rows(scratch)
    assert content(after) != content(before)  # new fingerprints
    assert [r[:7] for r in after] == [r[:7] for r in before]  # the same rows
    assert rewritten_keys(before, after) == {"F1", "F4", "F5"}

    # a form whose person changed between versions, both people participants: it is read once
    # (five of ten ODI sections: no score; read twice, ten sections would score it)
    odi = [{"item": f"odi_0{i}", "value": 2} for i in range(1, 6)]
    first_version = {**prom_rows("F6", 2, "2025-03-05")[0], "updated_at": "2025-03-05T10:00:00Z"}
    corrected = {**prom_rows("F6", 1, "2025-03-05")[0], "updated_at": "2025-03-05T11:00:00Z"}
    deliver(
        scratch,
        tmp_path,
        "registry",
        "20250306T0200Z",
        {"proms.csv": [{**first_version, **item} for item in odi] + [{**corrected, **item} for item in odi]},
    )
    fourth = dt.date(2025, 3, 10)
    rewritten, rescored = incremental_equals_full_refresh(settings, scratch, fourth)
    assert "F6" in rewritten and "F6" in rescored
    six = [row for row in scored(scratch) if row[1] == "F6"]
    assert [row[0] for row in six] == ["INC-001"], six
    with psycopg.connect(scratch.url()) as conn:
        assert conn.execute(f"select odi_pct from {SCORED} where form_id = 'F6'").fetchall() == [(None,)]


def test_the_scored_forms_follow_the_items_staging_built(
    scratch: Warehouse, settings: Settings, tmp_path: Path
) -> None:
    """A delivery that lands after staging is built and before the scored forms are: the scored
    forms are of the items staging built, and the next build brings both up to date."""
    deliver(
        scratch,
        tmp_path,
        "trial",
        "20250401T0100Z",
        {"enrolment.csv": [enrolment_row("INC-010", 10, randomised_on="2025-03-20")]},
    )
    deliver(
        scratch, tmp_path, "registry", "20250402T0200Z", {"proms.csv": prom_rows("F10", 10, "2025-03-25")}
    )
    day = dt.date(2025, 4, 5)
    build(settings, scratch, day)

    def build_one(model: str) -> None:
        result = run_dbt(
            settings, scratch, ["build", "--select", model, "--resource-type", "model"], as_of=day
        )
        assert result.success, result.failures

    def nrs(form_id: str) -> Any:
        with psycopg.connect(scratch.url()) as conn:
            return conn.execute(
                f"select nrs_pain_intensity from {SCORED} where form_id = %s", (form_id,)
            ).fetchone()

    build_one(MODEL)
    corrected = [
        {**row, "value": 3, "updated_at": "2025-04-03T10:00:00Z"}
        for row in prom_rows("F10", 10, "2025-03-25")
        if row["item"] == "nrs_pain_intensity"
    ]
    deliver(scratch, tmp_path, "registry", "20250404T0200Z", {"proms.csv": corrected})
    build_one("int_prom_forms_scored")
    assert nrs("F10") == (6,)  # what staging holds: the correction is not staged yet
    rewritten, rescored = incremental_equals_full_refresh(settings, scratch, day)
    assert "F10" in rewritten and "F10" in rescored
    assert nrs("F10") == (3,)


def test_the_form_summary_follows_every_change_of_raw(scratch: Warehouse) -> None:
    """The triggers keep raw.registry_form_rows in step with an update, a delete of some of a
    form's rows, a delete of all of them (the group goes: nothing is left of an erased form) and a
    truncate, in the transaction that changed raw (rolled back here)."""
    with psycopg.connect(scratch.url()) as conn:
        conn.execute(
            "insert into raw.registry_proms (delivery_id, source_line, form_id, person_pseudonym, "
            "answered_on, item, value, updated_at, is_deleted) "
            "select 'D-SUMMARY', n + 1, 'F-SUMMARY', 'person', date '2025-01-14', item, n, "
            "timestamptz '2025-01-14 10:00Z', false "
            "from unnest(array['odi_01', 'nrs_pain_intensity', 'eq5d_vas']) with ordinality as t(item, n)"
        )
        summary_matches_raw(conn)
        one = ("F-SUMMARY",)
        conn.execute(
            "update raw.registry_proms set updated_at = updated_at + interval '1 second' "
            "where form_id = %s and item = 'odi_01'",
            one,
        )
        summary_matches_raw(conn)
        conn.execute("delete from raw.registry_proms where form_id = %s and item = 'nrs_pain_intensity'", one)
        summary_matches_raw(conn)
        conn.execute("delete from raw.registry_proms where form_id = %s", one)
        summary_matches_raw(conn, empty=True)
        assert conn.execute("select from raw.registry_form_rows where form_id = %s", one).fetchall() == []
        conn.execute("truncate raw.registry_proms")
        assert conn.execute("select count(*) from raw.registry_form_rows").fetchone() == (0,)
        conn.rollback()
        summary_matches_raw(conn, empty=True)


def test_the_grain_is_held_by_a_unique_index(scratch: Warehouse, settings: Settings) -> None:
    """(form_id, item) is unique by a unique index, not a data test that reads every row again."""
    build(settings, scratch, dt.date(2025, 3, 6))
    with psycopg.connect(scratch.url()) as conn:
        conn.execute("set role outcomes_owner")
        row = "('person-1', 'DUP', date '2025-01-14', 'odi_01', 1, now(), 'D', 0)"
        with pytest.raises(psycopg.errors.UniqueViolation):
            conn.execute(
                f"insert into {TABLE} (person_pseudonym, form_id, answered_on, item, value, updated_at, "
                f"delivery_id, form_fingerprint) values {row}, {row}"
            )
