"""An erasure followed through a build: the synthetic trial loaded, built, gated, published, in
history and in a lock; then the trial's next extract erases one participant. The real loader
registers it; the build DAG's task bodies amend_locks and close_erasures, around the dbt build, the
gate, the publish and the history snapshot with its post-hook (support.builds.build_gate_publish,
as the DAG's tasks run them; tests/dags/test_build_outcomes.py checks their order in the DAG),
carry it through. After that no table of the warehouse holds the
participant's ID or pseudonym, the queue included, and the register holds tombstones only."""

from __future__ import annotations

import csv
import datetime as dt
import secrets
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from support.builds import PUBLISHED_AS_OF, build_gate_publish, published_scratch
from support.deliveries import write_delivery
from support.history import history_counts
from support.traces import tables_holding

from outcomes.dashboard import snapshots, tasks
from outcomes.demo.sources import generate_sources
from outcomes.ingest.landing import complete_deliveries
from outcomes.ingest.loader import apply_delivery
from outcomes.ingest.pseudonym import Pseudonymiser
from outcomes.quality.gate import new_build_id
from outcomes.settings import Settings, load_settings
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
    settings: Settings, trial: tuple[Warehouse, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    warehouse, landing = trial
    monkeypatch.setenv("OUTCOMES_HOME", str(tmp_path))  # the dashboards of this test alone
    # history over three builds (as of the day, ten days before, the day again): rates that moved
    # have three versions
    for day, night in ((PUBLISHED_AS_OF - dt.timedelta(days=10), 2), (PUBLISHED_AS_OF, 3)):
        build_gate_publish(settings, warehouse, day, drift_reason=f"erasure test: night {night}")
    locks.create(warehouse, "before-erasure", note="holds the participant")
    tasks.refresh_dashboard(warehouse)  # a snapshot whose numbers count the participant
    tasks.refresh_dashboard(warehouse)
    latest = complete_deliveries(landing, "trial")[-1]
    with open(Path(str(latest)) / "enrolment.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    # one of the RCT's 58 (one of the pilot's 8 moves a rate past the gate's drift bound, 10
    # points), whose outcome moved between the nights
    with psycopg.connect(warehouse.url()) as conn:
        versions = dict(
            conn.execute(
                "select participant_id, count(*) from history.fct_employment_outcomes group by 1"
            ).fetchall()
        )
    erased = max(
        (r for r in rows if r.get("randomised_on") and r["study"] == "RCT"),
        key=lambda r: (versions.get(r["participant_id"], 0), r["participant_id"]),
    )
    assert versions[erased["participant_id"]] > 5  # more than one version of a horizon
    agreeing, _, versions_before = history_counts(warehouse)
    assert agreeing  # the history's aggregates count the rows beside them, build by build
    assert versions_before > 15  # some rates moved between the builds
    assert not history_counts(warehouse, without=erased["participant_id"])[0]  # and they counted them
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

    build = new_build_id()
    amended = tasks.amend_locks(build, warehouse)
    assert amended > 0
    # dbt, gate, publish, history snapshot, dashboard: the DAG's order
    build_gate_publish(settings, warehouse, PUBLISHED_AS_OF, build_id=build)
    assert snapshots.list_snapshots(load_settings())[0].build_id != build
    tasks.refresh_dashboard(warehouse)
    assert tasks.close_erasures(build, warehouse) == 1

    assert tables_holding(warehouse, [participant_id, pseudonym]) == []
    # every build's aggregates in the history are counted without them, and no version is left
    # that only they made
    agreeing, builds, _ = history_counts(warehouse)
    assert agreeing and builds == 4  # the fixture's, the two nights' and the erasure's
    # the dashboards of before (their numbers counted the participant) are gone; today's is there
    left = snapshots.list_snapshots(load_settings())
    assert [s.build_id for s in left] == [build] and snapshots.latest(load_settings()) == left[0].path
    assert sorted(p.name for p in (tmp_path / "dashboards").iterdir()) == sorted(
        [left[0].name, Path(left[0].name).with_suffix(".json").name, "latest.html"]
    )
    with psycopg.connect(warehouse.url()) as conn:
        conn.execute("set role outcomes_analyst")  # an auditor reads the record, never whom
        swept = conn.execute(
            "select step, reference, participants, store, removed, unit from meta.erasure_sweeps "
            "order by sweep_id"
        ).fetchall()
    delivered = [s for s in swept if s[0] == "delivery"]
    assert [(s[1], s[2], s[3]) for s in delivered] == [
        ("trial/20261121T2300Z-77", 1, store) for store in ("raw", "pending", "quarantine")
    ]
    assert delivered[0][4] > 0  # the raw rows about them
    built = {s[3]: (s[1], s[2], s[4], s[5]) for s in swept if s[0] == "build"}
    assert built == {
        "locks": (build, 1, amended, "rows"),
        "history": (build, 1, built["history"][2], "rows"),
        "dashboards": (build, 1, 4, "files"),  # two snapshots of before, each a page and its sidecar
        "history_aggregates": (build, 1, built["history_aggregates"][2], "rows"),  # versions rewritten
        "queue": (build, 1, 1, "rows"),  # closed
    }
    assert built["history_aggregates"][2] > 0
    assert built["history"][2] > 0
    with psycopg.connect(warehouse.url()) as conn:
        tombstones = conn.execute("select count(*) from pending.erasure_tombstones").fetchone()
        amendments = conn.execute(
            "select sum(rows_removed) from meta.lock_amendments where name = 'before-erasure'"
        ).fetchone()
        marts = conn.execute("select count(*) from marts.dim_participants").fetchone()
    assert tombstones == (2,)  # their pseudonym's and their participant ID's
    assert amendments == (amended,)  # the lock records the amendment, with counts
    assert marts == (before[0] - 1,)  # the others are all there
