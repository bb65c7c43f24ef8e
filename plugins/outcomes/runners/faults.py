"""Fault points: where the fault tests kill a run (docs/reliability.md, "Faults").

``OUTCOMES_FAULT=<point>`` makes the process that reaches ``point(<point>)`` kill itself with
SIGKILL there, as a power cut or the kernel's OOM killer would: no ``finally``, no rollback on
the client's side, no flush. Unset (always, but in those tests) a point costs one lookup in the
environment. The points sit inside the short critical sections an external kill would rarely hit
(a publish's transaction, a dashboard's rename, the gate's record, between two deliveries); the
tests kill the long stages (dbt, the history snapshot) from outside.
"""

from __future__ import annotations

import os
import signal

VARIABLE = "OUTCOMES_FAULT"

#: Every point, where it is.
POINTS = {
    "ingest.between_deliveries": "a delivery is committed, the next of the source not begun",
    "gate.before_record": "the gate ran and wrote its results and Data Docs, meta not yet written",
    "publish.before_commit": "the candidate renamed to marts, the publish recorded, not committed",
    "dashboard.before_rename": "a snapshot's page and sidecar written as temporary files, not renamed",
}


def armed() -> bool:
    """Whether a fault is asked for at all (the callers that must look before they reach it)."""
    return VARIABLE in os.environ


def point(name: str) -> None:
    """Die here (SIGKILL) when ``OUTCOMES_FAULT`` names this point."""
    if os.environ.get(VARIABLE) == name:
        if name not in POINTS:  # pragma: no cover - a typo in a caller
            raise ValueError(f"unknown fault point {name!r}")
        os.kill(os.getpid(), signal.SIGKILL)
