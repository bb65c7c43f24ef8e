"""docker compose that starts, proved without a container engine (this machine has none):
``docker-compose.yml`` resolved by Debian's docker-compose with a .env of random secrets, then
every service's command run as a process with the environment and volumes the file gives it
(``support.compose`` says how a container's names, ports and paths map to this machine), against
the PostgreSQL server here. ``airflow-init`` must exit 0, the components must stay up with no DAG
import error, and a delivery dropped into the landing zone must reach a published build with no
other step: the DAGs run from the start, on their schedules (every minute here) and the Assets.
Both ``docker compose up`` and ``docker compose --profile celery up``. ``make test-deployment``."""

from __future__ import annotations

import datetime as dt
import os
import secrets
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from cryptography.fernet import Fernet
from support.cluster import wait_until
from support.compose import ROOT, LocalDeployment, active_services, resolve

from outcomes.contracts.registry import source_names

# The runs of the deployment are marked `deployment` (`make test-deployment`, CI); the checks of
# the resolved file are quick and run in `make test`.

SERVER_URL = os.environ.get("OUTCOMES_TEST_WAREHOUSE_URL") or "postgresql://postgres@127.0.0.1:5432/postgres"
COMPOSE_FILE = ROOT / "docker-compose.yml"


def dot_env(landing: Path, *, celery: bool) -> dict[str, str]:
    """A .env as an operator fills in from .env.example: random secrets, the landing folder; the
    ingests every minute (their nightly times would keep a test waiting) and the build on the
    Assets alone (its nightly time might fall inside the run)."""
    env = {
        "POSTGRES_PASSWORD": secrets.token_urlsafe(16),
        "AIRFLOW_ADMIN_PASSWORD": secrets.token_urlsafe(16),
        "AIRFLOW__CORE__FERNET_KEY": Fernet.generate_key().decode(),
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
        "OUTCOMES_PSEUDONYM_KEY": secrets.token_hex(32),
        "OUTCOMES_LANDING_HOST_DIR": str(landing),
        "OUTCOMES_AIRFLOW_PARALLELISM": "4",
        "OUTCOMES_POKE_SECONDS": "5",
        "OUTCOMES_RETRY_DELAY_SECONDS": "5",
        "OUTCOMES_SCHEDULE_BUILD": "manual",
        **{f"OUTCOMES_SCHEDULE_{s.upper()}": "* * * * *" for s in source_names()},
    }
    if celery:
        env["AIRFLOW__CORE__EXECUTOR"] = "CeleryExecutor"
    return env


def env_text(env: dict[str, str]) -> str:
    return "".join(f"{key}={value}\n" for key, value in env.items())


@pytest.fixture
def databases() -> Iterator[dict[str, str]]:
    """Fresh names for the file's two databases on the server, dropped afterwards."""
    name = f"outcomes_compose_{secrets.token_hex(4)}"
    names = {"outcomes": name, "outcomes_airflow": f"{name}_airflow"}
    try:
        yield names
    finally:
        with psycopg.connect(SERVER_URL, autocommit=True) as conn:
            for database in names.values():
                conn.execute(f'drop database if exists "{database}" with (force)')


def server() -> tuple[str, int]:
    from sqlalchemy.engine import make_url

    url = make_url(SERVER_URL)
    return url.host or "127.0.0.1", url.port or 5432


def deployment_for(
    tmp_path: Path, databases: dict[str, str], *, celery: bool
) -> tuple[LocalDeployment, dict[str, str]]:
    landing = tmp_path / "landing"
    landing.mkdir()
    env = dot_env(landing, celery=celery)
    profiles = ("celery",) if celery else ()
    config = resolve(COMPOSE_FILE, env_text(env), tmp_path / "project", profiles)
    return LocalDeployment(config, profiles, tmp_path / "run", server(), databases), env


def test_compose_config_refuses_a_missing_secret(tmp_path: Path) -> None:
    """The file's ``${POSTGRES_PASSWORD:?}``: compose refuses to start without it."""
    env = dot_env(tmp_path, celery=False)
    del env["POSTGRES_PASSWORD"]
    with pytest.raises(RuntimeError, match="POSTGRES_PASSWORD"):
        resolve(COMPOSE_FILE, env_text(env), tmp_path / "project")


def test_the_profiles_start_the_services_they_name(tmp_path: Path) -> None:
    env = env_text(dot_env(tmp_path, celery=False))
    plain = active_services(resolve(COMPOSE_FILE, env, tmp_path / "a"), ())
    celery = active_services(resolve(COMPOSE_FILE, env, tmp_path / "b", ("celery",)), ("celery",))
    assert plain[:2] == ["postgres", "airflow-init"]
    assert set(plain) == {"postgres", "airflow-init", "api-server", "scheduler", "dag-processor", "triggerer"}
    assert set(celery) == set(plain) | {"redis", "celery-worker"}


def api(deployment: LocalDeployment, env: dict[str, str], path: str) -> object:
    from outcomes.runners.standalone import api as call

    token = call(
        deployment.url,
        "POST",
        "/auth/token",
        None,
        {"username": "admin", "password": env["AIRFLOW_ADMIN_PASSWORD"]},
    )["access_token"]
    return call(deployment.url, "GET", path, token)


