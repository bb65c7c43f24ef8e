"""Every column of every published mart is documented, shared columns once (``{% docs %}``)."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

DBT = Path(__file__).resolve().parents[2] / "dbt_project"
DOC_REF = re.compile(r"""\{\{\s*doc\(\s*["'](\w+)["']\s*\)\s*\}\}""")


def _blocks() -> set[str]:
    return {
        name
        for path in (DBT / "models").rglob("*.md")
        for name in re.findall(r"\{%\s*docs\s+(\w+)\s*%\}", path.read_text(encoding="utf-8"))
    }


def _mart_columns() -> list[tuple[str, str, str]]:
    found = []
    for path in sorted((DBT / "models" / "marts").rglob("*.yml")):
        for model in yaml.safe_load(path.read_text(encoding="utf-8")).get("models", []):
            for column in model.get("columns", []):
                found.append((model["name"], column["name"], str(column.get("description") or "").strip()))
    return found


def test_every_mart_column_has_a_description() -> None:
    columns = _mart_columns()
    assert len(columns) > 70, "the scan found too few columns to mean anything"
    undocumented = [f"{model}.{column}" for model, column, text in columns if not text]
    assert not undocumented, f"document these mart columns: {undocumented}"


def test_every_shared_doc_block_exists_and_is_used() -> None:
    blocks = _blocks()
    used = {ref for _, _, text in _mart_columns() for ref in DOC_REF.findall(text)}
    assert used, "no column uses a shared doc block"
    assert used <= blocks, f"doc() names a block no .md file defines: {sorted(used - blocks)}"
    assert blocks <= used | _used_elsewhere(), f"unused doc blocks: {sorted(blocks - used)}"


def _used_elsewhere() -> set[str]:
    return {
        ref
        for path in (DBT / "models").rglob("*.yml")
        for ref in DOC_REF.findall(path.read_text(encoding="utf-8"))
    }
