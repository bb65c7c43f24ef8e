"""Secrets from Airflow's secrets backend: the warehouse's URL (its password), the pseudonymisation
key and the alert channels (the webhook's token, the SMTP password) read from a backend when the
environment does not set them, never shown and never written anywhere.

The backend here is Airflow's own LocalFilesystemBackend, configured as a deployment configures
Vault or a cloud secrets manager (``AIRFLOW__SECRETS__BACKEND`` and its kwargs; docs/operations.md,
"Secrets from a secrets backend"): the lookup goes through Airflow's backend interface, so what
holds for this one holds for those.
"""

from __future__ import annotations

import datetime as dt
import secrets
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import make_url
from support.deliveries import prom_rows, write_delivery
from support.deployments import own_environment, pg_dump
from support.receivers import PASSWORD as SMTP_PASSWORD
from support.receivers import smtp_receiver, webhook_receiver
from support.secret_stores import UNREACHABLE, local_backend

from outcomes.settings import (
    DECLARED,
    SettingError,
    backend_variable,
    effective,
    setting,
)
from outcomes.warehouse.connection import Warehouse

OUTCOMES = str(Path(sys.executable).parent / "outcomes")
SECRET_SETTINGS = {
    "OUTCOMES_WAREHOUSE_URL",
    "OUTCOMES_PSEUDONYM_KEY",
    "OUTCOMES_ALERT_WEBHOOK",
    "OUTCOMES_ALERT_SMTP_URL",
}


@pytest.fixture
def airflow_loaded(warehouse: Warehouse) -> None:
    """Airflow imported in this process, after the session put its settings in place (conftest.py):
    the backend is then asked in-process (a process without Airflow asks a child: the e2e test)."""
    import airflow.configuration  # noqa: F401


