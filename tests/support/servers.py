"""Real servers for the landing-zone tests, started on loopback and stopped again: OpenSSH's sshd
(Debian's openssh-server, which `make test` installs) serving SFTP with a key made for the test,
and moto's S3-compatible server (PyPI). Each can be stopped and started again on the same port,
to see what a landing zone that goes down does to the ingest."""

from __future__ import annotations

import getpass
import json
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from support.ports import free_port

SSHD = "/usr/sbin/sshd"


def _wait_for_port(port: int, process: subprocess.Popen[bytes], log: Path, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode}: {log.read_text()[-2000:]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {seconds} s: {log.read_text()[-2000:]}")


@dataclass
class Server:
    """A server process that can be stopped and started again on its port."""

    command: list[str]
    port: int
    log: Path
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                self.command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        _wait_for_port(self.port, self.process, self.log)

    def stop(self) -> None:
        """Down: the server and every process it started (sshd's per-connection children, in
        sessions of their own), so open connections drop as well."""
        import psutil

        if self.process is None:
            return
        try:
            processes = [psutil.Process(self.process.pid)]
            processes += processes[0].children(recursive=True)
        except psutil.NoSuchProcess:
            processes = []
        for process in processes:
            with suppress(psutil.NoSuchProcess):
                process.kill()
        psutil.wait_procs(processes, timeout=10)
        self.process.wait()
        self.process = None


@dataclass
class Landing:
    """A landing zone on a server: its URL, the Airflow connection with its credentials (as
    ``AIRFLOW_CONN_<ID>`` JSON), and the server."""

    url: str
    conn_id: str
    connection: dict[str, object]
    server: Server

    def env(self) -> dict[str, str]:
        return {
            "OUTCOMES_LANDING": self.url,
            "OUTCOMES_LANDING_CONN_ID": self.conn_id,
            f"AIRFLOW_CONN_{self.conn_id.upper()}": json.dumps(self.connection),
        }


@contextmanager
def openssh_sftp(workdir: Path, conn_id: str = "outcomes_landing") -> Iterator[tuple[Landing, Path]]:
    """OpenSSH's sshd on a free loopback port, SFTP only, a key pair and host key made here; the
    landing zone is a folder on the server (yielded too, to write deliveries into it as the
    source would, with the SFTP client of OpenSSH)."""
    if not Path(SSHD).exists():
        pytest.fail("OpenSSH's sshd is missing: `make test` installs it (apt-get install openssh-server)")
    keys = workdir / "ssh"
    keys.mkdir(parents=True)
    for name in ("host_key", "client_key"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(keys / name)], check=True)
    shutil.copy(keys / "client_key.pub", keys / "authorized_keys")
    port = free_port()
    known_hosts = keys / "known_hosts"
    host_type, host_key = (keys / "host_key.pub").read_text().split()[:2]
    known_hosts.write_text(f"[127.0.0.1]:{port} {host_type} {host_key}\n")
    user = getpass.getuser()
    config = keys / "sshd_config"
    config.write_text(
        "\n".join(
            [
                f"Port {port}",
                "ListenAddress 127.0.0.1",
                f"HostKey {keys / 'host_key'}",
                f"PidFile {keys / 'sshd.pid'}",
                f"AuthorizedKeysFile {keys / 'authorized_keys'}",
                "PubkeyAuthentication yes",
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no",
                "PermitRootLogin prohibit-password",
                "StrictModes no",
                "UsePAM no",
                f"AllowUsers {user}",
                "Subsystem sftp internal-sftp",
                "ForceCommand internal-sftp",
                "LogLevel VERBOSE",
                "",
            ]
        )
    )
    if os.geteuid() == 0:
        Path("/run/sshd").mkdir(exist_ok=True)  # sshd's privilege separation directory
    subprocess.run([SSHD, "-t", "-f", str(config)], check=True)
    root = workdir / "landing"
    root.mkdir()
    server = Server([SSHD, "-D", "-e", "-f", str(config)], port, workdir / "sshd.log")
    connection: dict[str, object] = {
        "conn_type": "sftp",
        "host": "127.0.0.1",
        "port": port,
        "login": user,
        "extra": {"key_file": str(keys / "client_key"), "known_hosts": str(known_hosts)},
    }
    server.start()
    try:
        yield Landing(f"sftp://127.0.0.1{root}", conn_id, connection, server), root
    finally:
        server.stop()


def sftp_put(landing: Landing, local: Path, remote: str) -> None:
    """Upload the folder ``local`` to ``remote`` (a path on the server; its parent folder made
    when missing) with OpenSSH's sftp client, the way a source delivers: the manifest last."""
    extra = landing.connection["extra"]
    assert isinstance(extra, dict)
    files = sorted(local.iterdir(), key=lambda p: (p.name == "_manifest.json", p.name))
    folders = [f"-mkdir {Path(remote).parent}", f"-mkdir {remote}"]
    batch = "\n".join([*folders, *(f"put {p} {remote}/{p.name}" for p in files), ""])
    subprocess.run(
        [
            "sftp",
            "-b",
            "-",
            "-P",
            str(landing.server.port),
            "-i",
            str(extra["key_file"]),
            "-o",
            f"UserKnownHostsFile={extra['known_hosts']}",
            "-o",
            "BatchMode=yes",
            f"{landing.connection['login']}@127.0.0.1",
        ],
        input=batch.encode(),
        check=True,
        capture_output=True,
    )


@contextmanager
def moto_s3(workdir: Path, bucket: str = "landing", conn_id: str = "outcomes_landing") -> Iterator[Landing]:
    """moto's S3-compatible server (its own process) on a free loopback port, with a bucket. It
    keeps its objects in memory: started again, it is empty."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    command = [shutil.which("moto_server") or "moto_server", "-H", "127.0.0.1", "-p", str(port)]
    server = Server(command, port, workdir / "moto.log")
    endpoint = f"http://127.0.0.1:{port}"
    connection: dict[str, object] = {
        "conn_type": "aws",
        "login": "outcomes-test-key-id",
        "password": "outcomes-test-secret",  # moto takes any credentials  # pragma: allowlist secret
        "extra": {
            "endpoint_url": endpoint,
            "region_name": "eu-north-1",
            # a server that is down answers at once, not after botocore's retries (about 11 s)
            "config_kwargs": {"retries": {"max_attempts": 1}, "connect_timeout": 2},
        },
    }
    server.start()
    try:
        landing = Landing(f"s3://{bucket}/deliveries", conn_id, connection, server)
        create_bucket(landing)
        yield landing
    finally:
        server.stop()


def _client(landing: Landing) -> Any:
    import boto3

    extra = landing.connection["extra"]
    assert isinstance(extra, dict)
    return boto3.client(
        "s3",
        endpoint_url=str(extra["endpoint_url"]),
        aws_access_key_id=str(landing.connection["login"]),
        aws_secret_access_key=str(landing.connection["password"]),
        region_name=str(extra["region_name"]),
    )


def create_bucket(landing: Landing) -> None:
    bucket = landing.url.removeprefix("s3://").partition("/")[0]
    _client(landing).create_bucket(
        Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "eu-north-1"}
    )


def s3_put(landing: Landing, local: Path, key: str) -> None:
    """Upload the folder ``local`` under ``key`` with boto3, the manifest last."""
    client = _client(landing)
    bucket, _, prefix = landing.url.removeprefix("s3://").partition("/")
    for path in sorted(local.iterdir(), key=lambda p: (p.name == "_manifest.json", p.name)):
        client.put_object(Bucket=bucket, Key=f"{prefix}/{key}/{path.name}", Body=path.read_bytes())
