"""A deployment of the project's own beside the test session's: its environment, and dumps of its
databases (the leak scans read them; the release snapshots keep them)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path


def own_environment(home: Path) -> dict[str, str]:
    """This process's environment for a deployment under ``home``: none of the project's or
    Airflow's settings of the caller (a test session's name its own home and databases), but
    Airflow's own secrets and the short retry delay the session sets."""
    keep = {"AIRFLOW__CORE__FERNET_KEY", "AIRFLOW__API_AUTH__JWT_SECRET", "OUTCOMES_RETRY_DELAY_SECONDS"}
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "OUTCOMES_")) or k in keep}
    env.update(OUTCOMES_HOME=str(home), OUTCOMES_LANDING=str(home / "landing"))
    return env


def postgres_tool(name: str) -> str:
    """pgserver's ``pg_dump``/``psql`` (PostgreSQL 16, the embedded server's), else the one on PATH."""
    from pgserver._commands import POSTGRES_BIN_PATH

    binary = Path(POSTGRES_BIN_PATH) / name
    found = str(binary) if binary.exists() else shutil.which(name)
    if not found:
        raise RuntimeError(f"no {name}")
    return found


def pg_dump(url: str, *, owners: bool = False) -> bytes:
    """``pg_dump`` of a whole database as SQL; with ``owners``, each object keeps its owner."""
    command = [postgres_tool("pg_dump"), url, *([] if owners else ["--no-owner"])]
    done = subprocess.run(command, capture_output=True, timeout=600, check=False)
    if done.returncode != 0:
        raise RuntimeError(done.stderr.decode())
    return done.stdout
