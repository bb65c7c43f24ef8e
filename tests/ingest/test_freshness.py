"""Late sources (ingest/freshness.py): the decision as pure functions, then the maintenance task's
body on a scratch warehouse with real deliveries applied by the real loader, its alerts read back
from the alerts log of a home of the test's own, and the verdicts in ``outcomes status``."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from rich.console import Console
from support.builds import scratch_database
from support.deliveries import enrolment_row, fnr, prom_rows, spell_row, write_delivery

from outcomes.contracts.registry import source_names
from outcomes.ingest.freshness import (
    LastDelivery,
    assess,
    assess_all,
    extract_time,
    newest,
    source_freshness,
)
from outcomes.ingest.landing import complete_deliveries
from outcomes.ingest.loader import apply_delivery
from outcomes.ingest.pseudonym import Pseudonymiser
from outcomes.operations.status import Status, WarehouseStatus, collect_status, render_status
from outcomes.quality.config import freshness_defaults, load_gate_config
from outcomes.settings import Settings, load_settings
from outcomes.warehouse.connection import Warehouse

UTC = dt.UTC
NOW = dt.datetime(2030, 1, 12, 12, 0, tzinfo=UTC)


def last(delivery_id: str, status: str = "loaded", extracted_at: dt.datetime | None = None) -> LastDelivery:
    moment = extracted_at or extract_time(delivery_id, None)
    assert moment is not None
    return LastDelivery(delivery_id, status, moment)


# -- the decision -----------------------------------------------------------------------------------


def test_a_delivery_within_the_interval_is_on_time() -> None:
    verdict = assess("registry", last("20300111T0200Z"), 2, NOW)
    assert (verdict.late, verdict.age_days) == (False, 1.4)
    assert "is on time" in verdict.message()


def test_a_delivery_older_than_the_interval_is_late_and_the_message_says_by_how_much() -> None:
    verdict = assess("welfare", last("20300101T0300Z"), 8, NOW)
    assert verdict.late and verdict.age_days == 11.4
    assert verdict.message() == (
        "source welfare is late: its last delivery 20300101T0300Z (loaded) is 11.4 days old "
        "(expected every 8 days)"
    )
    assert verdict.summary() == {"age_days": 11.4, "interval_days": 8, "late": True}


def test_exactly_the_interval_is_not_late_a_minute_more_is() -> None:
    extracted = NOW - dt.timedelta(days=2)
    assert not assess("trial", last("x", extracted_at=extracted), 2, NOW).late
    assert assess("trial", last("x", extracted_at=extracted - dt.timedelta(minutes=1)), 2, NOW).late


def test_a_source_that_never_delivered_is_late_once_the_others_have_delivered_for_its_interval() -> None:
    verdict = assess("employment", None, 2, NOW, receiving_since=NOW - dt.timedelta(days=3))
    assert verdict.late and verdict.age_days is None and verdict.last is None
    assert verdict.message() == "source employment is late: no delivery yet (expected every 2 days)"
    early = assess("employment", None, 2, NOW, receiving_since=NOW - dt.timedelta(days=1))
    assert not early.late
    assert (
        early.message() == "source employment has not delivered yet: no delivery yet (expected every 2 days)"
    )


def test_a_warehouse_that_received_nothing_yet_has_no_late_source() -> None:
    intervals = dict.fromkeys(source_names(), 2.0)
    assert not any(v.late for v in assess_all({}, NOW, intervals))


def test_a_delivery_stamped_in_the_future_is_age_zero() -> None:
    verdict = assess("trial", last("20300113T0100Z"), 2, NOW)
    assert (verdict.late, verdict.age_days) == (False, 0.0)


def test_the_extract_time_comes_from_the_manifest_then_the_delivery_id_then_the_receipt() -> None:
    manifest = dt.datetime(2030, 1, 10, 2, 0, tzinfo=UTC)
    received = dt.datetime(2030, 1, 11, 9, 30, tzinfo=UTC)
    assert extract_time("20300111T0200Z", manifest, received) == manifest
    assert extract_time("20300111T0200Z-2", None, received) == dt.datetime(2030, 1, 11, 2, 0, tzinfo=UTC)
    assert extract_time("not-a-delivery-id", None, received) == received
    assert extract_time("20301311T0200Z", None, None) is None  # month 13, nothing else known
    naive = dt.datetime(2030, 1, 10, 2, 0)
    assert extract_time("x", naive) == manifest


def test_the_newest_delivery_per_source_counts_whatever_its_status() -> None:
    rows = [
        {"source": "registry", "delivery_id": "20300101T0200Z", "status": "loaded", "extracted_at": None},
        {
            "source": "registry",
            "delivery_id": "20300111T0200Z",
            "status": "quarantined",
            "extracted_at": None,
        },
        {"source": "registry", "delivery_id": "20300105T0200Z", "status": "released", "extracted_at": None},
        {"source": "welfare", "delivery_id": "20300108T0300Z", "status": "duplicate", "extracted_at": None},
        {"source": "welfare", "delivery_id": "20300101T0300Z", "status": "loaded", "extracted_at": None},
    ]
    found = newest(rows)
    assert (found["registry"].delivery_id, found["registry"].status) == ("20300111T0200Z", "quarantined")
    assert (found["welfare"].delivery_id, found["welfare"].status) == ("20300108T0300Z", "duplicate")
    assert set(found) == {"registry", "welfare"}


def test_every_source_is_assessed_with_the_gates_own_intervals(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OUTCOMES_FRESHNESS_WELFARE_DAYS", "14")
    verdicts = {v.source: v for v in assess_all({"welfare": last("20300101T0300Z")}, NOW)}
    assert list(verdicts) == list(source_names())
    assert verdicts["welfare"].interval_days == load_gate_config().freshness_days["welfare"] == 14
    assert not verdicts["welfare"].late  # 11.4 days: late at the default 8, not at 14
    assert verdicts["trial"].interval_days == freshness_defaults()["trial"] and verdicts["trial"].late


# -- the warehouse ------------------------------------------------------------------------------------


@pytest.fixture
def scratch(warehouse: Warehouse) -> Iterator[Warehouse]:
    """A migrated database of the test's own on the session's server (a ledger nobody else writes)."""
    with scratch_database(warehouse, f"{warehouse.database}_fresh_{secrets.token_hex(3)}") as scratch:
        yield scratch


@pytest.fixture
def own_alerts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Alerts go to this test's own OUTCOMES_HOME (the warehouse is passed in explicitly)."""
    home = tmp_path / "home"
    monkeypatch.setenv("OUTCOMES_HOME", str(home))
    monkeypatch.delenv("OUTCOMES_ALERT_WEBHOOK", raising=False)
    return load_settings().alerts_log


