"""The docs: a README that is a front page, docs/ behind it, every link resolving, every generated
block fresh, and no reference to anything a user of the project does not have."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from outcomes.docgen import BLOCKS, blocks_in, doc_files, main, render

ROOT = Path(__file__).resolve().parents[1]
DOCS = doc_files(ROOT)
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
#: What a user of the project does not have: the specification it was built from.
ELSEWHERE = re.compile(r"\.\./shared|\b(?:DESIGN|domain|contracts|marts|style|notes-stack)\.md\b")


def _anchors(text: str) -> set[str]:
    """GitHub's anchors of the Markdown headings in ``text``."""
    anchors = set()
    inside = False
    for line in text.splitlines():
        if line.startswith("```"):
            inside = not inside
        elif not inside and (match := re.match(r"^#{1,6} (.+)$", line)):
            slug = re.sub(r"[^\w\- ]", "", match.group(1).strip().lower()).replace(" ", "-")
            anchors.add(slug)
    return anchors


def test_the_readme_is_a_front_page_with_the_docs_behind_it() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= 150, "README.md is the front page: move the detail into docs/"
    for heading in ("## Quick start", "## Architecture", "### Repository layout", "## Read on"):
        assert heading in readme
    linked = {
        target for target in LINK.findall(readme) if target.startswith("docs/") and target.endswith(".md")
    }
    assert linked == {f"docs/{path.name}" for path in DOCS if path.parent.name == "docs"}, (
        "every page of docs/ is listed in the README's Read on, and nothing else"
    )


@pytest.mark.parametrize("path", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_link_resolves(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    for target in LINK.findall(text):
        if target.startswith(("http://", "https://", "mailto:")):
            continue
        file_part, _, anchor = target.partition("#")
        linked = (path.parent / file_part).resolve() if file_part else path
        assert linked.exists(), f"{path.name}: the link {target} points at nothing"
        if anchor and linked.suffix == ".md":
            assert anchor in _anchors(linked.read_text(encoding="utf-8")), (
                f"{path.name}: no #{anchor} in {linked.name}"
            )


def test_nothing_sends_a_reader_to_the_specification() -> None:
    offenders = []
    for folder in ("plugins", "dags", "dbt_project", "expectations", "tests", "bench", "docs"):
        for path in (ROOT / folder).rglob("*"):
            if path.suffix not in {".py", ".md", ".yml", ".yaml", ".sql", ".toml"} or "target" in path.parts:
                continue
            if path == Path(__file__):
                continue
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                if ELSEWHERE.search(line):
                    offenders.append(f"{path.relative_to(ROOT)}:{number}")
    for name in ("README.md", "Makefile", ".env.example", "docker-compose.yml", "Dockerfile"):
        for number, line in enumerate((ROOT / name).read_text(encoding="utf-8").splitlines(), 1):
            if ELSEWHERE.search(line):
                offenders.append(f"{name}:{number}")
    assert not offenders, "a user of the project has no ../shared: say it in docs/ instead:\n" + "\n".join(
        offenders
    )


def test_the_guard_sees_a_reference_to_the_specification() -> None:
    assert ELSEWHERE.search("the rules (contracts.md)")
    assert ELSEWHERE.search("see ../shared/")
    assert not ELSEWHERE.search("see docs/sources.md")


def test_every_generated_block_is_fresh_and_used() -> None:
    assert main(["--check"]) == 0, "a generated block of the docs is stale: run make docs"
    used = {name for path in DOCS for name in blocks_in(path.read_text(encoding="utf-8"))}
    assert used == set(BLOCKS)


def test_a_stale_block_is_rewritten() -> None:
    begin, end = "<!-- BEGIN generated: settings (make docs) -->", "<!-- END generated: settings -->"
    stale = f"before\n{begin}\nSTALE TEXT\n{end}\nafter\n"
    fresh = render(stale)
    assert "STALE TEXT" not in fresh and "`OUTCOMES_HOME`" in fresh and fresh.startswith("before\n")
    assert fresh.endswith("<!-- END generated: settings -->\nafter\n")
