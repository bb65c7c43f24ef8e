"""Secrets backends for the tests: Airflow's own LocalFilesystemBackend configured as a deployment
configures any backend (``AIRFLOW__SECRETS__BACKEND`` and its kwargs), and one whose store is
down."""

from __future__ import annotations

import json
from pathlib import Path

LOCAL = "airflow.secrets.local_filesystem.LocalFilesystemBackend"
#: A backend whose store does not answer (support/unreachable_backend.py; imported by Airflow only
#: when asked, so that no test module imports Airflow before the session configures it).
UNREACHABLE = "support.unreachable_backend.Unreachable"


def local_backend(folder: Path, variables: dict[str, str]) -> dict[str, str]:
    """``variables`` written as the JSON file of a LocalFilesystemBackend (mode 0600, as a secret
    mounted into a container is), and the Airflow settings that point every process at it."""
    path = folder / "variables.json"
    path.touch(mode=0o600)
    path.write_text(json.dumps(variables))
    return {
        "AIRFLOW__SECRETS__BACKEND": LOCAL,
        "AIRFLOW__SECRETS__BACKEND_KWARGS": json.dumps({"variables_file_path": str(path)}),
    }
