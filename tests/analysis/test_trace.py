"""`outcomes trace` end to end: a participant's published numbers with the rows and deliveries
behind them, and why an outcome changed since a lock, on a real warehouse built twice."""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from support.builds import PUBLISHED_AS_OF, build_gate_publish, published_scratch
from typer.testing import CliRunner

from outcomes.cli import app
from outcomes.settings import Settings
from outcomes.warehouse import locks
from outcomes.warehouse.connection import Warehouse

pytestmark = pytest.mark.slow


def cli(warehouse: Warehouse, *args: str) -> tuple[int, str]:
    done = CliRunner().invoke(
        app, list(args), env={"OUTCOMES_WAREHOUSE_URL": warehouse.admin_url, "COLUMNS": "400"}
    )
    return done.exit_code, done.output


@pytest.fixture(scope="module")
def twice(
    settings: Settings,
    warehouse: Warehouse,
    published_landing: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Warehouse, str]]:
    """The trial published and locked as `earlier`; then the employment source delivers a job it
    had missed for someone known not employed, and the trial is built and published again: the
    participant's outcome changed between the lock and today, and a delivery explains why."""
    from support.deliveries import write_delivery

    from outcomes.ingest.landing import complete_deliveries
    from outcomes.ingest.loader import apply_delivery
    from outcomes.ingest.pseudonym import Pseudonymiser

    name = f"{warehouse.database}_trace_{secrets.token_hex(3)}"
    with published_scratch(settings, warehouse, published_landing, PUBLISHED_AS_OF, name) as scratch:
        locks.create(scratch, "earlier")
        with psycopg.connect(scratch.url()) as conn:
            participant, randomised = conn.execute(
                "select participant_id, randomised_on from marts.adsl_participants "
                "where study = 'RCT' and is_employed_within_12m = false and first_employment_date is null "
                "order by participant_id limit 1"
            ).fetchone()
        landing = tmp_path_factory.mktemp("trace-landing")
        late_job = {
            "job_id": f"{participant}-LATE",
            "participant_id": participant,
            "start_date": (randomised + dt.timedelta(days=100)).isoformat(),
            "end_date": "",
            "job_type": "COMPETITIVE",
            "hours_per_week": "20",
            "recorded_at": f"{PUBLISHED_AS_OF.isoformat()}T20:00:00Z",
            "is_deleted": "false",
        }
        write_delivery(landing, "employment", f"{PUBLISHED_AS_OF:%Y%m%d}T2300Z", {"jobs.csv": [late_job]})
        with psycopg.connect(scratch.url(), autocommit=True) as conn:
            conn.execute("set role outcomes_loader")
            (delivery,) = complete_deliveries(landing, "employment")
            assert apply_delivery(conn, delivery, pseudonymise=Pseudonymiser(b"p" * 64)).status == "loaded"
        build_gate_publish(
            settings, scratch, PUBLISHED_AS_OF, drift_reason="trace test: a job delivered late"
        )
        yield scratch, participant


def test_a_trace_shows_the_numbers_and_the_rows_behind_them(twice: tuple[Warehouse, str]) -> None:
    warehouse, _ = twice
    with psycopg.connect(warehouse.url()) as conn:
        participant, day, record, delivery, line = conn.execute(
            "select participant_id, event_date, event_record, event_delivery_id, event_source_line "
            "from marts.adtte_first_employment where is_event and event_source = 'job' "
            "order by participant_id limit 1"
        ).fetchone()
        (versions,) = conn.execute(
            "select count(*) from raw.employment_jobs j join raw.employment_jobs k using (job_id) "
            "where j.participant_id = %s and j.delivery_id = %s and j.source_line = %s",
            (participant, delivery, line),
        ).fetchone()
        pseudonyms = [
            r[0]
            for r in conn.execute(
                "select person_pseudonym from raw.trial_enrolment where participant_id = %s", (participant,)
            )
        ]
    code, out = cli(warehouse, "trace", participant)
    assert code == 0, out
    assert f"first employment {day}" in out and record in out and f"{delivery} line {line}" in out
    lines = [row for row in out.splitlines() if record in row and delivery in row]
    assert lines and any("in effect" in row for row in lines)  # the version that decided it
    assert out.count(record) >= versions  # every version of that record is listed
    assert "Months" in out and "Questionnaires" in out
    assert not [p for p in pseudonyms if p in out]  # whom, only as the trial's own ID


def test_a_trace_against_a_lock_says_what_changed_and_what_arrived_since(
    twice: tuple[Warehouse, str],
) -> None:
    """'Why did this participant's 12-month outcome change between the lock and today?'"""
    warehouse, participant = twice
    code, out = cli(warehouse, "trace", participant, "--lock", "earlier")
    assert code == 0, out
    twelve = next(row for row in out.splitlines() if row.strip("│ ").startswith("12 "))
    assert "yes" in twelve and "no" in twelve and "changed" in twelve  # yes today, no in the lock
    late = [row for row in out.splitlines() if f"{participant}-LATE" in row and "COMPETITIVE" in row]
    assert late and all("in effect" in row and "since the lock" in row for row in late)
    assert f"job {participant}-LATE" in out and "first employment" in out
    code, out = cli(warehouse, "trace", participant, "--lock", "no-such-lock")
    assert code == 1 and "there is no lock 'no-such-lock'" in out
    code, out = cli(warehouse, "trace", "XX-999")
    assert code == 1 and "participant 'XX-999' is not in the published marts" in out
