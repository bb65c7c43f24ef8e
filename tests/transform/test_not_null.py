"""NOT NULL in staging and intermediate is a constraint of the built table, not a data test
(macros/hold_not_null.sql): every column a model without an enforced contract declares with
``constraints: [{type: not_null}]`` is NOT NULL on the table the build made, no other column is,
and a NULL is refused with a message that names the table and the column; the row PostgreSQL
quotes with it is redacted from what dbt's failures and the alerts carry."""

from __future__ import annotations

import json

import psycopg
import pytest
from support.constraints import refused_write

from outcomes.settings import Settings
from outcomes.warehouse.connection import Warehouse

pytestmark = pytest.mark.slow
LAYERS = ("staging", "intermediate")


def _declared(settings: Settings) -> set[tuple[str, str, str]]:
    """{(schema, model, column)} declared NOT NULL by constraint in models dbt does not enforce."""
    manifest = json.loads(settings.dbt_manifest.read_text())
    declared = set()
    for node in manifest["nodes"].values():
        if node["resource_type"] != "model" or node["contract"]["enforced"]:
            continue
        for name, column in node["columns"].items():
            if any(c["type"] == "not_null" for c in column.get("constraints") or []):
                declared.add((node["schema"], node["name"], name))
    return declared


def test_each_declared_not_null_is_a_constraint_of_the_built_table(
    settings: Settings, published_trial: Warehouse
) -> None:
    declared = _declared(settings)
    assert {schema for schema, _, _ in declared} == set(LAYERS)
    # the keys every later join relies on are among them
    assert {
        ("staging", "stg_trial__participants", "participant_id"),
        ("staging", "stg_registry__prom_items", "person_pseudonym"),
        ("intermediate", "int_participants_observed", "participant_id"),
    } <= declared
    with psycopg.connect(published_trial.url()) as conn:
        built = {
            (schema, table, column)
            for schema, table, column in conn.execute(
                # the models' tables (not the fingerprints that incremental models keep beside
                # them, keyed by a primary key: macros/incremental_by_key.sql)
                "select table_schema, table_name, column_name from information_schema.columns "
                "where is_nullable = 'NO' and table_schema = any(%s) "
                "and table_name not like '%%\\_\\_fingerprints'",
                (list(LAYERS),),
            ).fetchall()
        }
    assert built == declared


def test_a_null_is_refused_naming_the_table_and_the_column(published_trial: Warehouse) -> None:
    # PostgreSQL quotes the refused row (as it does for a NULL inserted into an incremental model
    # or a mart with an enforced contract); what dbt's failures and the alerts carry does not
    _, message, shown = refused_write(
        published_trial,
        "select participant_id from staging.stg_trial__participants order by 1 limit 1",
        "update staging.stg_trial__participants set randomised_on = null where participant_id = %s",
        psycopg.errors.NotNullViolation,
    )
    for text in (message, shown):
        assert 'column "randomised_on" of relation "stg_trial__participants"' in text
    assert "Failing row contains (...)" in shown
