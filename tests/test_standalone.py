"""``make up`` / ``make down`` (``outcomes up`` / ``outcomes down``): a real ``airflow standalone``
in the background, the project's DAGs unpaused, the UI's login and the dashboard pages, then
stopped with every component."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import urllib.error
from pathlib import Path

import pytest
from support.ports import free_port

from outcomes.runners.standalone import DAG_IDS, api, running_pid
from outcomes.settings import Settings

pytestmark = pytest.mark.slow
OUTCOMES = str(Path(sys.executable).parent / "outcomes")


def test_up_runs_airflow_with_the_dags_unpaused_and_down_stops_it(
    airflow_ready: Settings, tmp_path: Path
) -> None:
    port = free_port()
    # an empty landing zone: the unpaused ingest DAGs find nothing to apply while this runs
    env = {**os.environ, "AIRFLOW__API__PORT": str(port), "OUTCOMES_LANDING": str(tmp_path)}
    try:
        done = subprocess.run(
            [OUTCOMES, "up"], capture_output=True, text=True, env=env, timeout=600, check=False
        )
        assert done.returncode == 0, done.stdout + done.stderr
        url = f"http://localhost:{port}"
        assert f"Airflow is up: {url}" in done.stdout
        login = re.search(r"sign in as (\S+), password (\S+)", done.stdout)
        assert login is not None
        assert running_pid(airflow_ready) is not None

        token = api(url, "POST", "/auth/token", None, {"username": login[1], "password": login[2]})[
            "access_token"
        ]
        dags = {d["dag_id"]: d for d in api(url, "GET", "/api/v2/dags?limit=100", token)["dags"]}
        assert {dag_id: dags[dag_id]["is_paused"] for dag_id in DAG_IDS} == dict.fromkeys(DAG_IDS, False)
        # the project's pages are in this UI, behind its login
        with pytest.raises(urllib.error.HTTPError) as refused:
            api(url, "GET", "/outcomes/dashboards/", None)
        assert refused.value.code == 401
        plugins = api(url, "GET", "/api/v2/plugins", token)["plugins"]
        views = [v["name"] for p in plugins if p["name"] == "outcomes" for v in p["external_views"]]
        assert "Outcomes dashboard" in views

        again = subprocess.run(
            [OUTCOMES, "up"], capture_output=True, text=True, env=env, timeout=600, check=False
        )
        assert again.returncode == 0 and f"Airflow is up: {url}" in again.stdout  # found running
    finally:
        stopped = subprocess.run(
            [OUTCOMES, "down"], capture_output=True, text=True, env=env, timeout=180, check=False
        )
    assert stopped.returncode == 0 and "Airflow stopped" in stopped.stdout, stopped.stdout + stopped.stderr
    assert running_pid(airflow_ready) is None
    with pytest.raises(urllib.error.URLError):
        api(url, "GET", "/api/v2/monitor/health", None)