def drop_deliveries(
    deployment: LocalDeployment, databases: dict[str, str], landing: Path, staging: Path
) -> None:
    """The synthetic source systems' deliveries, written aside and moved into the landing zone in
    the sources' nightly order: the trial's first (its enrolment names the participants the
    employment rows must belong to; its schedule is the earliest), the others once it is applied."""
    from outcomes.demo.sources import generate_sources

    generate_sources(staging, seed=42, until=dt.datetime.now(dt.UTC).date())
    first, *others = source_names()
    trial = sorted(p.name for p in (staging / first).iterdir())
    shutil.move(str(staging / first), landing / first)

    def applied() -> bool:
        host, port = deployment.server
        with psycopg.connect(host=host, port=port, user="postgres", dbname=databases["outcomes"]) as conn:
            rows = conn.execute("select delivery_id from meta.deliveries where source = %s", (first,))
            return sorted(r[0] for r in rows) == trial

    wait_until(f"the {first} deliveries applied", deployment, applied, 600)
    for source in others:
        shutil.move(str(staging / source), landing / source)


def build_state(deployment: LocalDeployment, databases: dict[str, str]) -> str | None:
    """The newest build_outcomes run's state once it ended, from Airflow's database."""
    host, port = deployment.server
    with psycopg.connect(host=host, port=port, user="postgres", dbname=databases["outcomes_airflow"]) as conn:
        row = conn.execute(
            "select state from dag_run where dag_id = 'build_outcomes' order by id desc limit 1"
        ).fetchone()
    return str(row[0]) if row and row[0] in {"success", "failed"} else None


@pytest.mark.slow
@pytest.mark.deployment
@pytest.mark.parametrize("celery", [False, True], ids=["up", "profile-celery"])
def test_compose_up_reaches_a_published_build(
    tmp_path: Path, databases: dict[str, str], celery: bool
) -> None:
    deployment, env = deployment_for(tmp_path, databases, celery=celery)
    timings: dict[str, float] = {}
    started = time.monotonic()
    try:
        deployment.up()
        timings["up"] = time.monotonic() - started
        wait_until("the API server", deployment, deployment.healthy, 240)
        files = len(list((ROOT / "dags").glob("*.py")))  # a DAG a file
        dags = wait_until(
            f"the {files} DAGs, parsed",
            deployment,
            lambda: (d := api(deployment, env, "/api/v2/dags"))["total_entries"] == files and d,
            240,
        )
        assert not [d["dag_id"] for d in dags["dags"] if d["is_paused"]], dags  # type: ignore[index]
        errors = api(deployment, env, "/api/v2/importErrors")
        assert errors["total_entries"] == 0, f"DAG import errors: {errors}\n{deployment.tail()}"  # type: ignore[index]
        timings["parsed"] = time.monotonic() - started

        drop_deliveries(deployment, databases, Path(env["OUTCOMES_LANDING_HOST_DIR"]), tmp_path / "staging")
        state = wait_until(
            "the Asset-triggered build", deployment, lambda: build_state(deployment, databases), 1200
        )
        timings["build"] = time.monotonic() - started
        assert state == "success", f"build_outcomes {state}\n{deployment.tail(6000)}"

        host, port = deployment.server
        with psycopg.connect(host=host, port=port, user="postgres", dbname=databases["outcomes"]) as conn:
            published = conn.execute("select gate_result from meta.published_builds").fetchall()
            marts = conn.execute(
                "select count(*) from information_schema.tables where table_schema = 'marts'"
            ).fetchone()
            rates = conn.execute("select count(*) from marts.agg_employment_rates").fetchone()
        assert published == [("passed",)]
        assert marts and marts[0] >= 10 and rates and rates[0] > 0, (marts, rates)
        # the dashboard snapshot, on the shared volume
        assert Path(deployment.mapping.value("/opt/outcomes-state/dashboards/latest.html")).exists()
        code, out = deployment.healthcheck("dag-processor")
        assert code == 0, out
        deployment.check_alive()
    finally:
        deployment.down()
        print("compose timings (s since start):", {k: round(v) for k, v in timings.items()})


@pytest.mark.slow
@pytest.mark.deployment
def test_a_dag_import_error_stops_airflow_init_and_fails_the_healthcheck(
    tmp_path: Path, databases: dict[str, str]
) -> None:
    """A DAG file that does not import: airflow-init exits 1 naming it (so compose starts no
    component); and a dag-processor parsing it makes the healthcheck fail, naming it too."""
    deployment, _ = deployment_for(tmp_path, databases, celery=False)
    dags = tmp_path / "dags"
    shutil.copytree(ROOT / "dags", dags, ignore=shutil.ignore_patterns("__pycache__"))
    (dags / "broken_dag.py").write_text("from airflow.sdk import DAG\n\nimport no_such_module\n")
    folder = {"AIRFLOW__CORE__DAGS_FOLDER": str(dags)}
    try:
        code, log = deployment.run_once("airflow-init", **folder)
        assert code == 1, log[-4000:]
        assert "broken_dag.py" in log and "no_such_module" in log, log[-4000:]

        environ = {**deployment.environ("dag-processor"), **folder}
        deployment.start("dag-processor", deployment.command("dag-processor"), environ)
        code, out = wait_until(
            "the import error recorded",
            deployment,
            lambda: (r := deployment.healthcheck("dag-processor", **folder))[0] != 0 and r,
            240,
        )
        assert code == 1 and "broken_dag.py" in out, out
    finally:
        deployment.down()