@pytest.fixture
def delivered(scratch: Warehouse, tmp_path: Path) -> Warehouse:
    """Real deliveries, applied by the real loader, as of :data:`NOW`:

    - trial: enrolment 11 h before now;
    - registry: a good delivery 11 days ago and a quarantined one (every fnr broken) 1.4 days ago;
    - welfare: one delivery 11.4 days ago, and the same bytes again under a new id 1.4 days ago
      (a duplicate, without an extract time of its own);
    - employment: nothing.
    """
    landing = tmp_path / "landing"
    person = 981_001
    write_delivery(landing, "trial", "20300112T0100Z", {"enrolment.csv": [enrolment_row("FR-001", person)]})
    write_delivery(landing, "registry", "20300101T0200Z", {"proms.csv": prom_rows("FRESH1", person)})
    bad = fnr(981_002)
    broken = [{**row, "fnr": bad[:-1] + str((int(bad[-1]) + 1) % 10)} for row in prom_rows("FRESH2", 981_002)]
    write_delivery(landing, "registry", "20300111T0200Z", {"proms.csv": broken})
    spells = {"benefit_spells.csv": [spell_row("FRESH-S1", person)]}
    write_delivery(landing, "welfare", "20300101T0300Z", spells)
    write_delivery(landing, "welfare", "20300111T0200Z", spells)
    statuses = {}
    with psycopg.connect(scratch.url(), autocommit=True) as conn:
        conn.execute("set role outcomes_loader")
        for source in (s for s in source_names() if s != "employment"):  # employment: none yet
            for delivery in complete_deliveries(landing, source):
                outcome = apply_delivery(conn, delivery, pseudonymise=Pseudonymiser(b"f" * 64))
                statuses[(source, delivery.name)] = outcome.status
    assert statuses == {
        ("trial", "20300112T0100Z"): "loaded",
        ("registry", "20300101T0200Z"): "loaded",
        ("registry", "20300111T0200Z"): "quarantined",
        ("welfare", "20300101T0300Z"): "loaded",
        ("welfare", "20300111T0200Z"): "duplicate",
    }
    return scratch


