"""Settings come from the environment, with defaults a checkout can run on."""

from __future__ import annotations

from pathlib import Path

from outcomes.settings import DEFAULT_PROJECT_DIR, load_settings


def test_defaults_live_in_the_checkout() -> None:
    settings = load_settings({})
    assert settings.project_dir == DEFAULT_PROJECT_DIR
    assert settings.home == DEFAULT_PROJECT_DIR / ".outcomes"
    assert settings.embedded
    assert settings.pgdata == settings.home / "pg"
    assert settings.airflow_home == settings.home / "airflow"
    assert settings.landing == str(settings.home / "landing")
    assert settings.dags_folder == DEFAULT_PROJECT_DIR / "dags"
    assert settings.airflow_parallelism == 4


def test_environment_overrides(tmp_path: Path) -> None:
    settings = load_settings(
        {
            "OUTCOMES_HOME": str(tmp_path),
            "OUTCOMES_WAREHOUSE_URL": "postgresql://u@db.example:5432/wh",
            "OUTCOMES_LANDING": "sftp://landing/in",
            "OUTCOMES_AIRFLOW_PARALLELISM": "8",
        }
    )
    assert settings.home == tmp_path
    assert not settings.embedded
    assert settings.warehouse_url == "postgresql://u@db.example:5432/wh"
    assert settings.landing == "sftp://landing/in"
    assert settings.airflow_parallelism == 8


def test_the_dags_and_the_package_are_where_the_settings_say() -> None:
    settings = load_settings({})
    assert (settings.dags_folder / "warehouse_maintenance.py").exists()
    assert (settings.plugins_folder / "outcomes" / "cli.py").exists()
