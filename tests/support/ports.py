"""A free TCP port on loopback, for tests that start a server (airflow api-server, standalone),
and whether an Airflow API server there answers its health endpoint."""

from __future__ import annotations

import socket


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def api_healthy(url: str) -> bool:
    """Whether the Airflow API server at ``url`` answers its health endpoint with 200."""
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(f"{url}/api/v2/monitor/health", timeout=3) as answer:
            return bool(answer.status == 200)
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
        return False
