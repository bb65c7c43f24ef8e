"""``make up`` / ``make down``: Airflow on this machine, in the background, with the project's DAGs.

``up`` prepares everything (warehouse, Airflow metadata database, parsed dbt manifest), starts
``airflow standalone`` (api-server, scheduler, dag-processor, triggerer; LocalExecutor sized for
the machine) in its own process group with its log under ``$AIRFLOW_HOME``, waits until the API
answers, unpauses the project's DAGs so their schedules run, and says where to sign in. ``down``
stops the whole process group.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from outcomes.contracts.registry import ingest_dag_id, source_names
from outcomes.orchestration import BUILD_DAG_ID, MAINTENANCE_DAG_ID
from outcomes.settings import Settings

#: The DAGs ``up`` unpauses (new DAGs start paused: AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION).
DAG_IDS = (
    MAINTENANCE_DAG_ID,
    *(ingest_dag_id(source) for source in source_names()),
    BUILD_DAG_ID,
)


@dataclass(frozen=True)
class Running:
    pid: int
    url: str
    username: str
    password: str | None
    log: Path


def _pid_file(settings: Settings) -> Path:
    return settings.airflow_home / "standalone.pid"


def _port() -> int:
    return int(os.environ.get("AIRFLOW__API__PORT") or 8080)


def running_pid(settings: Settings) -> int | None:
    """The process group of a running ``up``, or None."""
    path = _pid_file(settings)
    try:
        pid = int(path.read_text().strip())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return None
    return pid


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/api/v2/monitor/health", timeout=3) as answer:  # noqa: S310
            return bool(answer.status == 200)
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
        return False


def _password(settings: Settings, username: str) -> str | None:
    path = settings.airflow_home / "simple_auth_manager_passwords.json.generated"
    try:
        return str(json.loads(path.read_text())[username])
    except (OSError, ValueError, KeyError):
        return None


def up(settings: Settings, timeout_seconds: float = 240) -> Running:
    """Start ``airflow standalone`` in the background (or find it running) and unpause the DAGs."""
    from outcomes.runners import airflow_env, inprocess

    url = f"http://localhost:{_port()}"
    log = settings.airflow_home / "standalone.log"
    pid = running_pid(settings)
    if pid is None:
        inprocess.prepare(settings)
        os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "INFO")
        # tasks report to the API server's execution API: on the port it listens on
        os.environ.setdefault("AIRFLOW__CORE__EXECUTION_API_SERVER_URL", f"{url}/execution/")
        airflow = airflow_env.airflow_binary()
        with log.open("ab") as out:
            process = subprocess.Popen(
                [airflow, "standalone"],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # its own process group: `down` stops every component
                env=dict(os.environ),
            )
        pid = process.pid
        _pid_file(settings).write_text(str(pid))
        deadline = time.monotonic() + timeout_seconds
        while not _healthy(url):
            if process.poll() is not None:
                raise RuntimeError(f"airflow standalone exited ({process.returncode}); see {log}")
            if time.monotonic() > deadline:
                down(settings)
                raise RuntimeError(
                    f"Airflow did not answer on {url} within {timeout_seconds:.0f} s; see {log}"
                )
            time.sleep(2)
    password = _password(settings, "admin")
    unpause(url, "admin", password)
    return Running(pid=pid, url=url, username="admin", password=password, log=log)


def unpause(url: str, username: str, password: str | None, timeout_seconds: float = 180) -> None:
    """Unpause the project's DAGs through the REST API, once the dag-processor has parsed them."""
    if password is None:
        raise RuntimeError("no admin password: see simple_auth_manager_passwords.json.generated")
    token = api(url, "POST", "/auth/token", None, {"username": username, "password": password})[
        "access_token"
    ]
    waiting = set(DAG_IDS)
    deadline = time.monotonic() + timeout_seconds
    while waiting:
        for dag_id in sorted(waiting):
            try:
                api(url, "PATCH", f"/api/v2/dags/{dag_id}", token, {"is_paused": False})
                waiting.discard(dag_id)
            except urllib.error.HTTPError as error:
                if error.code != 404:  # 404: not parsed yet
                    raise
        if waiting and time.monotonic() > deadline:
            raise RuntimeError(
                f"DAGs not parsed within {timeout_seconds:.0f} s: {', '.join(sorted(waiting))}"
            )
        if waiting:
            time.sleep(2)


def api(url: str, method: str, path: str, token: str | None, body: dict[str, object] | None = None) -> Any:
    """One JSON call to Airflow's REST API (v2; a bearer token from ``POST /auth/token``)."""
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(f"{url}{path}", data=data, method=method, headers=headers)  # noqa: S310
    with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310
        return json.loads(answer.read() or b"null")


def down(settings: Settings, timeout_seconds: float = 60) -> bool:
    """Stop a running ``up`` (every process of its group). True if one was running."""
    pid = running_pid(settings)
    if pid is None:
        _pid_file(settings).unlink(missing_ok=True)
        return False
    os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_seconds
    while time.monotonic() < deadline:
        try:
            os.killpg(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.5)
    else:
        os.killpg(pid, signal.SIGKILL)
    _pid_file(settings).unlink(missing_ok=True)
    return True
