"""Fixtures of the ingest tests: a landing root per test, the ingest DAGs on it, the warehouse.

The helpers themselves live in ``tests/support/ingest_kit.py``; these fixtures
bind them to the session's warehouse and Airflow.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from support.ingest_kit import KEY, connect, run_ingest

from outcomes.runners.inprocess import DagRunOutcome
from outcomes.settings import Settings
from outcomes.warehouse.connection import Warehouse


@pytest.fixture
def pseudonym_key(monkeypatch: pytest.MonkeyPatch) -> str:
    """The tests' fixed pseudonymisation key, in the environment the ingest tasks read."""
    monkeypatch.setenv("OUTCOMES_PSEUDONYM_KEY", KEY)
    monkeypatch.delenv("OUTCOMES_PSEUDONYM_KEY_FILE", raising=False)
    return KEY


@pytest.fixture
def loader(settings: Settings, warehouse: Warehouse) -> Iterator[psycopg.Connection]:
    """A connection as the loader role, for applying deliveries directly (no DAG run)."""
    from outcomes.ingest.service import loader_connection

    with loader_connection(settings) as conn:
        yield conn


@pytest.fixture
def landing(tmp_path: Path) -> Path:
    """This test's own landing root (deliveries are applied once per id, warehouse-wide)."""
    root = tmp_path / "landing"
    root.mkdir()
    return root


@pytest.fixture
def db(warehouse: Warehouse) -> Iterator[psycopg.Connection]:
    """An admin connection to the session's warehouse (autocommit), to look at the results."""
    with connect(warehouse) as conn:
        yield conn


@pytest.fixture
def ingest(airflow_ready: Settings, landing: Path) -> Callable[..., DagRunOutcome]:
    """``ingest(source, **env)``: one run of ``ingest_<source>`` on this test's landing root."""

    def run(source: str, **env: str) -> DagRunOutcome:
        return run_ingest(airflow_ready, source, landing, **env)

    return run
