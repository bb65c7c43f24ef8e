"""docker compose's services as processes on this machine, which has no container engine.

The compose file is resolved by a real compose implementation (Debian's ``docker-compose``: it
interpolates the .env, merges the anchors and ``env_file``, and fails on errors such as a missing
``${VAR:?}``); then every service is started in dependency order, each ``command`` run as a local
process with the environment and the volumes the resolved file gives it. What a container would
have is mapped to this machine, and nothing else is changed:

- ``postgres`` is the machine's PostgreSQL server (its host and port), with the databases the file
  names (``outcomes``, ``outcomes_airflow``) renamed to fresh ones of this run;
- ``redis`` is a ``redis-server`` of this run on a free port (the image's command);
- a service's host name is 127.0.0.1, and a port private to a container (the API server's 8080,
  the task log servers) is a free port here, as each container has a network of its own;
- a named volume is a folder of this run, a bind mount its host folder, and a container path in a
  value the folder mounted there;
- the image is the checkout: its ``ENV`` lines (the Dockerfile's, and the official image's
  ``AIRFLOW_HOME``), the project it copies to ``/opt/outcomes`` and its working directory are the
  checkout, and its ``PATH`` starts with this environment's ``bin`` (``outcomes``, ``airflow``).
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import signal
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import yaml

from support.ports import api_healthy, free_port

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
#: The official image's own ENV that the Dockerfile builds on (apache/airflow's Dockerfile).
BASE_IMAGE_ENV = {"AIRFLOW_HOME": "/opt/airflow"}
#: Services of other images, and what stands in for them here.
REPLACED = {"postgres", "redis"}


def resolve(
    compose_file: Path, env_text: str, folder: Path, profiles: tuple[str, ...] = ()
) -> dict[str, Any]:
    """``docker-compose config`` of ``compose_file`` with ``env_text`` as its ``.env`` (both copied
    into ``folder``, the project directory); raises with compose's message when it refuses."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / compose_file.name).write_text(compose_file.read_text())
    (folder / ".env").write_text(env_text)
    args = ["docker-compose", "--project-directory", str(folder), "-f", str(folder / compose_file.name)]
    for profile in profiles:
        args += ["--profile", profile]
    # compose interpolates from the shell's environment before the .env: an operator's shell, not
    # the test session's (its OUTCOMES_* would win over the file's defaults)
    shell = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(folder)}
    done = subprocess.run(
        [*args, "config"], capture_output=True, text=True, timeout=120, cwd=folder, env=shell
    )
    if done.returncode != 0:
        raise RuntimeError(f"docker-compose config failed ({done.returncode}):\n{done.stderr}")
    config: dict[str, Any] = yaml.safe_load(done.stdout)
    return config


def active_services(config: Mapping[str, Any], profiles: tuple[str, ...]) -> list[str]:
    """The services ``up`` starts (no profile, or an active one), in dependency order."""
    services = config["services"]
    active = [n for n, s in services.items() if not s.get("profiles") or set(s["profiles"]) & set(profiles)]
    ordered: list[str] = []

    def visit(name: str) -> None:
        if name in ordered:
            return
        for needed in services[name].get("depends_on") or {}:
            visit(needed)
        ordered.append(name)

    for name in active:
        visit(name)
    return ordered


def image_environ(dockerfile: Path) -> tuple[dict[str, str], str]:
    """The image's ``ENV`` (the base image's, then the Dockerfile's) and its ``WORKDIR``."""
    text = re.sub(r"\\\n", " ", dockerfile.read_text())
    env = dict(BASE_IMAGE_ENV)
    workdir = "/"
    for line in text.splitlines():
        word, _, rest = line.strip().partition(" ")
        if word == "ENV":
            for item in shlex.split(rest):
                key, _, value = item.partition("=")
                env[key] = value
        elif word == "WORKDIR":
            workdir = rest.strip()
    return env, workdir


def copied_project(dockerfile: Path) -> str:
    """Where the Dockerfile copies the build context (``COPY [flags] . <dest>``)."""
    found = re.search(r"^COPY (?:--\S+ )*\. (\S+)$", dockerfile.read_text(), re.M)
    assert found, "the Dockerfile does not COPY the project"
    return found[1]


@dataclass
class LocalMap:
    """How a container's names, ports and paths are reached on this machine."""

    hosts: dict[str, str] = field(default_factory=dict)  # "service:port" -> "127.0.0.1:port"
    databases: dict[str, str] = field(default_factory=dict)  # the file's database -> this run's
    postgres: str = "127.0.0.1:5432"
    paths: dict[str, Path] = field(default_factory=dict)  # container path -> local path

    def value(self, text: str) -> str:
        for container, local in self.hosts.items():  # a host in a URL: after "//" or "user@"
            text = re.sub(rf"(?<=[@/]){re.escape(container)}\b", local, text)
        text = re.sub(
            rf"({re.escape(self.postgres)}/)(\w+)",
            lambda m: m[1] + self.databases.get(m[2], m[2]),
            text,
        )
        for container in sorted(self.paths, key=len, reverse=True):
            if text == container or text.startswith(container + "/"):
                return str(self.paths[container]) + text[len(container) :]
        return text


