"""The dbt layers divide the work (docs/operations.md, "The layers divide the work"):
staging is one model per source file, reading only its raw table (and which deliveries the build
may see), with no joins to other models; the participant filter lives once, in
macros/cohort.sql, and the intermediate models that need a person's participant use it."""

from __future__ import annotations

import json
import re
from pathlib import Path

from outcomes.settings import Settings
from outcomes.transform.dbt import ensure_manifest
from outcomes.warehouse.connection import Warehouse

ROOT = Path(__file__).resolve().parents[2] / "dbt_project"
STAGING = sorted((ROOT / "models" / "staging").rglob("*.sql"))
COHORT = ROOT / "macros" / "cohort.sql"


def test_each_staging_model_reads_one_raw_table() -> None:
    """That it reads no other model is checked on dbt's parsed project, below."""
    assert len(STAGING) == 5, "the guard would pass vacuously"
    for path in STAGING:
        sql = path.read_text(encoding="utf-8")
        raw = set(re.findall(r"source\('raw', '(\w+)'\)", sql))
        assert len(raw) == 1, f"{path.name}: one raw table, found {sorted(raw)}"
        # the only other source: which deliveries the build may see (macros/versions.sql)
        others = set(re.findall(r"source\('(\w+)', '(\w+)'\)", sql)) - {("raw", t) for t in raw}
        assert others <= {("meta", "deliveries")}, f"{path.name}: {sorted(others)}"


def test_the_participant_filter_is_written_once() -> None:
    matching = [
        str(path.relative_to(ROOT))
        for path in [*(ROOT / "models").rglob("*.sql"), *(ROOT / "macros").rglob("*.sql")]
        if re.search(r"person_pseudonym\s*=", path.read_text(encoding="utf-8"))
    ]
    assert matching == [str(COHORT.relative_to(ROOT))]
    users = [
        path.stem
        for path in (ROOT / "models" / "intermediate").rglob("*.sql")
        if "of_participants(" in path.read_text(encoding="utf-8")
    ]
    assert sorted(users) == ["int_benefit_spells", "int_prom_forms_scored"]


def test_the_parsed_project_agrees(settings: Settings, warehouse: Warehouse) -> None:
    """What dbt itself resolved (macros and hooks included): no staging model depends on a model
    or a seed, and every model that reads a pseudonym-keyed staging model uses the filter."""
    ensure_manifest(settings, warehouse)
    nodes = json.loads(settings.dbt_manifest.read_text())["nodes"]
    models = {uid: node for uid, node in nodes.items() if node["resource_type"] == "model"}
    staging = {uid for uid, node in models.items() if node["path"].startswith("staging/")}
    assert len(staging) == 5
    for uid in staging:
        upstream = [n for n in models[uid]["depends_on"]["nodes"] if not n.startswith("source.")]
        assert upstream == [], f"{uid} depends on {upstream}"
    keyed_by_person = {
        "model.outcomes.stg_welfare__benefit_spells",
        "model.outcomes.stg_registry__prom_items",
    }
    readers = [uid for uid, node in models.items() if keyed_by_person & set(node["depends_on"]["nodes"])]
    assert sorted(readers) == ["model.outcomes.int_benefit_spells", "model.outcomes.int_prom_forms_scored"]
    for uid in readers:
        assert "macro.outcomes.of_participants" in models[uid]["depends_on"]["macros"], uid
