"""Waiting for complete deliveries: a deferrable sensor and its trigger.

A delivery is complete when its ``_manifest.json`` exists (the source writes it last). The sensor
checks once; if nothing new is there it defers to :class:`DeliveryTrigger`, which polls in the
triggerer (no worker slot held) until a complete, not yet applied delivery appears or the
source's deadline passes, when the task fails and the failure alert goes out. With ``wait=False``
(``outcomes run``) it does not wait: nothing new means the rest of the run is skipped.

A landing zone that cannot be read (its SFTP or S3 server down) is not "nothing new": the sensor
sends a ``landing_unreachable`` alert, once each time it goes down, and keeps waiting; when the
server is back before the deadline, the delivery is applied as if nothing had happened, and if it
is not, the late-delivery alert says the landing zone could not be read. With ``wait=False`` the
task fails with that message.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.sdk import BaseSensorOperator
from airflow.sdk.exceptions import AirflowSensorTimeout, AirflowSkipException
from airflow.triggers.base import BaseTrigger, TriggerEvent

LANDING_UNREACHABLE = "landing_unreachable"


def _pending(source: str) -> list[str]:
    from outcomes.ingest.service import pending_deliveries
    from outcomes.settings import load_settings

    return pending_deliveries(load_settings(), source)


def _alert_unreachable(source: str, error: Exception) -> None:
    from outcomes.operations.alerts import Alert, send

    send(
        Alert(
            LANDING_UNREACHABLE,
            f"{error}; the sensor of {source} keeps waiting for it until its deadline",
            {"source": source, "error": str(error)},
        )
    )


class DeliveryTrigger(BaseTrigger):
    """Fires when ``source`` has a complete delivery that is not yet in the ledger, or, with
    ``timed_out``, when the deadline passes first. The trigger keeps the deadline itself, so it
    holds in every way the DAG runs (a triggerer, or ``dag.test()``, which runs triggers inline)."""

    def __init__(
        self, source: str, deadline_at: str, poke_interval: float = 60.0, unreachable: str | None = None
    ) -> None:
        super().__init__()
        self.source = source
        self.deadline_at = deadline_at
        self.poke_interval = poke_interval
        self.unreachable = unreachable  # the landing zone's error, when the sensor already alerted it

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            "outcomes.ingest.sensors.DeliveryTrigger",
            {
                "source": self.source,
                "deadline_at": self.deadline_at,
                "poke_interval": self.poke_interval,
                "unreachable": self.unreachable,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        from outcomes.ingest.landing import LandingUnreachable

        deadline = datetime.fromisoformat(self.deadline_at)
        unreachable = self.unreachable
        while True:
            try:
                found = await asyncio.to_thread(_pending, self.source)
            except LandingUnreachable as error:
                found = []
                if unreachable is None:  # it went down: alert once, until it is back
                    await asyncio.to_thread(_alert_unreachable, self.source, error)
                unreachable = str(error)
                self.log.warning("%s; waiting", error)
            else:
                if unreachable is not None:
                    self.log.info("the landing zone of %s can be read again", self.source)
                unreachable = None
            if found:
                yield TriggerEvent({"source": self.source, "deliveries": found})
                return
            left = (deadline - datetime.now(UTC)).total_seconds()
            if left <= 0:
                yield TriggerEvent({"source": self.source, "timed_out": True, "unreachable": unreachable})
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
        from outcomes.ingest.landing import LandingUnreachable

        unreachable = None
        try:
            found = _pending(self.source)
        except LandingUnreachable as error:
            if not self._wait():
                raise
            self.log.warning("%s; waiting", error)
            _alert_unreachable(self.source, error)
            found, unreachable = [], str(error)
        if found:
            self.log.info("%d complete deliveries of %s waiting: %s", len(found), self.source, found)
            return found
        if not self._wait():
            raise AirflowSkipException(f"no new complete delivery of {self.source}")
        self.log.info("waiting up to %s for a complete delivery of %s", self.deadline, self.source)
        deadline_at = (datetime.now(UTC) + self.deadline).isoformat()
        self.defer(
            trigger=DeliveryTrigger(self.source, deadline_at, self.poke_interval, unreachable),
            method_name="execute_complete",
            timeout=self.deadline + timedelta(minutes=5),  # the trigger's own deadline comes first
        )

    def execute_complete(self, context: Any, event: dict[str, Any] | None = None) -> list[str]:
        if (event or {}).get("timed_out"):
            why = (event or {}).get("unreachable")
            raise AirflowSensorTimeout(
                f"no complete delivery of {self.source} within {self.deadline}: "
                + (f"the landing zone could not be read ({why})" if why else "the source is late")
            )
        deliveries = list((event or {}).get("deliveries") or [])
        self.log.info("%d complete deliveries of %s arrived: %s", len(deliveries), self.source, deliveries)
        return deliveries

    def poke(self, context: Any) -> bool:  # the sensor always defers; poke is for completeness
        return bool(_pending(self.source))
