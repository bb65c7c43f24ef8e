"""An erasure followed through a build: the synthetic trial loaded, built, gated, published, in
history and in a lock; then the trial's next extract erases one participant. The real loader
registers it; the build DAG's task bodies amend_locks and close_erasures, around the dbt build, the
gate, the publish and the history snapshot with its post-hook (support.builds.build_gate_publish,
as the DAG's tasks run them; tests/dags/test_build_outcomes.py checks their order in the DAG),
carry it through. After that no table of the warehouse holds the
participant's ID or pseudonym, the queue included, and the register holds tombstones only."""

from __future__ import annotations

import csv
import secrets
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from support.builds import PUBLISHED_AS_OF, build_gate_publish, published_scratch
from support.deliveries import write_delivery
from support.traces import tables_holding

from outcomes.dashboard import tasks
from outcomes.demo.sources import generate_sources
from outcomes.ingest.landing import complete_deliveries
from outcomes.ingest.loader import apply_delivery
from outcomes.ingest.pseudonym import Pseudonymiser
from outcomes.settings import Settings
from outcomes.warehouse import locks
from outcomes.warehouse.connection import Warehouse

pytestmark = pytest.mark.slow

PSEUDONYMISE = Pseudonymiser(b"p" * 64)  # support.builds.published_scratch's key


@pytest.fixture(scope="module")
def trial(
    settings: Settings, warehouse: Warehouse, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Warehouse, Path]]:
    landing = tmp_path_factory.mktemp("erasure-landing")
    generate_sources(landing, seed=42, until=PUBLISHED_AS_OF)
    name = f"{warehouse.database}_erase_{secrets.token_hex(3)}"
    with published_scratch(settings, warehouse, landing, PUBLISHED_AS_OF, name) as scratch:
        yield scratch, landing


def test_an_erasure_leaves_no_trace_after_the_build(
    settings: Settings, trial: tuple[Warehouse, Path]
) -> None:
    warehouse, landing = trial
    locks.create(warehouse, "before-erasure", note="holds the participant")
    latest = complete_deliveries(landing, "trial")[-1]
    with open(Path(str(latest)) / "enrolment.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    # one of the RCT's 58: one of the pilot's 8 moves a rate past the gate's drift bound (10 points)
    erased = next(r for r in rows if r.get("randomised_on") and r["study"] == "RCT")
    participant_id, pseudonym = erased["participant_id"], PSEUDONYMISE(erased["fnr"])
    assert (
        len(tables_holding(warehouse, [participant_id, pseudonym])) > 5
    )  # raw, marts, history, the lock ...
    with psycopg.connect(warehouse.url()) as conn:
        before = conn.execute("select count(*) from marts.dim_participants").fetchone()
    assert before is not None

    extract = [{**r, "erase": "true"} if r is erased else r for r in rows]
    delivery = write_delivery(landing, "trial", "20261121T2300Z-77", {"enrolment.csv": extract})
    with psycopg.connect(warehouse.url(), autocommit=True) as conn:
        conn.execute("set role outcomes_loader")
        outcome = apply_delivery(conn, delivery, pseudonymise=PSEUDONYMISE)
    assert outcome.participants_erased == 1, outcome
    left = tables_holding(warehouse, [participant_id, pseudonym])
    assert "pending.erasure_queue" in left and "history.fct_employment_outcomes" in left  # until the build

    build = "b-erasure-test"
    amended = tasks.amend_locks(build, warehouse)
    assert amended > 0
    build_gate_publish(settings, warehouse, PUBLISHED_AS_OF)  # dbt, gate, publish, history snapshot
    assert tasks.close_erasures(build, warehouse) == 1

    assert tables_holding(warehouse, [participant_id, pseudonym]) == []
    with psycopg.connect(warehouse.url()) as conn:
        tombstones = conn.execute("select count(*) from pending.erasure_tombstones").fetchone()
        amendments = conn.execute(
            "select sum(rows_removed) from meta.lock_amendments where name = 'before-erasure'"
        ).fetchone()
        marts = conn.execute("select count(*) from marts.dim_participants").fetchone()
    assert tombstones == (2,)  # their pseudonym's and their participant ID's
    assert amendments == (amended,)  # the lock records the amendment, with counts
    assert marts == (before[0] - 1,)  # the others are all there
