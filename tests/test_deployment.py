"""The deployment files, checked without a container engine (this machine has none): the compose
file's services and profiles (tests/test_compose.py resolves it with docker-compose and runs it),
every variable it references listed in .env.example (every setting the code reads is held to
.env.example by tests/test_settings.py), no secret values, and the image's Airflow and Python
equal to the lock's."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
ENV_KEYS = {
    line.split("=", 1)[0]
    for line in (ROOT / ".env.example").read_text().splitlines()
    if line and not line.startswith("#")
}


def locked_version(package: str) -> str:
    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    return next(p["version"] for p in lock["package"] if p["name"] == package)


def test_the_services_and_the_celery_profile() -> None:
    services = COMPOSE["services"]
    assert set(services) == {
        "postgres",
        "airflow-init",
        "api-server",
        "scheduler",
        "dag-processor",
        "triggerer",
        "redis",
        "celery-worker",
    }
    assert {name for name, s in services.items() if "celery" in s.get("profiles", [])} == {
        "redis",
        "celery-worker",
    }
    # the components start with the project's Airflow settings (`outcomes airflow`), only once
    # airflow-init (`outcomes prepare`: migrations, the dbt manifest, no DAG import error) succeeded
    assert services["airflow-init"]["command"] == ["bash", "-c", "exec outcomes prepare"]
    for name in ("api-server", "scheduler", "dag-processor", "triggerer", "celery-worker"):
        component = name.replace("celery-worker", "celery worker")
        assert services[name]["command"] == ["bash", "-c", f"exec outcomes airflow {component}"]
        assert services[name]["depends_on"]["airflow-init"]["condition"] == "service_completed_successfully"
    assert services["dag-processor"]["healthcheck"]["test"] == ["CMD", "outcomes", "dag-errors"]
    assert "postgres-data:/var/lib/postgresql/data" in services["postgres"]["volumes"]


def test_every_variable_the_compose_file_references_is_in_env_example() -> None:
    text = (ROOT / "docker-compose.yml").read_text()
    referenced = set(re.findall(r"\$\{([A-Z0-9_]+)", text))
    assert referenced and referenced <= ENV_KEYS, sorted(referenced - ENV_KEYS)


def test_no_secret_has_a_value_in_the_committed_files() -> None:
    for line in (ROOT / ".env.example").read_text().splitlines():
        if (
            line
            and not line.startswith("#")
            and re.search(r"PASSWORD|SECRET|_KEY$|FERNET", line.split("=")[0])
        ):
            assert line.endswith("="), line
    for service in COMPOSE["services"].values():
        for key, value in (service.get("environment") or {}).items():
            if re.search(r"PASSWORD|SECRET", key):
                assert str(value).startswith("${"), key


def test_the_image_runs_the_locked_airflow_on_the_projects_python() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    base = re.search(r"^FROM apache/airflow:(\S+)-python(\d+\.\d+)$", dockerfile, re.M)
    assert base is not None
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert base.group(1) == locked_version("apache-airflow")
    assert project["requires-python"].startswith(f">={base.group(2)}")
    makefile_uv = re.search(r"^UV_VERSION := (\S+)$", (ROOT / "Makefile").read_text(), re.M)
    assert makefile_uv is not None and f"uv=={makefile_uv.group(1)}" in dockerfile


#: What a working checkout holds that must never reach an image (relative paths, planted below).
HAZARDS = (
    ".env",  # passwords, the pseudonymisation key
    ".outcomes/pg/base/16384/2619",  # the embedded warehouse: health data
    ".outcomes/demo-pseudonym.key",
    "landing/trial/20261121T2300Z/enrolment.csv",  # deliveries: national identity numbers
    "secrets/pseudonym.key",
    "plugins/.env",
    "plugins/outcomes/.env.local",
    "dags/id_rsa.pem",
    "dags/id_rsa",
    "plugins/outcomes/site.p12",
    "dbt_project/landing/trial/20261121T2300Z/enrolment.csv",  # a landing zone inside a let-in folder
    "expectations/.outcomes/pg/base/1/1",
    "plugins/outcomes/look-at-the-extract.ipynb",
    "plugins/outcomes/__pycache__/settings.cpython-311.pyc",
    "dbt_project/target/manifest.json",
    "dbt_project/logs/dbt.log",
    ".venv/bin/python",
    "test-artifacts/trace.zip",
    ".git/config",
)


def build_context(root: Path) -> set[str]:
    """The files of the build context of ``root``, as the Docker client sends it: its
    ``.dockerignore`` read and matched by docker-py's implementation of Docker's rules."""
    from docker.utils.build import exclude_paths

    ignore = root / ".dockerignore"
    patterns = [
        line.strip()
        for line in ignore.read_text().splitlines()
        if line.strip() and not line.strip().startswith("#")
    ]
    return {path for path in exclude_paths(str(root), patterns) if (root / path).is_file()}


def test_the_image_build_context_holds_the_project_and_never_secrets_or_data(tmp_path: Path) -> None:
    """The Dockerfile copies its context whole: a checkout with a .env, an embedded warehouse, a
    landing zone and key files must send none of them, and send everything the image installs."""
    import shutil

    from support.repository import tracked_files

    tracked = tracked_files()
    for name in tracked:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ROOT / name, tmp_path / name)
    (tmp_path / ".dockerignore").write_text((ROOT / ".dockerignore").read_text())
    for name in HAZARDS:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("OUTCOMES_PSEUDONYM_KEY=not-in-any-image\n")

    context = build_context(tmp_path)
    assert not context & set(HAZARDS), sorted(context & set(HAZARDS))
    # (the client always sends the Dockerfile and the .dockerignore)
    needed = {"pyproject.toml", "uv.lock", "README.md", "Dockerfile", ".dockerignore"} | {
        name for name in tracked if name.split("/")[0] in {"dags", "plugins", "dbt_project", "expectations"}
    }
    assert needed <= context, sorted(needed - context)
    # and nothing else: tests, benchmarks, docs and the CI scripts stay out of the image too
    assert context == needed, sorted(context - needed)
