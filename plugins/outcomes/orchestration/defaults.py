"""The default arguments every task of the project's DAGs gets: owner, retries, the failure alert."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from outcomes.orchestration.notifier import OutcomesNotifier
from outcomes.settings import setting

#: Every task is retried this often before it fails (and alerts).
RETRIES = 2


def default_args() -> dict[str, Any]:
    """Retries (``OUTCOMES_RETRY_DELAY_SECONDS`` apart) and the failure alert of every task."""
    return {
        "owner": "outcomes",
        "retries": RETRIES,
        "retry_delay": timedelta(seconds=setting("OUTCOMES_RETRY_DELAY_SECONDS")),
        "on_failure_callback": OutcomesNotifier(),
    }