def alerts(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_only_the_late_sources_alert_and_the_task_returns_counts(
    delivered: Warehouse, own_alerts: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from outcomes.ingest.freshness import check_sources

    monkeypatch.setenv("OUTCOMES_FRESHNESS_WELFARE_DAYS", "1")  # the duplicate of 1.4 days ago is late now
    # employment never delivered, while the others have for 1.4 days: late after 1
    monkeypatch.setenv("OUTCOMES_FRESHNESS_EMPLOYMENT_DAYS", "1")
    summary = check_sources(delivered, NOW)
    assert summary == {
        "late": 2,
        "sources": {
            "trial": {"age_days": 0.5, "interval_days": 2, "late": False},
            "registry": {"age_days": 1.4, "interval_days": 2, "late": False},  # quarantined: delivered
            "welfare": {"age_days": 1.4, "interval_days": 1, "late": True},
            "employment": {"age_days": None, "interval_days": 1, "late": True},
        },
    }
    sent = alerts(own_alerts)
    assert [(a["kind"], a["details"]["source"]) for a in sent] == [
        ("late_delivery", "welfare"),
        ("late_delivery", "employment"),
    ]
    welfare, employment = (a["details"] for a in sent)
    assert sent[0]["summary"] == (
        "source welfare is late: its last delivery 20300111T0200Z (duplicate) is 1.4 days old "
        "(expected every 1 days)"
    )
    assert welfare["delivery_id"] == "20300111T0200Z" and welfare["age_days"] == 1.4
    assert welfare["interval_days"] == 1
    assert "A late source" in welfare["hint"] and "outcomes deliveries --source welfare" in welfare["hint"]
    assert "no delivery yet" in str(sent[1]["summary"]) and employment["delivery_id"] is None
    assert fnr(981_001) not in own_alerts.read_text() and fnr(981_002) not in own_alerts.read_text()


def test_the_task_body_reads_the_real_clock_and_returns_counts(
    delivered: Warehouse, own_alerts: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from outcomes.warehouse.tasks import check_sources

    for source in source_names():  # whatever today's date is
        monkeypatch.setenv(f"OUTCOMES_FRESHNESS_{source.upper()}_DAYS", "100000")
    summary = check_sources(delivered)  # at the real now: the 2030 deliveries are not late
    assert summary["late"] == 0 and set(summary["sources"]) == set(source_names())
    assert summary["sources"]["employment"] == {"age_days": None, "interval_days": 100000, "late": False}
    assert alerts(own_alerts) == []


def test_status_marks_the_late_sources(delivered: Warehouse, settings: Settings, tmp_path: Path) -> None:
    own = dataclasses.replace(settings, home=tmp_path)
    status = Status(
        settings=own,
        warehouse=WarehouseStatus(kind="embedded", location=str(own.pgdata), running=True),
        landing=[],
        freshness=source_freshness(delivered, NOW),
    )
    console = Console(record=True, width=160)
    render_status(console, status)
    text = console.export_text()
    rows = {line.split()[1]: line for line in text.splitlines() if line.startswith("│ ")}
    assert "on time" in rows["trial"] and "20300112T0100Z (loaded)" in rows["trial"]
    assert "20300111T0200Z (quarantined)" in rows["registry"] and "on time" in rows["registry"]
    assert "20300111T0200Z (duplicate)" in rows["welfare"] and "1.4" in rows["welfare"]
    assert "on time" in rows["welfare"]  # the duplicate delivered 1.4 days ago: within 8
    # employment never delivered, but the others have only for 1.4 days: not late yet (after 2)
    assert "no delivery yet" in rows["employment"] and "LATE" not in rows["employment"]


def test_collect_status_reads_the_verdicts_of_the_running_warehouse(
    warehouse: Warehouse, settings: Settings
) -> None:
    status = collect_status(settings)
    assert [f.source for f in status.freshness] == list(source_names())
    assert status.freshness_error is None
