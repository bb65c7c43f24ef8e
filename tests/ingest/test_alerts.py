"""Alerts through real DAG runs: a late source and a quarantined delivery reach the alerts log
(and a webhook), without an fnr."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.deliveries import fnr, prom_rows, write_delivery
from support.receivers import webhook_receiver

from outcomes.runners import inprocess
from outcomes.settings import Settings, load_settings

pytestmark = pytest.mark.slow


def alerts(settings: Settings) -> list[dict[str, object]]:
    if not settings.alerts_log.exists():
        return []
    return [json.loads(line) for line in settings.alerts_log.read_text().splitlines()]


@pytest.fixture
def webhook() -> Iterator[tuple[str, list[dict[str, object]]]]:
    """A real HTTP endpoint on loopback that records what it receives."""
    with webhook_receiver() as endpoint:
        yield endpoint


def test_a_late_source_fails_its_sensor_and_alerts(
    tmp_path: Path, airflow_ready: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OUTCOMES_LANDING", str(tmp_path))  # nothing will arrive
    monkeypatch.setenv("OUTCOMES_DEADLINE_WELFARE_HOURS", str(2 / 3600))  # two seconds
    monkeypatch.setenv("OUTCOMES_POKE_SECONDS", "0.5")
    before = len(alerts(airflow_ready))
    outcome = inprocess.run_dag(load_settings(), "ingest_welfare", conf={"wait": True})
    assert outcome.state == "failed"
    assert outcome.task_states["wait_for_delivery"] == "failed"
    new = alerts(airflow_ready)[before:]
    assert [a["kind"] for a in new] == ["late_delivery"]
    assert "welfare is late" in str(new[0]["summary"])


def test_a_quarantined_delivery_alerts_with_a_hint_and_posts_to_the_webhook(
    tmp_path: Path,
    airflow_ready: Settings,
    monkeypatch: pytest.MonkeyPatch,
    webhook: tuple[str, list[dict[str, object]]],
) -> None:
    url, received = webhook
    monkeypatch.setenv("OUTCOMES_LANDING", str(tmp_path))
    monkeypatch.setenv("OUTCOMES_PSEUDONYM_KEY", "a" * 64)
    monkeypatch.setenv("OUTCOMES_ALERT_WEBHOOK", url)
    bad = fnr(970_001)
    rows = [{**row, "fnr": bad[:-1] + str((int(bad[-1]) + 1) % 10)} for row in prom_rows("ALRT1", 970_001)]
    write_delivery(tmp_path, "registry", "20250501T0200Z-51", {"proms.csv": rows})
    before = len(alerts(airflow_ready))
    outcome = inprocess.run_dag(load_settings(), "ingest_registry", conf={"wait": False})
    assert outcome.succeeded  # a quarantine is news, not a crash: the run goes on
    new = alerts(airflow_ready)[before:]
    assert [a["kind"] for a in new] == ["quarantined_delivery"]
    assert "outcomes deliveries show registry/20250501T0200Z-51" in json.dumps(new[0])
    assert len(received) == 1 and "quarantined" in str(received[0]["text"])
    assert bad not in json.dumps(new) and bad not in json.dumps(received)
