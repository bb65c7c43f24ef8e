"""The generated parts of the docs: written from the one home of each fact, checked by a test.

A block in a Markdown file between ``<!-- BEGIN generated: NAME (make docs) -->`` and
``<!-- END generated: NAME -->`` is the output of ``BLOCKS[NAME]``. ``make docs`` (``python -m
outcomes.docgen``) rewrites every block in ``README.md`` and ``docs/*.md``; ``--check`` exits 1
naming each file whose blocks are stale (``tests/test_project_docs.py`` runs it).
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from pathlib import Path

from outcomes.settings import DEFAULT_PROJECT_DIR


def _settings() -> str:
    from outcomes.settings import settings_table

    return settings_table() + "\n"


def _sources() -> str:
    from outcomes.contracts.reference import sources_reference

    return sources_reference()


def _benefit_types() -> str:
    from outcomes.transform.seeds import benefit_types

    lines = ["| precedence | benefit | in words | days counted in |", "|---|---|---|---|"]
    for b in benefit_types():
        days = "days_other_benefit" if b.days_group == "OTHER" else f"days_{b.days_group.lower()}"
        lines.append(f"| {b.precedence} | `{b.benefit}` | {b.label} | `{days}` |")
    return "\n".join(lines) + "\n"


def _work_participation_states() -> str:
    from outcomes.transform.seeds import work_participation_states

    lines = ["| state | meaning | the dashboard's label |", "|---|---|---|"]
    lines += [f"| `{s.state}` | {s.meaning} | {s.label} |" for s in work_participation_states()]
    return "\n".join(lines) + "\n"


def _eq5d_value_set() -> str:
    from outcomes.transform.seeds import eq5d_value_set

    value_set = eq5d_value_set()
    lines = [
        f"The index is 1, less {value_set.constant} if any dimension is above level 1, less "
        f"{value_set.n3} if any dimension is at level 3, less each dimension's decrement at its level:",
        "",
        "| dimension (item) | level 2 | level 3 |",
        "|---|---|---|",
    ]
    lines += [f"| `eq5d_{d}` | {two} | {three} |" for d, (two, three) in value_set.decrements.items()]
    return "\n".join(lines) + "\n"


def _prom_measures() -> str:
    from outcomes.transform.seeds import prom_measures

    lines = ["| measure (column) | the dashboard's label | range |", "|---|---|---|"]
    lines += [f"| `{m.measure}` | {m.label} | {m.min_value} to {m.max_value} |" for m in prom_measures()]
    return "\n".join(lines) + "\n"


#: Each generated block and what writes it.
BLOCKS: dict[str, Callable[[], str]] = {
    "settings": _settings,
    "sources": _sources,
    "benefit_types": _benefit_types,
    "work_participation_states": _work_participation_states,
    "eq5d_value_set": _eq5d_value_set,
    "prom_measures": _prom_measures,
}

_BLOCK = re.compile(
    r"(<!-- BEGIN generated: (?P<name>[a-z0-9_]+) \(make docs\) -->\n)(?P<body>.*?)"
    r"(<!-- END generated: (?P=name) -->)",
    re.S,
)


def render(text: str) -> str:
    """``text`` with every generated block written afresh."""

    def fill(match: re.Match[str]) -> str:
        name = match.group("name")
        if name not in BLOCKS:
            raise KeyError(f"unknown generated block {name!r}: one of {', '.join(BLOCKS)}")
        return f"{match.group(1)}{BLOCKS[name]()}{match.group(4)}"

    return _BLOCK.sub(fill, text)


def blocks_in(text: str) -> list[str]:
    return [match.group("name") for match in _BLOCK.finditer(text)]


def doc_files(root: Path = DEFAULT_PROJECT_DIR) -> list[Path]:
    return [root / "README.md", *sorted((root / "docs").glob("*.md"))]


def main(argv: list[str] | None = None) -> int:
    check = "--check" in (argv if argv is not None else sys.argv[1:])
    stale = []
    for path in doc_files():
        text = path.read_text(encoding="utf-8")
        fresh = render(text)
        if fresh != text:
            stale.append(path)
            if not check:
                path.write_text(fresh, encoding="utf-8")
    for path in stale:
        print(f"{path}: {'stale generated block (run make docs)' if check else 'rewritten'}")
    return 1 if check and stale else 0


if __name__ == "__main__":
    raise SystemExit(main())
