"""The package's layout shows the architecture: one responsibility a module, a few hundred lines;
the package root holds only what every part shares; the README's layout names every part."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "plugins" / "outcomes"
#: About 500 lines is where a module starts to hold more than one responsibility.
MAX_LINES = 500
#: The package root's own modules: what every part shares (settings), the UI's pages and the docs
#: generator. Everything else lives in the subpackage of its concern.
ROOT_MODULES = {"__init__.py", "settings.py", "webapp.py", "docgen.py"}


def _modules() -> list[Path]:
    found = [*PACKAGE.rglob("*.py"), *(ROOT / "dags").glob("*.py"), ROOT / "plugins" / "outcomes_plugin.py"]
    # migrations are history, written once per schema change and never edited
    return sorted(p for p in found if "migrations" not in p.parts)


def test_no_module_is_over_about_500_lines() -> None:
    long = {
        str(p.relative_to(ROOT)): n
        for p in _modules()
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert not long, f"split by responsibility (at most {MAX_LINES} lines): {long}"


def test_the_package_root_holds_only_what_every_part_shares() -> None:
    loose = {p.name for p in PACKAGE.glob("*.py")}
    assert loose == ROOT_MODULES, f"move into the subpackage of its concern: {sorted(loose - ROOT_MODULES)}"


def test_the_readme_layout_names_every_part_of_the_package() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    parts = sorted(p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists())
    assert parts, "the guard would pass vacuously"
    missing = [name for name in parts if f"`plugins/outcomes/{name}/`" not in readme]
    assert not missing, f"README.md's repository layout does not name: {missing}"


def test_deliveries_in_the_tests_are_written_by_one_writer() -> None:
    """``tests/support/deliveries.py`` writes every delivery's CSV; the suites' helpers call it."""
    writers = sorted(
        str(p.relative_to(ROOT))
        for p in (ROOT / "tests").rglob("*.py")
        if p != Path(__file__) and "csv.writer(" in p.read_text(encoding="utf-8")
    )
    assert writers == ["tests/support/deliveries.py"], writers
