"""Dashboard tests render the shared published trial (tests/conftest.py, ``published_trial``)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from outcomes.settings import Settings


@pytest.fixture
def own_home(settings: Settings, tmp_path: Path) -> Settings:
    """The session's settings with an empty OUTCOMES_HOME of the test's own (its own snapshots)."""
    return dataclasses.replace(settings, home=tmp_path)
