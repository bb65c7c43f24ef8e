"""The grain of the large models is held by unique indexes, not by data tests that read every row
again (bench/README.md, "Parsing once, grain by index, a leaner gate"): each index the dbt project
declares is on the built table, unique, on exactly its columns, and refuses a second row of the
same key."""

from __future__ import annotations

import json

import psycopg
import pytest
from support.constraints import refused_write

from outcomes.settings import Settings
from outcomes.warehouse.connection import Warehouse

pytestmark = pytest.mark.slow
#: Models whose grain the project holds by a unique index (the rest by data tests).
EXPECTED = {
    "stg_registry__prom_items": ("form_id", "item"),
    "stg_employment__checkpoints": ("participant_id", "checkpoint_month"),
    "int_participant_months_spined": ("participant_id", "month_index"),
    "int_benefit_spells": ("spell_id",),
    "int_benefit_days_by_month": ("participant_id", "month_index"),
    "int_benefit_states_on_checkpoints": ("participant_id", "month_index"),
    "int_prom_forms_scored": ("form_id",),
    "int_prom_forms_chosen": ("participant_id", "timepoint_months"),
    "fct_participant_months": ("participant_id", "month_index"),
    "fct_employment_outcomes": ("participant_id", "horizon_months"),
    "fct_prom_scores": ("participant_id", "timepoint_months"),
}


def _declared(settings: Settings) -> dict[str, tuple[str, tuple[str, ...]]]:
    """{model: (schema it is published in, unique index columns)} from the parsed manifest."""
    manifest = json.loads(settings.dbt_manifest.read_text())
    declared = {}
    for node in manifest["nodes"].values():
        if node["resource_type"] != "model":
            continue
        for index in node["config"].get("indexes") or []:
            if index.get("unique"):
                schema = "marts" if node["fqn"][1] == "marts" else node["schema"]
                declared[node["name"]] = (schema, tuple(index["columns"]))
    return declared


def test_each_declared_grain_is_a_unique_index_on_the_built_table(
    settings: Settings, published_trial: Warehouse
) -> None:
    declared = _declared(settings)
    assert {name: columns for name, (_, columns) in declared.items()} == EXPECTED
    with psycopg.connect(published_trial.url()) as conn:
        for name, (schema, columns) in declared.items():
            found = conn.execute(
                """
                select array_agg(attribute.attname::text order by key.ordinality)
                from pg_index as ix
                join pg_class as tbl on tbl.oid = ix.indrelid
                join pg_namespace as ns on ns.oid = tbl.relnamespace
                cross join lateral unnest(ix.indkey) with ordinality as key (attnum, ordinality)
                join pg_attribute as attribute
                    on attribute.attrelid = tbl.oid and attribute.attnum = key.attnum
                where ns.nspname = %s and tbl.relname = %s and ix.indisunique
                group by ix.indexrelid
                """,
                (schema, name),
            ).fetchall()
            assert [tuple(row[0]) for row in found] == [columns], (schema, name, found)


def test_a_second_row_of_a_key_is_refused_and_the_key_kept_out_of_alerts(
    published_trial: Warehouse,
) -> None:
    # PostgreSQL quotes the key; what dbt's failures and the alerts carry does not
    _, _, shown = refused_write(
        published_trial,
        "select participant_id from marts.fct_participant_months where month_index = 12 limit 1",
        "insert into marts.fct_participant_months select * from marts.fct_participant_months "
        "where participant_id = %s and month_index = 12",
        psycopg.errors.UniqueViolation,
    )
    assert "Key (participant_id, month_index)=(...)" in shown
