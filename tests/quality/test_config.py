"""The gate's bounds from the environment: defaults, overrides, and a clear error for a bad value."""

from __future__ import annotations

import pytest

from outcomes.quality.config import freshness_defaults, load_gate_config


def test_defaults_when_nothing_is_set() -> None:
    config = load_gate_config({})
    assert config.max_row_change_pct == 25.0
    assert config.freshness_days == freshness_defaults()
    assert config.freshness_severity == "warn"


def test_every_bound_and_each_source_can_be_overridden() -> None:
    config = load_gate_config(
        {
            "OUTCOMES_GATE_MAX_ITT_RATE_CHANGE_PP": "5",
            "OUTCOMES_GATE_MIN_KNOWN_FOR_RATE_DRIFT": "30",
            "OUTCOMES_FRESHNESS_WELFARE_DAYS": "15",
            "OUTCOMES_FRESHNESS_SEVERITY": "ERROR",
        }
    )
    assert config.max_itt_rate_change_pp == 5.0
    assert config.min_known_for_rate_drift == 30 and isinstance(config.min_known_for_rate_drift, int)
    assert config.freshness_days["welfare"] == 15.0 and config.freshness_days["trial"] == 2
    assert config.freshness_severity == "error"


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("OUTCOMES_GATE_MAX_ROW_CHANGE_PCT", "ten", "expected a number"),
        ("OUTCOMES_FRESHNESS_SEVERITY", "fatal", "use one of error, warn"),
    ],
)
def test_a_bad_value_names_the_setting(name: str, value: str, message: str) -> None:
    with pytest.raises(ValueError) as error:
        load_gate_config({name: value})
    assert str(error.value) == f"{name}={value!r}: {message}"
