"""A multi-process Airflow deployment on this machine, as docker compose's ``celery`` profile runs
it on many: api-server, scheduler, dag-processor, triggerer and Celery workers, each its own
process, a Redis broker (the machine's, on 6379) and the warehouse's PostgreSQL for the metadata
database and Celery's results. Used by ``tests/test_celery.py``."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from support.ports import api_healthy, free_port

AIRFLOW = str(Path(sys.executable).parent / "airflow")
TESTS_DIR = Path(__file__).resolve().parent.parent
#: The Redis the machine runs (CI too); a queue of its own per cluster keeps runs apart.
REDIS_URL = os.environ.get("OUTCOMES_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def worker_name() -> str:
    """``[core] hostname_callable`` of the cluster: each worker reports its own name, so a test can
    see which worker ran which task (both run on this one host)."""
    return os.environ.get("OUTCOMES_TEST_WORKER_NAME") or "main"


def redis_available(url: str = REDIS_URL) -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=2).ping())
    except redis.RedisError:
        return False


@dataclass
class Cluster:
    """The components of one Airflow deployment, started by :meth:`start`, stopped by :meth:`stop`."""

    env: dict[str, str]
    folder: Path
    url: str
    username: str = "admin"
    password: str = field(default_factory=lambda: secrets.token_urlsafe(12))
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    logs: dict[str, IO[bytes]] = field(default_factory=dict)
    worker_count: int = 2

    @classmethod
    def celery(cls, base_env: Mapping[str, str], folder: Path, *, workers: int = 2) -> Cluster:
        """The environment of a CeleryExecutor deployment (``base_env``: the project's settings)."""
        port = free_port()
        queue = f"outcomes_test_{secrets.token_hex(4)}"
        url = f"http://127.0.0.1:{port}"
        env = dict(base_env)
        cluster = cls(env=env, folder=folder, url=url, worker_count=workers)
        passwords = folder / "passwords.json"
        passwords.write_text(json.dumps({cluster.username: cluster.password}))
        env.update(
            {
                "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
                "AIRFLOW__CELERY__BROKER_URL": REDIS_URL,
                "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"],
                "AIRFLOW__CELERY__WORKER_CONCURRENCY": "2",
                "AIRFLOW__OPERATORS__DEFAULT_QUEUE": queue,
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{url}/execution/",
                "AIRFLOW__CORE__HOSTNAME_CALLABLE": "support.cluster.worker_name",
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{cluster.username}:admin",
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
                "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
                "AIRFLOW__API__PORT": str(port),
                "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
                "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": "0.5",
                "PYTHONPATH": os.pathsep.join(filter(None, [str(TESTS_DIR), env.get("PYTHONPATH")])),
                "OUTCOMES_TEST_QUEUE": queue,
            }
        )
        return cluster

    def _start(self, name: str, args: list[str], extra: Mapping[str, str] | None = None) -> None:
        log = (self.folder / f"{name}.log").open("wb")
        self.logs[name] = log
        self.processes[name] = subprocess.Popen(
            [AIRFLOW, *args],
            env={**self.env, **(extra or {})},
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )

    def start(self, timeout_seconds: float = 240) -> None:
        """Every component, then wait until the API answers and every worker is registered."""
        port = self.env["AIRFLOW__API__PORT"]
        self._start("api-server", ["api-server", "--host", "127.0.0.1", "--port", port])
        self._start("scheduler", ["scheduler"])
        self._start("dag-processor", ["dag-processor"])
        self._start("triggerer", ["triggerer"])
        queue = self.env["OUTCOMES_TEST_QUEUE"]
        for n in range(1, self.worker_count + 1):
            name = f"worker-{n}"
            self._start(
                name,
                ["celery", "worker", "--celery-hostname", f"{name}@%h", "--queues", queue],
                {
                    "OUTCOMES_TEST_WORKER_NAME": name,
                    # two workers on one host: each serves its task logs on a port of its own
                    "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
                },
            )
        deadline = time.monotonic() + timeout_seconds
        while not self.healthy():
            self.check_alive()
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"the API server did not answer within {timeout_seconds:.0f} s\n{self.tail()}"
                )
            time.sleep(2)

    def healthy(self) -> bool:
        """Whether the API server answers its health endpoint."""
        return api_healthy(self.url)

    def check_alive(self) -> None:
        dead = {name: p.returncode for name, p in self.processes.items() if p.poll() is not None}
        if dead:
            raise RuntimeError(f"components exited: {dead}\n{self.tail()}")

    def tail(self, chars: int = 2500) -> str:
        """The end of every component's log, for a failure message."""
        parts = []
        for name in self.processes:
            path = self.folder / f"{name}.log"
            text = path.read_text(errors="replace") if path.exists() else ""
            parts.append(f"--- {name} ---\n{text[-chars:]}")
        return "\n".join(parts)

    def token(self) -> str:
        answer = self.api("POST", "/auth/token", None, {"username": self.username, "password": self.password})
        return str(answer["access_token"])

    def api(self, method: str, path: str, token: str | None, body: dict[str, Any] | None = None) -> Any:
        from outcomes.runners.standalone import api

        return api(self.url, method, path, token, body)

    def stop(self) -> None:
        import signal

        for process in self.processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + 60
        for process in self.processes.values():
            try:
                process.wait(timeout=max(1.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        for log in self.logs.values():
            log.close()


def wait_until(what: str, processes: Any, check: Any, timeout_seconds: float) -> Any:
    """Poll ``check`` until it returns a true value; every process of ``processes`` (a Cluster or
    a compose deployment: ``check_alive()`` and ``tail()``) must stay up meanwhile."""
    import pytest

    deadline = time.monotonic() + timeout_seconds
    while True:
        value = check()
        if value:
            return value
        processes.check_alive()
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}\n{processes.tail()}")
        time.sleep(3)
