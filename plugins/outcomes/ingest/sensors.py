"""Waiting for complete deliveries: a deferrable sensor and its trigger.

A delivery is complete when its ``_manifest.json`` exists (the source writes it last). The sensor
checks once; if nothing new is there it defers to :class:`DeliveryTrigger`, which polls in the
triggerer (no worker slot held) until a complete, not yet applied delivery appears or the
source's deadline passes, when the task fails and the failure alert goes out. With ``wait=False``
(``outcomes run``) it does not wait: nothing new means the rest of the run is skipped.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.sdk import BaseSensorOperator
from airflow.sdk.exceptions import AirflowSensorTimeout, AirflowSkipException
from airflow.triggers.base import BaseTrigger, TriggerEvent


def _pending(source: str) -> list[str]:
    from outcomes.ingest.service import pending_deliveries
    from outcomes.settings import load_settings

    return pending_deliveries(load_settings(), source)


class DeliveryTrigger(BaseTrigger):
    """Fires when ``source`` has a complete delivery that is not yet in the ledger, or, with
    ``timed_out``, when the deadline passes first. The trigger keeps the deadline itself, so it
    holds in every way the DAG runs (a triggerer, or ``dag.test()``, which runs triggers inline)."""

    def __init__(self, source: str, deadline_at: str, poke_interval: float = 60.0) -> None:
        super().__init__()
        self.source = source
        self.deadline_at = deadline_at
        self.poke_interval = poke_interval

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            "outcomes.ingest.sensors.DeliveryTrigger",
            {"source": self.source, "deadline_at": self.deadline_at, "poke_interval": self.poke_interval},
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        deadline = datetime.fromisoformat(self.deadline_at)
        while True:
            found = await asyncio.to_thread(_pending, self.source)
            if found:
                yield TriggerEvent({"source": self.source, "deliveries": found})
                return
            left = (deadline - datetime.now(UTC)).total_seconds()
            if left <= 0:
                yield TriggerEvent({"source": self.source, "timed_out": True})
                return
            await asyncio.sleep(min(self.poke_interval, left))


class DeliverySensor(BaseSensorOperator):
    """Succeeds with the delivery ids waiting to be applied for ``source``."""

    template_fields = ("wait",)

    def __init__(
        self,
        *,
        source: str,
        wait: bool | str = True,
        deadline: timedelta = timedelta(hours=4),
        poke_interval: float = 60.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(poke_interval=poke_interval, timeout=deadline.total_seconds(), **kwargs)
        self.source = source
        self.wait = wait
        self.deadline = deadline

    def _wait(self) -> bool:
        return str(self.wait).lower() not in {"false", "0", "no"}

    def execute(self, context: Any) -> list[str]:
        found = _pending(self.source)
        if found:
            self.log.info("%d complete deliveries of %s waiting: %s", len(found), self.source, found)
            return found
        if not self._wait():
            raise AirflowSkipException(f"no new complete delivery of {self.source}")
        self.log.info("waiting up to %s for a complete delivery of %s", self.deadline, self.source)
        deadline_at = (datetime.now(UTC) + self.deadline).isoformat()
        self.defer(
            trigger=DeliveryTrigger(self.source, deadline_at, self.poke_interval),
            method_name="execute_complete",
            timeout=self.deadline + timedelta(minutes=5),  # the trigger's own deadline comes first
        )

    def execute_complete(self, context: Any, event: dict[str, Any] | None = None) -> list[str]:
        if (event or {}).get("timed_out"):
            raise AirflowSensorTimeout(
                f"no complete delivery of {self.source} within {self.deadline}: the source is late"
            )
        deliveries = list((event or {}).get("deliveries") or [])
        self.log.info("%d complete deliveries of %s arrived: %s", len(deliveries), self.source, deliveries)
        return deliveries

    def poke(self, context: Any) -> bool:  # the sensor always defers; poke is for completeness
        return bool(_pending(self.source))