@dataclass
class LocalDeployment:
    """The resolved compose project's services as processes: :meth:`up`, :meth:`down`."""

    config: dict[str, Any]
    profiles: tuple[str, ...]
    folder: Path
    server: tuple[str, int]
    databases: dict[str, str]
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    logs: dict[str, IO[bytes]] = field(default_factory=dict)
    mapping: LocalMap = field(default_factory=LocalMap)
    api_port: int = 0

    def __post_init__(self) -> None:
        host, port = self.server
        self.mapping.postgres = f"{host}:{port}"
        self.mapping.hosts["postgres:5432"] = self.mapping.postgres
        self.mapping.databases = dict(self.databases)
        self.api_port = free_port()
        self.mapping.hosts["api-server:8080"] = f"127.0.0.1:{self.api_port}"
        self.redis_port = free_port()
        self.mapping.hosts["redis:6379"] = f"127.0.0.1:{self.redis_port}"
        dockerfile = ROOT / "Dockerfile"
        self.image_env, workdir = image_environ(dockerfile)
        self.mapping.paths[copied_project(dockerfile)] = ROOT
        self.mapping.paths[BASE_IMAGE_ENV["AIRFLOW_HOME"]] = self.folder / "image-airflow-home"
        for service in self.config["services"].values():
            for volume in service.get("volumes") or []:
                source, target = str(volume).split(":")[:2]
                local = Path(source) if source.startswith("/") else self.folder / "volumes" / source
                local.mkdir(parents=True, exist_ok=True)
                self.mapping.paths[target] = local
        self.workdir = Path(self.mapping.value(workdir))
        (self.folder / "logs").mkdir(parents=True, exist_ok=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def environ(self, name: str) -> dict[str, str]:
        """The process environment of service ``name``: the image's, then the service's, mapped."""
        env = {
            "PATH": os.pathsep.join([str(BIN), "/usr/local/bin", "/usr/bin", "/bin"]),
            "HOME": str(self.folder / "home"),
            "LANG": "C.UTF-8",
        }
        env.update({k: self.mapping.value(v) for k, v in self.image_env.items()})
        service = self.config["services"][name]
        env.update({k: self.mapping.value(str(v)) for k, v in (service.get("environment") or {}).items()})
        # the ports a container has to itself: the API's, and the task log servers of every component
        env["AIRFLOW__API__PORT"] = str(self.api_port if name == "api-server" else free_port())
        env["AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT"] = str(free_port())
        env["AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT"] = str(free_port())
        return env

    def command(self, name: str) -> list[str]:
        command = self.config["services"][name]["command"]
        return [self.mapping.value(part) for part in command]

    def start(self, name: str, args: list[str], env: Mapping[str, str]) -> subprocess.Popen[bytes]:
        log = (self.folder / "logs" / f"{name}.log").open("wb")
        self.logs[name] = log
        process = subprocess.Popen(
            args,
            env=dict(env),
            cwd=self.workdir,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        self.processes[name] = process
        return process

    def run_once(self, name: str, timeout_seconds: float = 600, **overrides: str) -> tuple[int, str]:
        """Run a service that ends (``airflow-init``) to its exit: its code and its log."""
        process = self.start(name, self.command(name), {**self.environ(name), **overrides})
        try:
            code = process.wait(timeout=timeout_seconds)
        finally:
            self.stop_one(name)
        return code, self.log(name)

    def up(self) -> None:
        """Every active service in dependency order, each waiting for the condition its dependants
        name: the server answering (``service_healthy``), an exit 0 (``service_completed_successfully``)."""
        for name in active_services(self.config, self.profiles):
            service = self.config["services"][name]
            if name == "postgres":
                self._server_answers()
                continue
            if name == "redis":
                self.start(
                    name,
                    [
                        "redis-server",
                        "--port",
                        str(self.redis_port),
                        "--bind",
                        "127.0.0.1",
                        "--save",
                        "",
                        "--appendonly",
                        "no",
                    ],
                    {"PATH": "/usr/bin:/bin"},
                )
                continue
            completed = any(
                (s.get("depends_on") or {}).get(name, {}).get("condition") == "service_completed_successfully"
                for s in self.config["services"].values()
            )
            if completed:
                code, log = self.run_once(name)
                if code != 0:
                    raise RuntimeError(f"{name} exited {code}:\n{log[-6000:]}")
                continue
            replicas = int((service.get("deploy") or {}).get("replicas") or 1)
            for n in range(1, replicas + 1):
                label = name if replicas == 1 else f"{name}-{n}"
                self.start(label, self.command(name), self.environ(name))

    def _server_answers(self) -> None:
        import psycopg

        host, port = self.server
        with psycopg.connect(host=host, port=port, user="postgres", dbname="postgres", connect_timeout=5):
            pass

    def healthy(self) -> bool:
        """Whether the API server answers its health endpoint."""
        return api_healthy(self.url)

    def healthcheck(self, name: str, **overrides: str) -> tuple[int, str]:
        """Run service ``name``'s healthcheck command (``CMD ...``) as the container would."""
        test = self.config["services"][name]["healthcheck"]["test"]
        assert test[0] == "CMD", test
        done = subprocess.run(
            [self.mapping.value(p) for p in test[1:]],
            env={**self.environ(name), **overrides},
            cwd=self.workdir,
            capture_output=True,
            text=True,
            timeout=120,
        )
        return done.returncode, done.stdout + done.stderr

    def check_alive(self) -> None:
        dead = {n: p.returncode for n, p in self.processes.items() if p.poll() is not None}
        if dead:
            raise RuntimeError(f"services exited: {dead}\n{self.tail()}")

    def log(self, name: str) -> str:
        path = self.folder / "logs" / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def tail(self, chars: int = 3000) -> str:
        return "\n".join(f"--- {n} ---\n{self.log(n)[-chars:]}" for n in self.processes)

    def stop_one(self, name: str) -> None:
        process = self.processes.pop(name)
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        else:  # its children (a task's process) may outlive it
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
        self.logs.pop(name).close()

    def down(self) -> None:
        """Stop every process group this deployment started (also their task processes)."""
        for name in list(self.processes):
            self.stop_one(name)
