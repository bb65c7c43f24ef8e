"""The source registry: the sources and their facts live in ``sources.yaml`` and nowhere else."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from outcomes.contracts.registry import describe_schedule, fnr_keyed_sources, source, source_names, sources
from outcomes.contracts.spec import ContractError, default_contract_path, load_contract

ROOT = Path(__file__).resolve().parents[2]
NAMES = "|".join(source_names())
QUOTED = rf"[\"'](?:{NAMES})[\"']"
#: Three or more source names in one literal (a tuple, list, set or SQL array) or as the keys of
#: one mapping: a copy of the registry's list.
LIST_COPY = re.compile(rf"{QUOTED}\s*,\s*{QUOTED}\s*,\s*{QUOTED}")
MAPPING_COPY = re.compile(rf"{QUOTED}\s*:\s*[^,]+,\s*{QUOTED}\s*:\s*[^,]+,\s*{QUOTED}\s*:")


#: The contract's own tests, which state what the contract says.
STATES_THE_CONTRACT = {"tests/contracts/test_spec.py", "tests/contracts/test_registry.py"}


def test_the_source_list_is_written_only_in_the_contracts() -> None:
    copies = []
    for folder in ("plugins", "dags", "tests", "bench", "dbt_project"):
        for path in sorted((ROOT / folder).rglob("*")):
            if path.suffix not in {".py", ".sql", ".yml"} or "target" in path.parts or not path.is_file():
                continue
            if str(path.relative_to(ROOT)) in STATES_THE_CONTRACT:
                continue
            text = path.read_text(encoding="utf-8")
            copies += [
                f"{path.relative_to(ROOT)}: {m.group(0)!r}"
                for pattern in (LIST_COPY, MAPPING_COPY)
                for m in pattern.finditer(text)
            ]
    assert not copies, "read the sources from outcomes.contracts.registry:\n" + "\n".join(copies)


def test_the_probe_finds_a_copy() -> None:
    """The guard above is not vacuous: it recognises the shapes a copy takes."""
    assert LIST_COPY.search("SOURCES = ('trial', 'registry', 'welfare', 'employment')")
    assert LIST_COPY.search("array['welfare', 'trial',\n 'employment']")
    assert MAPPING_COPY.search('{"trial": 2, "registry": 2, "welfare": 8, "employment": 2}')
    assert not LIST_COPY.search("for source in source_names():")


def test_the_readme_schedule_table_says_what_the_registry_declares() -> None:
    readme = (ROOT / "docs" / "operations.md").read_text(encoding="utf-8")
    for spec in sources():
        row = re.search(rf"^\| `ingest_{spec.name}` \| ([^|]+) \| ([^|]+) \| ([^|]+) \|", readme, re.M)
        assert row, f"the DAG table of docs/operations.md has no row for ingest_{spec.name}"
        assert row.group(1).strip() == describe_schedule(spec.schedule), spec.name
        assert row.group(2).strip() == f"{spec.deadline_hours:g} h", spec.name
        assert row.group(3).strip() == f"{spec.freshness_days:g} days", spec.name


def test_every_source_declares_its_facts() -> None:
    for spec in sources():
        assert spec.keyed_by in {"fnr", "participant_id"}
        assert spec.doc and spec.description and spec.deadline_hours > 0 and spec.freshness_days > 0
    assert set(fnr_keyed_sources()) == {s.name for s in sources() if s.keyed_by == "fnr"}
    # the order of the registry is the contract file's order
    assert list(source_names()) == list(yaml.safe_load(default_contract_path().read_text())["sources"])


def test_an_unknown_source_names_the_known_ones() -> None:
    with pytest.raises(ValueError, match=r"unknown source 'hospital': one of " + ", ".join(source_names())):
        source("hospital")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda s: s.pop("freshness_days"), r"sources\.welfare: missing freshness_days"),
        (lambda s: s.update(keyed_by="email"), r"sources\.welfare\.keyed_by: 'email' is not"),
        (lambda s: s.update(schedule="every monday"), r"sources\.welfare\.schedule: 'every monday'"),
        (lambda s: s.update(deadline_hours=0), r"sources\.welfare\.deadline_hours: expected a positive"),
        (
            lambda s: s.update(keyed_by="participant_id"),
            r"sources\.welfare\.benefit_spells\.csv: keyed by participant_id, but has no participant_id",
        ),
    ],
)
def test_a_source_with_a_wrong_or_missing_fact_is_refused(tmp_path: Path, change, message: str) -> None:
    raw = yaml.safe_load(default_contract_path().read_text())
    change(raw["sources"]["welfare"])
    path = tmp_path / "sources.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    with pytest.raises(ContractError, match=message):
        load_contract(path)


@pytest.mark.parametrize(
    ("cron", "words"),
    [
        ("0 1 * * *", "daily 01:00"),
        ("30 5 * * *", "daily 05:30"),
        ("0 3 * * 1", "Mondays 03:00"),
        ("0 3 * * 0", "Sundays 03:00"),
        ("0 3 * * 7", "Sundays 03:00"),
        ("*/5 * * * *", "*/5 * * * *"),
    ],
)
def test_a_schedule_in_words(cron: str, words: str) -> None:
    assert describe_schedule(cron) == words
