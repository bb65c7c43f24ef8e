"""The gate's thresholds, from the environment (``OUTCOMES_GATE_*``, ``OUTCOMES_FRESHNESS_*``).

Cheap to import (standard library only). Every bound has a default sized for the trials this
warehouse serves; a deployment tunes them without touching the suites (README, "The quality gate").
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields

from outcomes.contracts.registry import sources

SEVERITIES = ("error", "warn")


def _number(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if not raw:
        return default
    try:
        return float(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r}: expected a number") from None


def _severity(env: Mapping[str, str], name: str, default: str) -> str:
    value = (env.get(name) or default).lower()
    if value not in SEVERITIES:
        raise ValueError(f"{name}={value!r}: use one of {', '.join(SEVERITIES)}")
    return value


def freshness_defaults() -> dict[str, float]:
    """Each source's freshness interval in days, as its contract declares it (``sources.yaml``)."""
    return {spec.name: spec.freshness_days for spec in sources()}


@dataclass(frozen=True)
class GateConfig:
    """Bounds of the drift, plausibility, completeness and freshness expectations."""

    #: A mart's row count may change by at most this share (%) from the published build.
    max_row_change_pct: float = 25.0
    #: An ITT rate (study, arm, horizon) may move at most this many percentage points.
    max_itt_rate_change_pp: float = 10.0
    #: A complete-case rate may move at most this many points, where both builds know >= min_known.
    max_complete_case_rate_change_pp: float = 15.0
    min_known_for_rate_drift: int = 20
    #: Checkpoints whose status disagrees with the job rows on their date (%, warn).
    max_checkpoint_disagreement_pct: float = 10.0
    #: Participant-months with a full-time job (>= this many hours) during 100 % uføretrygd (warn).
    full_time_hours: float = 37.5
    max_full_time_on_full_disability: int = 0
    #: Share (%) of participants with a baseline questionnaire, and of those due at each follow-up.
    min_baseline_questionnaire_pct: float = 80.0
    min_followup_questionnaire_pct: float = 50.0
    min_employment_checkpoint_pct: float = 70.0
    #: How often each source is expected to deliver (days): the contract's ``freshness_days``.
    freshness_days: dict[str, float] = field(default_factory=lambda: freshness_defaults())
    freshness_severity: str = "warn"


def load_gate_config(env: Mapping[str, str] | None = None) -> GateConfig:
    """The gate's bounds: defaults overridden by ``OUTCOMES_GATE_<BOUND>`` and
    ``OUTCOMES_FRESHNESS_<SOURCE>_DAYS`` / ``OUTCOMES_FRESHNESS_SEVERITY``."""
    env = os.environ if env is None else env
    base = GateConfig()
    values: dict[str, object] = {}
    for name in (f.name for f in fields(GateConfig)):
        default = getattr(base, name)
        if not isinstance(default, int | float):
            continue  # freshness, below
        number = _number(env, f"OUTCOMES_GATE_{name.upper()}", default)
        values[name] = int(number) if isinstance(default, int) else number
    values["freshness_days"] = {
        source: _number(env, f"OUTCOMES_FRESHNESS_{source.upper()}_DAYS", days)
        for source, days in freshness_defaults().items()
    }
    values["freshness_severity"] = _severity(env, "OUTCOMES_FRESHNESS_SEVERITY", base.freshness_severity)
    return GateConfig(**values)  # type: ignore[arg-type]
