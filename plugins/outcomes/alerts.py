"""Alerts: one way out for every failure and every quarantined or late delivery.

Every alert is appended as one JSON line to ``$OUTCOMES_HOME/alerts.log`` (what ``outcomes status``
shows, and what the demo relies on) and, when ``OUTCOMES_ALERT_WEBHOOK`` is set, POSTed there as
JSON (Slack/Teams-style ``{"text": ...}`` plus the structured fields). Alerts carry DAG, task,
source, delivery and counts: never rows, never an fnr.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import urllib.request
from dataclasses import asdict, dataclass, field
from typing import Any

from airflow.sdk import BaseNotifier

from outcomes.settings import load_settings

log = logging.getLogger(__name__)
WEBHOOK_ENV = "OUTCOMES_ALERT_WEBHOOK"


@dataclass(frozen=True)
class Alert:
    kind: str  # task_failed | late_delivery | quarantined_delivery | gate_blocked | ...
    summary: str
    details: dict[str, Any] = field(default_factory=dict)
    at: str = field(default_factory=lambda: dt.datetime.now(dt.UTC).isoformat(timespec="seconds"))


def send(alert: Alert) -> None:
    """Record ``alert`` in the alerts log and post it to the webhook if one is configured."""
    settings = load_settings()
    line = json.dumps(asdict(alert), default=str, sort_keys=True)
    settings.home.mkdir(parents=True, exist_ok=True)
    with settings.alerts_log.open("a", encoding="utf-8") as handle:
        handle.write(line + "\n")
    log.warning("ALERT %s: %s", alert.kind, alert.summary)
    url = os.environ.get(WEBHOOK_ENV)
    if url and not url.startswith(("https://", "http://")):
        log.error("%s must be an http(s) URL; the alert was only logged", WEBHOOK_ENV)
    elif url:
        body = json.dumps({"text": f"[outcomes] {alert.summary}", **asdict(alert)}, default=str).encode()
        request = urllib.request.Request(  # noqa: S310 (http(s) only, checked above)
            url, data=body, headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 (the deployment's URL)
                response.read()
        except OSError as error:  # an alert channel being down must not hide the alert
            log.error("could not post the alert to the webhook: %s", error)


class OutcomesNotifier(BaseNotifier):
    """Airflow notifier for DAG and task failures; a timed-out delivery sensor is a late source."""

    def notify(self, context: Any) -> None:
        ti = context.get("task_instance") or context.get("ti")
        dag_id = getattr(ti, "dag_id", None) or getattr(context.get("dag"), "dag_id", "?")
        task_id = getattr(ti, "task_id", None)
        run_id = getattr(ti, "run_id", None) or getattr(context.get("dag_run"), "run_id", None)
        error = context.get("exception")
        details = {
            "dag_id": dag_id,
            "task_id": task_id,
            "run_id": run_id,
            "error": str(error) if error else None,
        }
        if task_id == "wait_for_delivery":
            source = str(dag_id).removeprefix("ingest_")
            send(
                Alert(
                    "late_delivery",
                    f"source {source} is late: no complete delivery before the deadline",
                    {**details, "source": source},
                )
            )
            return
        if task_id == "quality_gate":
            # the exception lists every failed expectation with its observed value
            send(Alert("gate_blocked", f"{dag_id}: the publish was blocked; {error}", details))
            return
        where = f"{dag_id}.{task_id}" if task_id else str(dag_id)
        send(Alert("task_failed", f"{where} failed: {error or 'see the task log'}", details))


def quarantined(source: str, outcomes: list[dict[str, Any]]) -> None:
    """Alert on every quarantined delivery among ``outcomes`` (the ingest task's summaries)."""
    for outcome in outcomes:
        if outcome.get("status") == "quarantined":
            send(
                Alert(
                    "quarantined_delivery",
                    f"delivery {source}/{outcome['delivery_id']} was quarantined: {outcome['message']}",
                    {
                        "source": source,
                        "delivery_id": outcome["delivery_id"],
                        "rows_received": outcome.get("rows_received"),
                        "hint": f"outcomes deliveries show {source}/{outcome['delivery_id']}",
                    },
                )
            )
