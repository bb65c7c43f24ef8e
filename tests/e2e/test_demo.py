"""``outcomes demo`` end to end, as `make demo` runs it: the installed command, a real warehouse."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from support.deployments import pg_dump

from outcomes.contracts.registry import source_names
from outcomes.settings import Settings
from outcomes.warehouse.bootstrap import current_revision, head_revision
from outcomes.warehouse.connection import Warehouse

pytestmark = pytest.mark.slow
OUTCOMES = str(Path(sys.executable).parent / "outcomes")


def test_demo_generates_bootstraps_runs_and_says_where_to_look(
    settings: Settings, warehouse: Warehouse
) -> None:
    done = subprocess.run(
        [OUTCOMES, "demo"], capture_output=True, text=True, env=dict(os.environ), timeout=600, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "warehouse_maintenance" in done.stdout and "success" in done.stdout
    assert "Where to look" in done.stdout
    assert "outcomes_analyst@" in done.stdout
    landing = Path(settings.landing)
    for source in source_names():
        assert list((landing / source).glob("*/_manifest.json")), source
    assert current_revision(warehouse) == head_revision()
    with psycopg.connect(warehouse.url(database=warehouse.airflow_database)) as conn:
        runs = conn.execute(
            "select state from dag_run where dag_id = 'warehouse_maintenance' order by id desc limit 1"
        ).fetchone()
    assert runs == ("success",)
    # it ends with the path of the dashboard snapshot of what it published
    from outcomes.dashboard.snapshots import latest

    snapshot = latest(settings)
    assert snapshot is not None and done.stdout.rstrip().splitlines()[-1].strip() == str(snapshot)
    with psycopg.connect(warehouse.url()) as conn:
        published = conn.execute("select build_id from meta.published_builds").fetchall()
    assert published and published[-1][0] in snapshot.name
    # the build DAG's run published marts, history, gate results, Data Docs and dbt docs
    with psycopg.connect(warehouse.url()) as conn:
        conn.execute("set role outcomes_analyst")
        for table in ("marts.fct_prom_scores", "marts.agg_prom_trajectories", "history.agg_employment_rates"):
            assert conn.execute(f"select count(*) from {table}").fetchone() > (0,), table
        results = conn.execute(
            "select count(*) from meta.gate_results where build_id = %s", (published[-1][0],)
        ).fetchone()
        ran = conn.execute(
            "select expectations from meta.gate_runs where build_id = %s", (published[-1][0],)
        ).fetchone()
    # one row per expectation the gate ran
    assert ran is not None and ran[0] > 30 and results == ran
    assert (settings.gx_data_docs_dir / "index.html").exists()
    docs = settings.dbt_docs_dir
    assert {p.name for p in docs.iterdir()} == {"index.html", "manifest.json", "catalog.json"}
    assert "model.outcomes.fct_prom_scores" in (docs / "catalog.json").read_text()


def test_a_contract_valid_enrolment_that_lost_participants_is_stopped_by_the_gate(
    settings: Settings, warehouse: Warehouse
) -> None:
    """After the demo published: the trial's next full snapshot is valid but silently lacks three
    randomised participants. The loader accepts it (it breaks no contract); the gate blocks the
    publish, `outcomes run` exits 3 naming the expectation, an alert goes out, `outcomes status`
    shows it, and analysts keep reading yesterday's marts."""
    import csv
    import datetime as dt
    import json

    from support.deliveries import write_delivery

    from outcomes.ingest.landing import complete_deliveries

    landing = Path(settings.landing)
    latest = complete_deliveries(landing, "trial")[-1]
    with open(Path(str(latest)) / "enrolment.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    lost = [r["participant_id"] for r in rows if r.get("randomised_on")][:3]
    kept = [r for r in rows if r["participant_id"] not in lost]
    now = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)
    # After the latest delivery, even when the demo's last one is later today (before 01:00 UTC).
    after_latest = dt.datetime.strptime(latest.name[:14], "%Y%m%dT%H%MZ").replace(tzinfo=dt.UTC)
    lossy_at = max(now, after_latest + dt.timedelta(minutes=1))
    delivery_id = lossy_at.strftime("%Y%m%dT%H%MZ")
    assert delivery_id > latest.name
    write_delivery(landing, "trial", delivery_id, {"enrolment.csv": kept})

    from outcomes.dashboard.snapshots import latest

    dashboard_before = latest(settings)
    assert dashboard_before is not None
    with psycopg.connect(warehouse.url()) as conn:
        published_before = conn.execute(
            "select build_id from meta.published_builds order by published_at desc limit 1"
        ).fetchone()
        marts_before = conn.execute(
            "select md5(string_agg(d::text, '|' order by d::text)) from marts.dim_participants d"
        ).fetchone()
    assert published_before is not None

    from outcomes.ingest.pseudonym import KEY_FILE_ENV, ensure_demo_key

    env = {**os.environ, KEY_FILE_ENV: str(ensure_demo_key(settings.home))}  # the demo's own key
    done = subprocess.run(
        [OUTCOMES, "run", "--landing", str(landing)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )
    assert done.returncode == 3, done.stdout + done.stderr
    assert "ingest_trial" in done.stdout and "success" in done.stdout  # the new delivery was applied
    assert "drift_participants.no_participant_lost" in done.stdout
    assert "NOT published" in done.stdout

    with psycopg.connect(warehouse.url()) as conn:
        status = conn.execute(
            "select status from meta.deliveries where source = 'trial' and delivery_id = %s", (delivery_id,)
        ).fetchone()
        published_after = conn.execute(
            "select build_id from meta.published_builds order by published_at desc limit 1"
        ).fetchone()
        marts_after = conn.execute(
            "select md5(string_agg(d::text, '|' order by d::text)) from marts.dim_participants d"
        ).fetchone()
        conn.execute("set role outcomes_analyst")
        still_there = conn.execute(
            "select count(*) from marts.dim_participants where participant_id = any(%s)", (lost,)
        ).fetchone()
    assert status == ("loaded",)  # contract-valid: the loader had no reason to refuse it
    assert published_after == published_before and marts_after == marts_before
    assert still_there == (len(lost),)
    assert latest(settings) == dashboard_before  # the dashboard still shows the last good build

    alerts = [json.loads(line) for line in settings.alerts_log.read_text().splitlines()]
    blocked = [a for a in alerts if a["kind"] == "gate_blocked"]
    assert blocked and "drift_participants.no_participant_lost" in blocked[-1]["summary"]
    shown = subprocess.run(
        [OUTCOMES, "status"], capture_output=True, text=True, env=dict(os.environ), timeout=120, check=False
    )
    assert shown.returncode == 0, shown.stderr
    assert "blocked" in shown.stdout and "no_participant_lost" in shown.stdout and "FAIL" in shown.stdout
    assert f"dashboard {dashboard_before}" in shown.stdout

    # The trial corrects its extract: the next demo (which reuses the landing zone and the
    # warehouse) publishes, and the warehouse is whole again (later tests share it).
    fixed_id = max(dt.datetime.now(dt.UTC), lossy_at + dt.timedelta(minutes=1)).strftime("%Y%m%dT%H%MZ")
    # (in another row order: the same bytes again would be a duplicate delivery, applied once)
    write_delivery(landing, "trial", fixed_id, {"enrolment.csv": rows[::-1]})
    fixed = subprocess.run(
        [OUTCOMES, "demo"], capture_output=True, text=True, env=dict(os.environ), timeout=600, check=False
    )
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    assert "existing deliveries" in fixed.stdout and "published" in fixed.stdout
    with psycopg.connect(warehouse.url()) as conn:
        back = conn.execute(
            "select count(*) from marts.dim_participants where participant_id = any(%s)", (lost,)
        ).fetchone()
    assert back == (len(lost),)
    assert latest(settings) not in (None, dashboard_before)  # and the dashboard moved on


def test_backfill_publishes_the_marts_as_of_an_earlier_day_with_its_own_dashboard(
    settings: Settings, warehouse: Warehouse
) -> None:
    """`outcomes backfill` over the demo's raw data (after the tests above published it): one
    build as of a week ago, gated with the backfill as its drift reason, recorded with its as-of
    date and rendered as a dashboard of that date. (Restoring tonight's as-of afterwards is the same
    build again: its plan is tested in tests/test_pipeline_plan.py.)"""
    import datetime as dt

    day = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=7)
    done = subprocess.run(
        [OUTCOMES, "backfill", "--from", day.isoformat(), "--to", day.isoformat(), "--no-restore"],
        capture_output=True,
        text=True,
        env=dict(os.environ),
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"backfill (backfill {day}..{day}): 1 builds, as of {day}" in done.stdout
    # the dbt project has not changed since the demo's build made its docs: they are not remade
    assert "docs_outdated success" in done.stdout and "generate_docs skipped" in done.stdout
    with psycopg.connect(warehouse.url()) as conn:
        build_id, as_of, reason = conn.execute(
            """
            select p.build_id, p.as_of_date, g.drift_reason from meta.published_builds p
            join meta.gate_runs g using (build_id) order by p.published_at desc limit 1
            """
        ).fetchone() or (None, None, None)
    assert (as_of, reason) == (day, f"backfill {day}..{day}")
    assert (settings.dashboards_dir / f"{day.isoformat()}_{build_id}.html").exists()

    future = dt.datetime.now(dt.UTC).date() + dt.timedelta(days=1)
    refused = subprocess.run(
        [OUTCOMES, "backfill", "--from", day.isoformat(), "--to", future.isoformat()],
        capture_output=True,
        text=True,
        env=dict(os.environ),
        timeout=120,
        check=False,
    )
    assert refused.returncode == 2 and "is in the future" in refused.stdout + refused.stderr
    # `outcomes rebuild` is the same path (pipeline.run_builds) for one day; it refuses a future one
    refused = subprocess.run(
        [OUTCOMES, "rebuild", "--as-of", future.isoformat()],
        capture_output=True,
        text=True,
        env=dict(os.environ),
        timeout=120,
        check=False,
    )
    assert refused.returncode == 2 and "is in the future" in refused.stdout + refused.stderr


#: Whom the erasure below erased (participant ID and pseudonym), for the scan after it.
ERASED: dict[str, str] = {}


def test_an_erasure_reaches_the_lock_the_history_and_the_dashboards(
    settings: Settings, warehouse: Warehouse
) -> None:
    """After the runs above (a published build, a blocked one, a backfill: their logs, XComs, gate
    results, Data Docs and dashboards) and a lock: the trial's next extract says one randomised
    participant withdrew consent. `outcomes run` applies it and builds; after it the lock is
    amended, the dashboards rendered before are gone and today's is rendered without them, and
    an auditor reads which stores were cleaned. The test after this one scans the dumps and every
    file for their participant ID and pseudonym."""
    import csv
    import datetime as dt

    from support.deliveries import write_delivery

    from outcomes.dashboard.snapshots import latest, list_snapshots
    from outcomes.ingest.landing import complete_deliveries
    from outcomes.ingest.pseudonym import KEY_FILE_ENV, ensure_demo_key, pseudonymiser

    env = {**os.environ, KEY_FILE_ENV: str(ensure_demo_key(settings.home))}  # the demo's own key
    locked = subprocess.run(
        [OUTCOMES, "lock", "create", "before-erasure"], capture_output=True, text=True, env=env, timeout=120
    )
    assert locked.returncode == 0, locked.stdout + locked.stderr
    landing = Path(settings.landing)
    latest_delivery = complete_deliveries(landing, "trial")[-1]
    with open(Path(str(latest_delivery)) / "enrolment.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    # one of the RCT's (one of the pilot's 8 moves a rate past the gate's drift bound)
    erased = next(r for r in rows if r.get("randomised_on") and r["study"] == "RCT")
    ERASED["participant ID"] = erased["participant_id"]
    ERASED["pseudonym"] = pseudonymiser(env)(erased["fnr"])
    dump = _dump(warehouse, warehouse.database)
    assert len(_whom(dump)) == 2, "the scan cannot see the participant before the erasure"
    before = list_snapshots(settings)
    assert len({s.build_id for s in before}) > 1  # the demo's builds and the backfill's

    after_latest = dt.datetime.strptime(latest_delivery.name[:14], "%Y%m%dT%H%MZ").replace(tzinfo=dt.UTC)
    at = max(dt.datetime.now(dt.UTC), after_latest + dt.timedelta(minutes=1))
    extract = [{**r, "erase": "true"} if r is erased else r for r in rows]
    write_delivery(landing, "trial", at.strftime("%Y%m%dT%H%MZ"), {"enrolment.csv": extract})
    done = subprocess.run(
        [OUTCOMES, "run", "--landing", str(landing)], capture_output=True, text=True, env=env, timeout=900
    )
    assert done.returncode == 0, done.stdout + done.stderr

    with psycopg.connect(warehouse.url()) as conn:
        build = conn.execute(
            "select build_id from meta.published_builds order by published_at desc limit 1"
        ).fetchone()
        conn.execute("set role outcomes_analyst")  # what an auditor reads: never whom
        swept = conn.execute(
            "select step, store, participants, removed, unit from meta.erasure_sweeps order by sweep_id"
        ).fetchall()
        amended = conn.execute(
            "select sum(rows_removed) from meta.lock_amendments where name = 'before-erasure'"
        ).fetchone()
    assert build is not None
    stores = {(step, store): (n, removed, unit) for step, store, n, removed, unit in swept}
    assert set(stores) == {
        ("delivery", "raw"),
        ("delivery", "pending"),
        ("delivery", "quarantine"),
        ("build", "locks"),
        ("build", "history"),
        ("build", "history_aggregates"),
        ("build", "dashboards"),
        ("build", "queue"),
    }
    assert all(n == 1 for n, _, _ in stores.values())
    assert len(swept) == len(stores)  # one record per store and step
    assert stores["delivery", "raw"][1] > 0 and stores["build", "history"][1] > 0
    assert stores["build", "history_aggregates"][1] > 0  # versions counted again without them
    assert amended is not None and stores["build", "locks"][1] == amended[0] > 0
    removed = 2 * len(before)  # each snapshot of before: its page and its sidecar
    assert stores["build", "dashboards"][1:] == (removed, "files")
    now = list_snapshots(settings)
    assert {s.build_id for s in now} == {build[0]} and latest(settings) in {s.path for s in now}
    assert not _whom(_dump(warehouse, warehouse.database))


def _whom(text: bytes) -> list[str]:
    """What of the erased participant ``text`` holds, by name, never the value."""
    import re

    found = []
    for what, value in ERASED.items():
        if re.search(rb"(?<![A-Za-z0-9])" + re.escape(value.encode()) + rb"(?![0-9A-Za-z])", text):
            found.append(f"the erased participant's {what}")
    return found


#: Files under OUTCOMES_HOME that hold a secret by design (the key, Airflow's own configuration and
#: its generated admin password) or are not the warehouse's to clean (the landing zone, the database's
#: storage, scanned below as a dump).
SECRET_STORES = (
    "pseudonym.key",
    "airflow/airflow.cfg",
    "airflow/simple_auth_manager_passwords.json.generated",
)


def _secrets_in_effect(settings: Settings, warehouse: Warehouse) -> dict[str, str]:
    """The secrets the runs above used, by what they are: the pseudonymisation key (as the loader
    finds it), Airflow's Fernet key and JWT secret (the test session sets both, as a deployment
    does), the warehouse's password when its URL has one, and Airflow's generated passwords when
    its home keeps them."""
    import json

    from sqlalchemy.engine import make_url

    from outcomes.ingest.pseudonym import KEY_ENV

    key_file = settings.home / "pseudonym.key"  # the demo's (outcomes.ingest.pseudonym.ensure_demo_key)
    key = os.environ.get(KEY_ENV) or (key_file.read_text().strip() if key_file.exists() else "")
    assert key, "the runs above used no pseudonymisation key this test can see"
    found = {
        "the pseudonymisation key": key,
        "Airflow's Fernet key": os.environ["AIRFLOW__CORE__FERNET_KEY"],
        "Airflow's JWT secret": os.environ["AIRFLOW__API_AUTH__JWT_SECRET"],
        "the warehouse's password": make_url(warehouse.admin_url).password or "",
    }
    passwords = settings.airflow_home / "simple_auth_manager_passwords.json.generated"
    if passwords.exists():
        for user, password in json.loads(passwords.read_text()).items():
            found[f"the password of Airflow user {user}"] = password
    return {what: str(value) for what, value in found.items() if len(str(value)) >= 8}


def _dump(warehouse: Warehouse, database: str) -> bytes:
    return pg_dump(warehouse.url(database=database))


def test_no_secret_and_no_fnr_in_logs_xcoms_files_or_databases_after_the_runs(
    settings: Settings, warehouse: Warehouse
) -> None:
    """After the runs above (the demo, a run the gate blocked, a backfill, an erasure): no fnr, no
    secret and nothing of the erased participant in any file under OUTCOMES_HOME (task, dbt and
    gate logs, the embedded server's log, Data Docs, dashboards, the alerts log, caches), in a
    dump of the warehouse, or in a dump of Airflow's metadata database (its XComs, task instances,
    DAG runs and their configuration)."""
    from support.traces import delivered_in, fnrs_in

    landing = Path(settings.landing)
    delivered = set()
    for path in landing.rglob("*.csv"):
        delivered |= fnrs_in(path.read_bytes())
    assert len(delivered) > 60  # the scan sees the trial's fnrs, and the registry's other patients'
    secrets_ = _secrets_in_effect(settings, warehouse)
    assert {"the pseudonymisation key", "Airflow's Fernet key", "Airflow's JWT secret"} <= set(secrets_)

    assert ERASED, "the erasure test above did not run"

    def leaks(text: bytes) -> list[str]:
        """Any fnr (shaped like one, or one delivered, however written), any secret, and the
        erased participant's ID or pseudonym: by name, never the value."""
        numbers = fnrs_in(text) | delivered_in(text, delivered)
        found = [f"an fnr ({number[:4]}...)" for number in sorted(numbers)]
        return found + [what for what, value in secrets_.items() if value.encode() in text] + _whom(text)

    left_out = {settings.home / name for name in SECRET_STORES}
    scanned, leaked = 0, {}
    for path in sorted(settings.home.rglob("*")):
        if (
            not path.is_file()
            or path.is_symlink()
            or path in left_out
            # the database's storage (scanned as dumps below), not its server log
            or (path.is_relative_to(settings.pgdata) and not path.is_relative_to(settings.pgdata / "log"))
            or path.is_relative_to(landing)
        ):
            continue
        scanned += 1
        if found := leaks(path.read_bytes()):
            leaked[str(path.relative_to(settings.home))] = found
    assert scanned > 100 and (settings.airflow_home / "logs").is_dir()
    for database in (warehouse.database, warehouse.airflow_database):
        dump = _dump(warehouse, database)
        if found := leaks(dump):
            leaked[f"database {database}"] = found
    assert not leaked, leaked
