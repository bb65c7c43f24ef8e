"""Settings come from the environment, with defaults a checkout can run on; every one is declared
once (outcomes.settings.DECLARED), read by one parser, and the docs are held to the declarations."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from outcomes.contracts.registry import source as source_spec
from outcomes.contracts.registry import source_names
from outcomes.docgen import blocks_in, render
from outcomes.settings import (
    DECLARED,
    DEFAULT_PROJECT_DIR,
    INTERNAL,
    KINDS,
    MANUAL,
    SECTIONS,
    SettingError,
    Settings,
    check_all,
    declared,
    every_name,
    load_settings,
    setting,
    settings_table,
)


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
    assert (settings.plugins_folder / "outcomes" / "cli" / "__init__.py").exists()


# -- the declared settings: one home, one parser, the docs held to it ------------------------------

ROOT = Path(__file__).resolve().parents[1]


def test_the_documented_table_is_the_declared_settings() -> None:
    operations = (ROOT / "docs" / "operations.md").read_text(encoding="utf-8")
    assert "settings" in blocks_in(operations), "docs/operations.md lost its generated settings table"
    assert render(operations) == operations, "docs/operations.md's settings table is stale: run make docs"
    assert settings_table() in operations


def test_env_example_lists_every_declared_setting_and_nothing_else() -> None:
    lines = (ROOT / ".env.example").read_text(encoding="utf-8").splitlines()
    listed = dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))
    ours = [key for key in listed if key.startswith("OUTCOMES_")]
    compose_only = {"OUTCOMES_LANDING_HOST_DIR"}  # docker compose's own, a host folder
    assert sorted(set(ours) - compose_only) == sorted(every_name())
    for entry in DECLARED:
        for name in entry.names():
            assert listed[name] == entry.example, (
                f".env.example: {name}={listed[name]!r}, declared {entry.example!r}"
            )
            if entry.example:
                assert setting(name, {name: entry.example}) == entry.default_for(name), name


def test_every_setting_the_code_names_is_declared_or_internal() -> None:
    named: set[str] = set()
    for folder in ("plugins", "dags"):
        for path in (ROOT / folder).rglob("*.py"):
            text = path.read_text(encoding="utf-8")
            named |= set(re.findall(r"[\"'`](OUTCOMES_[A-Z0-9_]*[A-Z0-9])[\"'`]", text))
            for prefix, suffix in re.findall(r"f\"(OUTCOMES_[A-Z_]*)\{source\.upper\(\)\}([A-Z_]*)\"", text):
                named |= {f"{prefix}{source.upper()}{suffix}" for source in source_names()}
    profile = (ROOT / "dbt_project" / "profiles.yml").read_text(encoding="utf-8")
    named |= set(re.findall(r"env_var\('(OUTCOMES_[A-Z0-9_]+)'", profile))
    assert "OUTCOMES_SCHEDULE_TRIAL" in named and "OUTCOMES_DBT_THREADS" in named  # both scans found some
    declared_names = set(every_name()) | {e.name for e in DECLARED}
    unknown = named - declared_names - set(INTERNAL)
    assert not unknown, f"named in the code but not declared in outcomes.settings: {sorted(unknown)}"


#: A read of an ``OUTCOMES_*`` variable straight from an environment mapping (not a write).
DIRECT_READ = re.compile(
    r"""(?:environ|env)(?:\.get\(\s*|\[\s*)f?["'](OUTCOMES_[^"']+)["'](?!\]\s*=[^=])"""
    r"""|getenv\(\s*f?["'](OUTCOMES_[^"']+)["']"""
)


def test_only_the_settings_module_reads_a_declared_setting_from_the_environment() -> None:
    offenders = []
    for folder in ("plugins", "dags"):
        for path in (ROOT / folder).rglob("*.py"):
            if path == ROOT / "plugins" / "outcomes" / "settings.py":
                continue
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                for match in DIRECT_READ.finditer(line):
                    if (match.group(1) or match.group(2)) not in INTERNAL:
                        offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not offenders, "read through outcomes.settings.setting() instead:\n" + "\n".join(offenders)


def test_the_guard_finds_a_direct_read_and_leaves_a_write() -> None:
    assert DIRECT_READ.search('x = float(os.environ.get("OUTCOMES_POKE_SECONDS") or 60)')
    assert DIRECT_READ.search('x = os.environ[f"OUTCOMES_SCHEDULE_{source.upper()}"]')
    assert DIRECT_READ.search("x = os.getenv('OUTCOMES_HOME')")
    assert not DIRECT_READ.search('os.environ["OUTCOMES_LANDING"] = landing')


def test_outcomes_env_all_prints_every_setting_and_no_secret(
    warehouse: object, settings: Settings, tmp_path: Path
) -> None:
    secret = "a-pseudonymisation-key-of-at-least-32-characters"  # pragma: allowlist secret
    env = {**os.environ, "OUTCOMES_PSEUDONYM_KEY": secret, "OUTCOMES_GATE_FULL_TIME_HOURS": "40"}
    done = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "outcomes"), "env", "--all"], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert secret not in done.stdout + done.stderr
    printed = {}
    for line in done.stdout.splitlines():
        if line.startswith("# ") and line.endswith(" is set (not shown)"):
            printed[line[2:].split()[0]] = None
        else:
            key, value = line.split("=", 1)
            printed[key] = value
    assert set(every_name()) <= set(printed)
    assert printed["OUTCOMES_PSEUDONYM_KEY"] is None
    assert printed["OUTCOMES_GATE_FULL_TIME_HOURS"] == "40"
    assert printed["OUTCOMES_SCHEDULE_TRIAL"].strip("'") == source_spec("trial").schedule


def test_a_bad_value_stops_outcomes_env_with_one_line_naming_each_variable() -> None:
    env = {**os.environ, "OUTCOMES_POKE_SECONDS": "0", "OUTCOMES_FRESHNESS_SEVERITY": "fatal"}
    done = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "outcomes"), "env"], env=env, capture_output=True, text=True
    )
    assert done.returncode == 1
    assert "OUTCOMES_POKE_SECONDS='0': expected at least 0.1" in done.stderr
    assert "OUTCOMES_FRESHNESS_SEVERITY='fatal': use one of error, warn" in done.stderr
    assert "Traceback" not in done.stderr and done.stdout == ""


@pytest.mark.parametrize(
    ("name", "raw", "value"),
    [
        ("OUTCOMES_AIRFLOW_PARALLELISM", "8", 8),
        ("OUTCOMES_QUARANTINE_THRESHOLD", "0.1", 0.1),
        ("OUTCOMES_DBT_EXECUTION", "Watcher", "watcher"),
        ("OUTCOMES_SCHEDULE_TRIAL", " Manual ", MANUAL),
        ("OUTCOMES_SCHEDULE_BUILD", "30 4 * * 1-5", "30 4 * * 1-5"),
        ("OUTCOMES_SCHEDULE_BUILD", "@daily", "@daily"),
        ("OUTCOMES_ALERT_EMAIL_TO", " a@example.org, ,b@example.org ", ["a@example.org", "b@example.org"]),
        ("OUTCOMES_HOME", "~/wh", Path("~/wh").expanduser()),
        ("OUTCOMES_DEADLINE_WELFARE_HOURS", "12", 12.0),
    ],
)
def test_each_kind_parses(name: str, raw: str, value: object) -> None:
    assert setting(name, {name: raw}) == value


@pytest.mark.parametrize(
    ("name", "raw", "message"),
    [
        (
            "OUTCOMES_AIRFLOW_PARALLELISM",
            "four",
            "OUTCOMES_AIRFLOW_PARALLELISM='four': expected a whole number",
        ),
        ("OUTCOMES_AIRFLOW_PARALLELISM", "0", "OUTCOMES_AIRFLOW_PARALLELISM='0': expected at least 1"),
        ("OUTCOMES_QUARANTINE_THRESHOLD", "5", "OUTCOMES_QUARANTINE_THRESHOLD='5': expected at most 1"),
        (
            "OUTCOMES_DBT_EXECUTION",
            "kubernetes",
            "OUTCOMES_DBT_EXECUTION='kubernetes': use one of build, local, watcher",
        ),
        (
            "OUTCOMES_SCHEDULE_REGISTRY",
            "nightly",
            "OUTCOMES_SCHEDULE_REGISTRY='nightly': expected a cron expression",
        ),
        (
            "OUTCOMES_GATE_MAX_ROW_CHANGE_PCT",
            "ten",
            "OUTCOMES_GATE_MAX_ROW_CHANGE_PCT='ten': expected a number",
        ),
        (
            "OUTCOMES_ALERT_WEBHOOK",
            "ftp://hooks.example.org/T0K3N",
            "OUTCOMES_ALERT_WEBHOOK: expected a URL starting",
        ),
    ],
)
def test_a_bad_value_is_one_error_naming_the_variable(name: str, raw: str, message: str) -> None:
    with pytest.raises(SettingError) as error:
        setting(name, {name: raw})
    assert str(error.value).startswith(message)
    assert check_all({name: raw}) == [str(error.value)]
    if declared(name).kind == "url":
        assert raw not in str(error.value)  # a URL may hold a token: never echoed


def test_unset_and_empty_mean_the_default_and_per_source_defaults_are_the_contracts() -> None:
    assert check_all({}) == []
    for source in source_names():
        spec = source_spec(source)
        assert setting(f"OUTCOMES_SCHEDULE_{source.upper()}", {}) == spec.schedule
        assert setting(f"OUTCOMES_DEADLINE_{source.upper()}_HOURS", {}) == spec.deadline_hours
        assert setting(
            f"OUTCOMES_FRESHNESS_{source.upper()}_DAYS", {"OUTCOMES_FRESHNESS_TRIAL_DAYS": ""}
        ) == (spec.freshness_days)
    assert setting("OUTCOMES_ALERT_EMAIL_TO", {}) == []
    with pytest.raises(KeyError, match="not a declared setting"):
        setting("OUTCOMES_NO_SUCH_THING", {})


def test_every_setting_is_in_a_section_with_a_kind_and_a_doc() -> None:
    from outcomes.settings import _PARSERS

    assert set(KINDS) == set(_PARSERS)
    names = [e.name for e in DECLARED]
    assert len(names) == len(set(names))
    for entry in DECLARED:
        assert entry.section in SECTIONS and entry.kind in KINDS and entry.doc, entry
        assert (entry.kind == "choice") <= bool(entry.choices), entry
        assert entry.per_source == (entry.contract_fact is not None), entry


def test_the_dbt_profile_defaults_its_threads_as_declared() -> None:
    profile = (ROOT / "dbt_project" / "profiles.yml").read_text(encoding="utf-8")
    found = re.search(r"env_var\('OUTCOMES_DBT_THREADS', '(\d+)'\)", profile)
    assert found is not None and int(found.group(1)) == declared("OUTCOMES_DBT_THREADS").default
