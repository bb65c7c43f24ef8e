"""dbt docs describe the project, not the night's data: the build regenerates them only when a file
of the dbt project or a migration changed (``outcomes.transform.dbt.docs_are_current``). The real
skip is seen end to end (tests/e2e/test_demo.py: a backfill after the demo skips generate_docs)."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

from outcomes.settings import Settings
from outcomes.transform.dbt import docs_are_current, docs_stamp, project_fingerprint


def test_docs_are_current_only_for_the_project_they_were_made_from(
    settings: Settings, tmp_path: Path
) -> None:
    project = tmp_path / "project"
    shutil.copytree(
        settings.dbt_project_dir, project / "dbt_project", ignore=shutil.ignore_patterns("target", "logs")
    )
    own = dataclasses.replace(settings, project_dir=project, home=tmp_path / "home")
    assert not docs_are_current(own)  # none yet

    own.dbt_docs_dir.mkdir(parents=True)
    (own.dbt_docs_dir / "index.html").write_text("<html></html>")
    assert not docs_are_current(own)  # docs without a stamp: made by an older version, remake them
    docs_stamp(own).write_text(project_fingerprint(own) + "\n")
    assert docs_are_current(own)

    # dbt's own output and logs are not the project
    (project / "dbt_project" / "target").mkdir(exist_ok=True)
    (project / "dbt_project" / "target" / "run_results.json").write_text("{}")
    assert docs_are_current(own)

    model = next((project / "dbt_project" / "models").rglob("dim_participants.sql"))
    model.write_text(model.read_text() + "\n-- a changed model\n")
    assert not docs_are_current(own)

    docs_stamp(own).write_text(project_fingerprint(own) + "\n")
    assert docs_are_current(own)
    (own.dbt_docs_dir / "index.html").unlink()
    assert not docs_are_current(own)
