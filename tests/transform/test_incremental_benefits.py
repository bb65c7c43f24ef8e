"""The benefit months, incremental by participant (int_benefit_days_by_month,
int_benefit_states_on_checkpoints: dbt_project/macros/benefit_months.sql), on a real warehouse.

Night after night of welfare deliveries (a correction, an annulment, a new spell, a spell that
starts after the as-of day), an enrolment that releases pending spells, an erasure, a corrected
randomisation date, a backfill and a change of the timeline's code: after every incremental build
both tables must hold exactly what a full refresh of the same raw rows and as-of date holds, row
for row, and the build must have rewritten exactly the participants whose inputs changed.
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
from support.deliveries import apply_directly, enrolment_row, spell_row
from support.incremental import fingerprints, fingerprints_kept, rewritten_keys

from outcomes.ingest.pseudonym import Pseudonymiser
from outcomes.settings import Settings
from outcomes.transform.dbt import run_dbt
from outcomes.warehouse.connection import Warehouse

pytestmark = pytest.mark.slow
PSEUDONYMISE = Pseudonymiser(b"b" * 64)
DAYS = "intermediate.int_benefit_days_by_month"
STATES = "intermediate.int_benefit_states_on_checkpoints"
SELECT = [
    "build",
    "--select",
    "+int_benefit_days_by_month",
    "+int_benefit_states_on_checkpoints",
    "--resource-type",
    "model",
    "--resource-type",
    "seed",
]
#: persons 1, 2, 3, 5 and 6 are enrolled at first (6 never changes); 4 is a clinic patient who
#: enrols later
ENROLLED = {
    "INC-001": (1, "2025-01-06"),
    "INC-002": (2, "2025-01-08"),
    "INC-003": (3, "2025-01-09"),
    "INC-005": (5, "2025-01-09"),
    "INC-006": (6, "2025-01-07"),
}


@pytest.fixture(scope="module")
def scratch(warehouse: Warehouse) -> Iterator[Warehouse]:
    with scratch_database(warehouse, f"{warehouse.database}_incb_{secrets.token_hex(3)}") as scratch:
        yield scratch


def deliver(warehouse: Warehouse, root: Path, source: str, delivery_id: str, files: dict[str, Any]) -> None:
    apply_directly(warehouse, root, source, delivery_id, files, PSEUDONYMISE)


def enrolment(**changes: dict[str, Any]) -> list[dict[str, Any]]:
    """The trial's enrolment file (a snapshot): everyone of ENROLLED, with ``changes`` per participant."""
    people = {pid: {"randomised_on": randomised} for pid, (_, randomised) in ENROLLED.items()}
    for pid, change in changes.items():
        people.setdefault(pid, {}).update(change)
    persons = {pid: person for pid, (person, _) in ENROLLED.items()} | {"INC-004": 4}
    return [enrolment_row(pid, persons[pid], **change) for pid, change in sorted(people.items())]


def table(warehouse: Warehouse, name: str) -> list[tuple[Any, ...]]:
    """Every row, then its fingerprint and the transaction that wrote it (the same xmin: not rewritten)."""
    with psycopg.connect(warehouse.url()) as conn:
        columns = [
            r[0]
            for r in conn.execute(
                "select column_name from information_schema.columns where table_schema || '.' || "
                "table_name = %s and column_name <> 'participant_fingerprint' order by ordinal_position",
                (name,),
            )
        ]
        return conn.execute(
            f"select {', '.join(columns)}, participant_fingerprint, xmin::text from {name} "
            "order by participant_id, month_index"
        ).fetchall()


