"""The dbt unit tests (the `unit_tests:` of the model YAML files) run here, on a real warehouse.

They test the SQL against fixed inputs, not the night's data, so the nightly build leaves them out
(``DBT_EXCLUDE_RESOURCE_TYPES=unit_test`` in the build DAG's dbt environment: about 2 s of a
build at trial size, bench/README.md); this is where they run, in `make test` and CI.
"""

from __future__ import annotations

import json

import pytest
from support.builds import PUBLISHED_AS_OF

from outcomes.settings import Settings
from outcomes.transform.dbt import run_dbt
from outcomes.warehouse.connection import Warehouse

pytestmark = pytest.mark.slow


def test_every_dbt_unit_test_passes(settings: Settings, published_trial: Warehouse) -> None:
    manifest = json.loads(settings.dbt_manifest.read_text())
    expected = set(manifest["unit_tests"])
    assert expected, "the project declares no unit tests"
    # marts_schema=marts: the inputs' column types come from the published tables
    outcome = run_dbt(
        settings,
        published_trial,
        ["test", "--select", "test_type:unit"],
        as_of=PUBLISHED_AS_OF,
        marts_schema="marts",
    )
    assert outcome.success, outcome.failures
    ran = {node for node, status in outcome.statuses.items() if node.startswith("unit_test.")}
    assert ran == expected
    assert {outcome.statuses[node] for node in ran} == {"pass"}
