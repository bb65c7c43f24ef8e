"""The email channel of the alerts, against a real SMTP server on loopback: a message to every
recipient, a broken mail server that hides nothing and leaks no password, and a late source in a
real DAG run that arrives as an email.

``outcomes.operations.alerts`` imports ``airflow.sdk``: the ``alerts`` fixture imports it only once the
``warehouse`` fixture has put Airflow's settings in the environment (conftest.py).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from support.ports import free_port
from support.receivers import PASSWORD, Mailbox, smtp_receiver

from outcomes.settings import Settings, load_settings
from outcomes.warehouse.connection import Warehouse


@pytest.fixture
def smtp() -> Iterator[Mailbox]:
    """A real SMTP server on 127.0.0.1, on a free port, in a thread."""
    with smtp_receiver() as mailbox:
        yield mailbox


@pytest.fixture
def alerts(warehouse: Warehouse) -> ModuleType:
    from outcomes.operations import alerts

    return alerts


def alert_lines(settings: Settings) -> list[dict[str, object]]:
    if not settings.alerts_log.exists():
        return []
    return [json.loads(line) for line in settings.alerts_log.read_text().splitlines()]


def email_env(monkeypatch: pytest.MonkeyPatch, port: int, recipients: str = "ops@example.org") -> None:
    monkeypatch.setenv("OUTCOMES_ALERT_EMAIL_TO", recipients)
    monkeypatch.setenv("OUTCOMES_ALERT_SMTP_URL", f"smtp://alerts@example.org:{PASSWORD}@127.0.0.1:{port}")
    monkeypatch.setenv("OUTCOMES_ALERT_EMAIL_FROM", "outcomes@trial.example.org")
    monkeypatch.delenv("OUTCOMES_ALERT_WEBHOOK", raising=False)


def task_failed(alerts: ModuleType) -> Any:
    return alerts.Alert(
        "task_failed",
        "ingest_registry.apply_deliveries failed: the warehouse refused the connection\nsecond line",
        {"dag_id": "ingest_registry", "task_id": "apply_deliveries", "run_id": "manual__1", "error": None},
    )


def test_an_alert_is_emailed_to_every_recipient_and_still_logged(
    alerts: ModuleType, smtp: Mailbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = load_settings()
    email_env(monkeypatch, smtp.port, " ops@example.org, trial-manager@example.org ,")
    before = len(alert_lines(settings))
    alerts.send(task_failed(alerts))
    assert [a["kind"] for a in alert_lines(settings)[before:]] == ["task_failed"]
    assert smtp.logins == ["alerts@example.org"]
    assert len(smtp.messages) == 1  # one message, addressed to everyone
    received = smtp.messages[0]
    assert received.sender == "outcomes@trial.example.org"
    assert received.recipients == ["ops@example.org", "trial-manager@example.org"]
    message = received.message
    assert message["Subject"] == (
        "[outcomes] task_failed: ingest_registry.apply_deliveries failed: "
        "the warehouse refused the connection"
    )
    assert message["To"] == "ops@example.org, trial-manager@example.org"
    body = message.get_content()
    assert "dag_id:" in body and "ingest_registry" in body
    assert "task_id:" in body and "apply_deliveries" in body
    assert "error:" not in body.split("The alert as JSON:")[0]  # empty fields are left out
    assert json.loads(body.split("The alert as JSON:")[1])["details"]["run_id"] == "manual__1"


def test_a_long_summary_is_cut_in_the_subject_only(
    alerts: ModuleType, smtp: Mailbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    email_env(monkeypatch, smtp.port)
    summary = "build_outcomes: the publish was blocked; " + "expect_column_values_to_be_between " * 10
    alerts.send(alerts.Alert("gate_blocked", summary, {"dag_id": "build_outcomes"}))
    subject = smtp.messages[0].message["Subject"]
    assert subject.startswith("[outcomes] gate_blocked: build_outcomes: the publish was blocked;")
    assert len(subject) <= len("[outcomes] gate_blocked: ") + 120 and subject.endswith("...")
    assert summary.strip() in smtp.messages[0].message.get_content()


def test_a_mail_server_that_is_down_hides_no_alert_and_leaks_no_password(
    alerts: ModuleType, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    settings = load_settings()
    email_env(monkeypatch, free_port())  # nothing listens there
    before = len(alert_lines(settings))
    with caplog.at_level(logging.ERROR, logger="outcomes.operations.alerts"):
        alerts.send(task_failed(alerts))  # does not raise
    assert [a["kind"] for a in alert_lines(settings)[before:]] == ["task_failed"]
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "could not email the alert via smtp://127.0.0.1:" in errors[0]
    assert "OUTCOMES_ALERT_SMTP_URL" in errors[0]
    assert PASSWORD not in caplog.text and "alerts@example.org" not in caplog.text


def test_a_wrong_password_is_logged_without_it(
    alerts: ModuleType, smtp: Mailbox, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    email_env(monkeypatch, smtp.port)
    wrong = f"smtp://alerts:not-{PASSWORD}@127.0.0.1:{smtp.port}"  # pragma: allowlist secret
    monkeypatch.setenv("OUTCOMES_ALERT_SMTP_URL", wrong)
    with caplog.at_level(logging.ERROR, logger="outcomes.operations.alerts"):
        alerts.send(task_failed(alerts))
    assert smtp.messages == []
    assert "535" in caplog.text and PASSWORD not in caplog.text


# the random password is filled in inside the test: test ids must be the same in every
# pytest-xdist worker (each imports this module and draws its own PASSWORD)
@pytest.mark.parametrize(
    "url",
    [
        "http://alerts:{password}@smtp.example.org",
        "alerts:{password}@smtp.example.org",
        "smtp://alerts:{password}@smtp.example.org:port",
        "smtps://alerts:{password}@smtp.example.org?starttls=true",
    ],
    ids=["http-scheme", "no-scheme", "bad-port", "starttls-with-smtps"],
)
def test_a_bad_smtp_url_is_a_clear_error_naming_the_variable(
    url: str, alerts: ModuleType, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    settings = load_settings()
    email_env(monkeypatch, 25)
    monkeypatch.setenv("OUTCOMES_ALERT_SMTP_URL", url.format(password=PASSWORD))
    before = len(alert_lines(settings))
    with caplog.at_level(logging.ERROR, logger="outcomes.operations.alerts"):
        alerts.send(task_failed(alerts))
    assert len(alert_lines(settings)) == before + 1
    assert "OUTCOMES_ALERT_SMTP_URL" in caplog.text and "not emailed" in caplog.text
    assert PASSWORD not in caplog.text


def test_smtp_urls(alerts: ModuleType) -> None:
    server = alerts.smtp_server("smtp://alerts@example.org@smtp.example.org:587?starttls=true")
    assert (server.host, server.port, server.starttls) == ("smtp.example.org", 587, True)
    assert (server.user, server.password) == ("alerts@example.org", None)
    assert alerts.smtp_server("smtp://relay").port == 25
    secure = alerts.smtp_server("smtps://a%40b.org:p%2Fw%3Fd@relay")
    assert (secure.port, secure.implicit_tls, secure.user, secure.password) == (465, True, "a@b.org", "p/w?d")
    assert "p/w?d" not in f"{secure} {secure!r}"


@pytest.mark.slow
def test_a_late_source_in_a_real_dag_run_arrives_by_email(
    tmp_path: Path, airflow_ready: Settings, smtp: Mailbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    from outcomes.runners import inprocess

    email_env(monkeypatch, smtp.port)
    monkeypatch.setenv("OUTCOMES_LANDING", str(tmp_path))  # nothing will arrive
    monkeypatch.setenv("OUTCOMES_DEADLINE_WELFARE_HOURS", str(2 / 3600))  # two seconds
    monkeypatch.setenv("OUTCOMES_POKE_SECONDS", "0.5")
    outcome = inprocess.run_dag(load_settings(), "ingest_welfare", conf={"wait": True})
    assert outcome.task_states["wait_for_delivery"] == "failed"
    assert len(smtp.messages) == 1
    message = smtp.messages[0].message
    assert message["Subject"].startswith("[outcomes] late_delivery: source welfare is late")
    body = message.get_content()
    assert "ingest_welfare" in body and "wait_for_delivery" in body and "source:" in body