def content(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """The rows without the fingerprint and the transaction."""
    return [row[:-2] for row in rows]


def build(settings: Settings, warehouse: Warehouse, as_of: dt.date, *extra: str) -> None:
    result = run_dbt(settings, warehouse, [*SELECT, *extra], as_of=as_of)
    assert result.success, result.failures


def incremental_equals_full_refresh(
    settings: Settings, warehouse: Warehouse, as_of: dt.date
) -> tuple[set[str], set[str]]:
    """Build incrementally, then a full refresh of the same raw rows and as-of date: the same rows
    in both models. Returns the participants the incremental build rewrote in each."""
    before = {name: table(warehouse, name) for name in (DAYS, STATES)}
    build(settings, warehouse, as_of)
    incremental = {name: table(warehouse, name) for name in (DAYS, STATES)}
    kept = {
        name: fingerprints(fingerprints_kept(warehouse, name, "participant_id")) for name in (DAYS, STATES)
    }
    build(settings, warehouse, as_of, "--full-refresh")
    for name in (DAYS, STATES):
        # the same rows, and the same fingerprints (one formula both ways), in the rows and beside them
        assert [r[:-1] for r in incremental[name]] == [r[:-1] for r in table(warehouse, name)], name
        assert kept[name] == fingerprints(fingerprints_kept(warehouse, name, "participant_id")), name
    assert incremental[DAYS], "the comparison would pass vacuously"
    return rewritten_keys(before[DAYS], incremental[DAYS]), rewritten_keys(
        before[STATES], incremental[STATES]
    )


def test_incremental_benefit_months_give_what_a_full_refresh_gives(
    scratch: Warehouse, settings: Settings, tmp_path: Path
) -> None:
    deliver(scratch, tmp_path, "trial", "20250110T0100Z", {"enrolment.csv": enrolment()})
    deliver(
        scratch,
        tmp_path,
        "welfare",
        "20250111T0300Z",
        {
            "benefit_spells.csv": [
                spell_row("S1", 1),
                spell_row("S2", 2, benefit="AAP", from_date="2024-12-01", to_date="2025-02-10"),
                spell_row("S3", 3, grade_pct=50, from_date="2025-01-05"),
                # starts after the first as-of day: visible from the second
                spell_row(
                    "S5", 3, benefit="AAP", from_date="2025-02-05", registered_at="2025-01-10T08:00:00Z"
                ),
                spell_row("S7", 5, benefit="UFORETRYGD", grade_pct=60, from_date="2024-06-01"),
                spell_row("S8", 6, benefit="DAGPENGER", from_date="2025-01-01", to_date="2025-06-30"),
                # a clinic patient's spell, pending until they enrol
                spell_row("S4", 4, from_date="2025-01-02"),
            ]
        },
    )
    first = dt.date(2025, 1, 31)
    build(settings, scratch, first)  # the tables' first build: everyone
    assert {r[0] for r in table(scratch, DAYS)} == {"INC-001", "INC-002", "INC-003", "INC-005", "INC-006"}
    # nothing new: nothing rewritten
    assert incremental_equals_full_refresh(settings, scratch, first) == (set(), set())

    # night 2: S1 corrected (its end date alone), S7 corrected (its grade alone), S2 annulled; S5
    # becomes visible
    deliver(
        scratch,
        tmp_path,
        "welfare",
        "20250301T0300Z",
        {
            "benefit_spells.csv": [
                spell_row("S1", 1, to_date="2025-02-15", registered_at="2025-02-16T08:00:00Z"),
                spell_row(
                    "S7",
                    5,
                    benefit="UFORETRYGD",
                    grade_pct=80,
                    from_date="2024-06-01",
                    registered_at="2025-02-16T08:00:00Z",
                ),
                spell_row(
                    "S2",
                    2,
                    benefit="AAP",
                    from_date="2024-12-01",
                    to_date="2025-02-10",
                    status="ANNULLED",
                    registered_at="2025-02-20T08:00:00Z",
                ),
            ]
        },
    )
    second = dt.date(2025, 3, 1)
    changed = {"INC-001", "INC-002", "INC-003", "INC-005"}
    assert incremental_equals_full_refresh(settings, scratch, second) == (changed, changed)
    # the annulled spell was person 2's only one: no rows left, no fingerprint kept
    assert "INC-002" not in {r[0] for r in table(scratch, DAYS)}
    kept = {name: fingerprints_kept(scratch, name, "participant_id") for name in (DAYS, STATES)}
    assert all("INC-002" not in kept[name] and "INC-001" in kept[name] for name in kept)
    # a build with nothing new recomputes nobody
    build(settings, scratch, second)
    assert kept == {name: fingerprints_kept(scratch, name, "participant_id") for name in (DAYS, STATES)}

    # night 3: person 4 enrols (their pending spell is released), person 3 is erased, person 5's
    # randomisation date is corrected, person 1 has a new spell
    deliver(
        scratch,
        tmp_path,
        "trial",
        "20250305T0100Z",
        {
            "enrolment.csv": enrolment(
                **{
                    "INC-003": {"erase": "true"},
                    "INC-004": {"randomised_on": "2025-03-04"},
                    "INC-005": {"randomised_on": "2025-01-10"},
                }
            )
        },
    )
    deliver(
        scratch,
        tmp_path,
        "welfare",
        "20250304T0300Z",
        {
            "benefit_spells.csv": [
                spell_row(
                    "S6", 1, benefit="AAP", from_date="2025-02-16", registered_at="2025-03-03T08:00:00Z"
                )
            ]
        },
    )
    third = dt.date(2025, 3, 6)
    changed = {"INC-001", "INC-003", "INC-004", "INC-005"}
    assert incremental_equals_full_refresh(settings, scratch, third) == (changed, changed)
    assert {r[0] for r in table(scratch, DAYS)} == {"INC-001", "INC-004", "INC-005", "INC-006"}

    # a backfill: as of the first day again (night 2's spells not known, person 4 not enrolled,
    # person 5's first randomisation date), then forwards again
    changed = {"INC-001", "INC-002", "INC-004", "INC-005"}
    assert incremental_equals_full_refresh(settings, scratch, first) == (changed, changed)
    assert incremental_equals_full_refresh(settings, scratch, third) == (changed, changed)

    # the fingerprint hashes a digest of the timeline's code: another spine (here one more
    # comment), another fingerprint, so every participant is recomputed, to the same rows
    changed_project = tmp_path / "changed"
    shutil.copytree(
        settings.dbt_project_dir, changed_project / "dbt_project", ignore=shutil.ignore_patterns("target")
    )
    spine = changed_project / "dbt_project" / "models" / "intermediate" / "timeline"
    spine = spine / "int_participant_months_spined.sql"
    spine.write_text(spine.read_text() + "\n-- another version of the code\n")
    before = table(scratch, DAYS)
    build(dataclasses.replace(settings, project_dir=changed_project), scratch, third)
    after = table(scratch, DAYS)
    assert content(after) == content(before)
    assert {r[-2] for r in after}.isdisjoint({r[-2] for r in before})
    assert rewritten_keys(before, after) == {"INC-001", "INC-004", "INC-005", "INC-006"}
