"""The gate's thresholds, from the environment (``OUTCOMES_GATE_*``, ``OUTCOMES_FRESHNESS_*``).

Cheap to import (standard library only). Every bound is a declared setting (outcomes.settings) with
a default sized for the trials this warehouse serves; a deployment tunes them without touching the
suites (docs/quality-gate.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields

from outcomes.contracts.registry import source_names, sources
from outcomes.settings import declared, setting

#: The severities a freshness check can have (``OUTCOMES_FRESHNESS_SEVERITY``).
SEVERITIES = declared("OUTCOMES_FRESHNESS_SEVERITY").choices


def freshness_defaults() -> dict[str, float]:
    """Each source's freshness interval in days, as its contract declares it (``sources.yaml``)."""
    return {spec.name: spec.freshness_days for spec in sources()}


@dataclass(frozen=True)
class GateConfig:
    """Bounds of the drift, plausibility, completeness and freshness expectations; build with
    :func:`load_gate_config`. Each bound is the setting ``OUTCOMES_GATE_<BOUND>``, whose doc and
    default are declared in :mod:`outcomes.settings` (and the settings table of docs/operations.md)."""

    max_row_change_pct: float
    max_itt_rate_change_pp: float
    max_complete_case_rate_change_pp: float
    min_known_for_rate_drift: int
    max_checkpoint_disagreement_pct: float
    full_time_hours: float
    max_full_time_on_full_disability: int
    min_baseline_questionnaire_pct: float
    min_followup_questionnaire_pct: float
    min_employment_checkpoint_pct: float
    #: How often each source is expected to deliver (days): ``OUTCOMES_FRESHNESS_<SOURCE>_DAYS``.
    freshness_days: dict[str, float]
    freshness_severity: str


def load_gate_config(env: Mapping[str, str] | None = None) -> GateConfig:
    """The gate's bounds: ``OUTCOMES_GATE_<BOUND>``, ``OUTCOMES_FRESHNESS_<SOURCE>_DAYS`` and
    ``OUTCOMES_FRESHNESS_SEVERITY``, each read by its declared setting (defaults there)."""
    values: dict[str, object] = {
        f.name: setting(f"OUTCOMES_GATE_{f.name.upper()}", env)
        for f in fields(GateConfig)
        if f.name not in ("freshness_days", "freshness_severity")
    }
    values["freshness_days"] = {
        source: setting(f"OUTCOMES_FRESHNESS_{source.upper()}_DAYS", env) for source in source_names()
    }
    values["freshness_severity"] = setting("OUTCOMES_FRESHNESS_SEVERITY", env)
    return GateConfig(**values)  # type: ignore[arg-type]