@pytest.fixture
def backend(
    airflow_loaded: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[dict[str, str]]:
    """A LocalFilesystemBackend in this process holding every secret setting; the environment
    sets none of them."""
    values = {
        "OUTCOMES_WAREHOUSE_URL": f"postgresql://owner:{secrets.token_urlsafe(12)}@db.example:5432/wh",
        "OUTCOMES_PSEUDONYM_KEY": secrets.token_hex(32),
        "OUTCOMES_ALERT_WEBHOOK": f"https://hooks.example.org/services/{secrets.token_urlsafe(16)}",
        "OUTCOMES_ALERT_SMTP_URL": f"smtp://alerts:{secrets.token_urlsafe(12)}@mail.example.org:587",
        # not a secret setting: a Variable of its name is never read
        "OUTCOMES_LANDING_CONN_ID": "from_the_backend",
    }
    for name in values:
        monkeypatch.delenv(name, raising=False)
    variables = {backend_variable(name): value for name, value in values.items()}
    for key, value in local_backend(tmp_path, variables).items():
        monkeypatch.setenv(key, value)
    yield values


def test_the_secret_settings_are_the_four_that_hold_a_password_a_key_or_a_token() -> None:
    assert {entry.name for entry in DECLARED if entry.is_secret} == SECRET_SETTINGS


def test_a_secret_the_environment_does_not_set_comes_from_the_backend(
    backend: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in SECRET_SETTINGS:
        assert setting(name) == backend[name], name
    assert setting("OUTCOMES_LANDING_CONN_ID") is None  # not a secret: the environment only
    shown = effective()
    assert all(shown[name] is None for name in SECRET_SETTINGS), shown  # "is set", never the value
    # the environment wins over the backend
    monkeypatch.setenv("OUTCOMES_ALERT_WEBHOOK", "https://alerts.example.org/env")
    assert setting("OUTCOMES_ALERT_WEBHOOK") == "https://alerts.example.org/env"
    # an environment handed in (not the process's) is read alone: the backend is the process's
    assert setting("OUTCOMES_PSEUDONYM_KEY", {}) is None


def test_a_secret_read_is_masked_in_airflows_logs(backend: dict[str, str]) -> None:
    """Both of Airflow's maskers (its components' and the task SDK's, which task logs go through)
    redact every secret read, and the parts of one a log might print alone."""
    from airflow._shared.secrets_masker import redact
    from airflow.sdk._shared.secrets_masker import redact as redact_in_tasks

    url = setting("OUTCOMES_WAREHOUSE_URL")
    key = setting("OUTCOMES_PSEUDONYM_KEY")
    hook = setting("OUTCOMES_ALERT_WEBHOOK")
    token = hook.rsplit("/", 1)[1]
    smtp_password = make_url(setting("OUTCOMES_ALERT_SMTP_URL")).password
    password = make_url(url).password
    for secret in (url, password, key, hook, token, smtp_password):
        for masked in (redact, redact_in_tasks):
            assert secret not in str(masked(f"a log line with {secret} in it")), secret
    assert "/opt/outcomes-state" in str(redact("a path: /opt/outcomes-state"))  # the database's name is not


def test_the_environments_key_file_wins_over_the_backend(
    backend: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from outcomes.ingest.pseudonym import load_key

    path = tmp_path / "pseudonym.key"
    path.write_text("k" * 40)
    monkeypatch.setenv("OUTCOMES_PSEUDONYM_KEY_FILE", str(path))
    assert load_key(use_airflow=False) == b"k" * 40
    monkeypatch.delenv("OUTCOMES_PSEUDONYM_KEY_FILE")
    assert load_key(use_airflow=False) == backend["OUTCOMES_PSEUDONYM_KEY"].encode()


def test_a_bad_value_from_the_backend_is_refused_naming_the_variable_never_showing_it(
    backend: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wrong = f"ftp://user:{secrets.token_urlsafe(8)}@hooks.example.org/"
    for key, value in local_backend(tmp_path, {"outcomes_alert_webhook": wrong}).items():
        monkeypatch.setenv(key, value)
    with pytest.raises(SettingError) as refused:
        setting("OUTCOMES_ALERT_WEBHOOK")
    message = str(refused.value)
    assert "OUTCOMES_ALERT_WEBHOOK" in message and "outcomes_alert_webhook" in message
    assert "http://" in message and wrong not in message and "user:" not in message


def test_a_backend_that_does_not_answer_is_a_clear_error(
    airflow_loaded: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OUTCOMES_PSEUDONYM_KEY", raising=False)
    monkeypatch.setenv("AIRFLOW__SECRETS__BACKEND", UNREACHABLE)
    with pytest.raises(SettingError, match=r"OUTCOMES_PSEUDONYM_KEY: the secrets backend could not be read"):
        setting("OUTCOMES_PSEUDONYM_KEY")
    monkeypatch.delenv("AIRFLOW__SECRETS__BACKEND")
    assert setting("OUTCOMES_PSEUDONYM_KEY") is None  # no backend configured: not looked up


def test_a_command_whose_backend_does_not_answer_stops_naming_the_setting(tmp_path: Path) -> None:
    """The ``outcomes`` command asks the backend through a child process (it has not loaded
    Airflow): a store that does not answer stops it with one error per secret, no traceback."""
    env = {
        **_environment(tmp_path),
        "AIRFLOW__SECRETS__BACKEND": UNREACHABLE,
        "PYTHONPATH": str(Path(__file__).parent),  # where support.unreachable_backend is
    }
    done = subprocess.run(
        [OUTCOMES, "env", "--all"], capture_output=True, text=True, env=env, timeout=300, check=False
    )
    assert done.returncode == 1, done.stdout + done.stderr
    errors = " ".join(done.stderr.split())
    for name in SECRET_SETTINGS:
        assert f"{name}: the secrets backend could not be read for the Variable {name.lower()}" in errors, (
            errors
        )
    assert "ConnectionError: vault.example.org:8200: connection refused" in errors
    assert "Traceback" not in done.stderr


def _environment(home: Path) -> dict[str, str]:
    """A deployment of its own under ``home``, with none of the session's settings: the secrets
    must come from the backend alone."""
    return {**own_environment(home), "OUTCOMES_ALERT_EMAIL_TO": "ops@example.org"}


@pytest.mark.slow
def test_a_run_with_every_secret_from_the_backend_uses_them_and_leaves_them_nowhere(
    warehouse: Warehouse, tmp_path: Path
) -> None:
    """``outcomes run`` with the warehouse's URL, the key, the webhook and the SMTP server only in
    the backend: the deliveries land in that warehouse under that key, a quarantined delivery's
    alert reaches the webhook at its secret address and the mail server with its password, and no
    secret is in the run's output, in any file it wrote (task, dbt and gate logs, the alerts log,
    dashboards, Airflow's home), or in a dump of either database (XComs, rendered task fields, run
    configurations: what Airflow's UI shows is read from there and from the logs)."""
    from outcomes.demo.sources import generate_sources
    from outcomes.ingest.pseudonym import Pseudonymiser

    home = Path(tempfile.mkdtemp(prefix="os-", dir="/tmp"))  # short: unix socket paths
    landing = home / "landing"
    generate_sources(landing, seed=42, until=dt.date.today())  # the demo's trial: it publishes
    rows = [row for form in range(5) for row in prom_rows(f"SEC{form}", 950_020)]
    for row in rows:
        if row["item"] == "eq5d_mobility":
            row["value"] = 9  # 1..3: 5 bad rows of 20, over the 5 % threshold: quarantined
    write_delivery(landing, "registry", f"{dt.date.today():%Y%m%d}T0230Z", {"proms.csv": rows})

    database = f"{warehouse.database}_sec"
    warehouse_password = secrets.token_urlsafe(16)
    token = secrets.token_urlsafe(16)
    key = secrets.token_hex(32)
    url = make_url(warehouse.admin_url).set(database=database, password=warehouse_password)
    env = _environment(home)
    try:
        with webhook_receiver(f"/hooks/{token}") as (hook, posted), smtp_receiver() as mailbox:
            variables = {
                "outcomes_warehouse_url": url.render_as_string(hide_password=False),
                "outcomes_pseudonym_key": key,
                "outcomes_alert_webhook": hook,
                "outcomes_alert_smtp_url": f"smtp://alerts:{SMTP_PASSWORD}@127.0.0.1:{mailbox.port}",
            }
            env.update(local_backend(tmp_path, variables))
            done = subprocess.run(
                [OUTCOMES, "run"], capture_output=True, text=True, env=env, timeout=900, check=False
            )
            status = subprocess.run(
                [OUTCOMES, "status"], capture_output=True, text=True, env=env, timeout=300, check=False
            )
            settings_shown = subprocess.run(
                [OUTCOMES, "env", "--all"], capture_output=True, text=True, env=env, timeout=300, check=False
            )
        assert done.returncode == 0, done.stdout + done.stderr
        shown = dict(line.split("=", 1) for line in settings_shown.stdout.splitlines() if "=" in line)
        assert ":***@" in shown["OUTCOMES_WAREHOUSE_URL"], settings_shown.stdout
        for name in ("OUTCOMES_PSEUDONYM_KEY", "OUTCOMES_ALERT_WEBHOOK", "OUTCOMES_ALERT_SMTP_URL"):
            assert f"# {name} is set (not shown)" in settings_shown.stdout, name
        assert status.returncode == 0, status.stdout + status.stderr

        # the warehouse named only in the backend holds the deliveries, under the backend's key
        with psycopg.connect(url.render_as_string(hide_password=False)) as conn:
            statuses = dict(
                conn.execute("select status, count(*) from meta.deliveries group by status").fetchall()
            )
            enrolled = {r[0] for r in conn.execute("select person_pseudonym from raw.trial_enrolment")}
        assert statuses.get("quarantined") == 1 and statuses.get("loaded", 0) > 10, statuses
        pseudonymise = Pseudonymiser(key.encode())
        delivered = set()
        for path in (landing / "trial").rglob("enrolment.csv"):
            delivered |= {line.split(",")[1] for line in path.read_text().splitlines()[1:]}
        assert enrolled == {pseudonymise(fnr) for fnr in delivered}

        # the alert channels read from the backend: the webhook at its token's address, the mail
        # server with its password
        kinds = [alert["kind"] for alert in posted]
        assert "quarantined_delivery" in kinds, kinds
        assert mailbox.logins and {m.message["Subject"].split(":")[0] for m in mailbox.messages} >= {
            "[outcomes] quarantined_delivery"
        }

        secrets_ = {
            "the warehouse's password": warehouse_password,
            "the pseudonymisation key": key,
            "the webhook's token": token,
            "the SMTP password": SMTP_PASSWORD,
        }

        def leaks(text: bytes) -> list[str]:
            return [what for what, value in secrets_.items() if value.encode() in text]

        leaked: dict[str, list[str]] = {}
        for name, output in (
            ("outcomes run", done),
            ("outcomes status", status),
            ("outcomes env", settings_shown),
        ):
            if found := leaks((output.stdout + output.stderr).encode()):
                leaked[name] = found
        scanned = 0
        for path in sorted(home.rglob("*")):
            if path.is_file() and not path.is_symlink() and not path.is_relative_to(landing):
                scanned += 1
                if found := leaks(path.read_bytes()):
                    leaked[str(path.relative_to(home))] = found
        written = {path.relative_to(home).parts[0] for path in home.rglob("*") if path.is_file()}
        assert scanned > 50 and {"alerts.log", "dbt", "gx", "dashboards"} <= written, written
        for name in (database, f"{database}_airflow"):
            if found := leaks(
                pg_dump(make_url(warehouse.admin_url).set(database=name).render_as_string(False))
            ):
                leaked[f"database {name}"] = found
        assert not leaked, leaked
    finally:
        with psycopg.connect(warehouse.admin_url, autocommit=True) as conn:
            for name in (database, f"{database}_airflow"):
                conn.execute(f'drop database if exists "{name}" with (force)')
        shutil.rmtree(home, ignore_errors=True)
