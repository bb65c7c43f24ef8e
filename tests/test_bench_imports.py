"""The benchmark suite imports only what the package has.

The bench runs the package's own entry points, partly from code it hands to a subprocess as a
string, so a rename in the package breaks it without any import error until ``make bench`` runs
(which the quick tests do not). This reads every ``from outcomes... import ...`` in ``bench/``,
strings included, and imports each name.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"
IMPORT = re.compile(r"^\s*from (outcomes(?:\.\w+)*) import ([\w, ]+?)(?:\s*#.*)?$", re.MULTILINE)


def _imports() -> list[tuple[str, str, str]]:
    found = []
    for path in sorted(BENCH.glob("*.py")):
        for match in IMPORT.finditer(path.read_text(encoding="utf-8")):
            module, names = match.groups()
            for name in names.split(","):
                name = name.strip().split(" as ")[0]
                if name:
                    found.append((path.name, module, name))
    return found


def test_the_scan_finds_the_bench_imports() -> None:
    found = _imports()
    assert ("nightly.py", "outcomes.ingest.service", "apply_source") in found
    assert len(found) > 20


@pytest.mark.parametrize(("file", "module", "name"), _imports())
def test_bench_imports_resolve(file: str, module: str, name: str) -> None:
    imported = importlib.import_module(module)
    if hasattr(imported, name):
        return
    try:
        submodule = importlib.util.find_spec(f"{module}.{name}")
    except ModuleNotFoundError:  # ``module`` is not a package
        submodule = None
    assert submodule is not None, f"bench/{file}: `from {module} import {name}`: {module} has no {name}"
