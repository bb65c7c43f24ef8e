"""The notifier every task of the project's DAGs fails through: a failure becomes an alert.

What kind of alert a failure is, is said where the task is declared, not guessed from its id: the
delivery sensors pass ``OutcomesNotifier(LATE_DELIVERY, source=...)`` (their timeout means the
source is late), the quality gate passes ``OutcomesNotifier(GATE_BLOCKED)`` (its failure lists
every failed expectation), and every other task gets the default, ``TASK_FAILED``, through
:func:`outcomes.orchestration.defaults.default_args`.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import BaseNotifier

from outcomes.operations.alerts import Alert, send
from outcomes.warehouse.connection import redact_key_values

TASK_FAILED = "task_failed"
LATE_DELIVERY = "late_delivery"
GATE_BLOCKED = "gate_blocked"
KINDS = (TASK_FAILED, LATE_DELIVERY, GATE_BLOCKED)


class OutcomesNotifier(BaseNotifier):
    """Airflow notifier for DAG and task failures: sends the alert of its ``kind``."""

    def __init__(self, kind: str = TASK_FAILED, *, source: str | None = None) -> None:
        super().__init__()
        if kind not in KINDS:
            raise ValueError(f"unknown alert kind {kind!r}: one of {', '.join(KINDS)}")
        if kind == LATE_DELIVERY and source is None:
            raise ValueError("a late-delivery notifier names its source")
        self.kind = kind
        self.source = source

    def notify(self, context: Any) -> None:
        ti = context.get("task_instance") or context.get("ti")
        dag_id = getattr(ti, "dag_id", None) or getattr(context.get("dag"), "dag_id", "?")
        task_id = getattr(ti, "task_id", None)
        run_id = getattr(ti, "run_id", None) or getattr(context.get("dag_run"), "run_id", None)
        error = redact_key_values(str(context.get("exception") or "")) or None
        details = {"dag_id": dag_id, "task_id": task_id, "run_id": run_id, "error": error}
        if self.kind == LATE_DELIVERY:
            summary = f"source {self.source} is late: no complete delivery before the deadline"
            send(Alert(LATE_DELIVERY, summary, {**details, "source": self.source}))
        elif self.kind == GATE_BLOCKED:
            # the exception lists every failed expectation with its observed value
            send(Alert(GATE_BLOCKED, f"{dag_id}: the publish was blocked; {error}", details))
        else:
            where = f"{dag_id}.{task_id}" if task_id else str(dag_id)
            send(Alert(TASK_FAILED, f"{where} failed: {error or 'see the task log'}", details))
