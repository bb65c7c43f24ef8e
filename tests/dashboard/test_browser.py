"""The dashboard in a real browser (Debian's headless Chromium, driven by Playwright): a snapshot
opened from disk, and the same snapshot through a running Airflow API server after signing in on
Airflow's own login page. Every chart must render (plotly drew its SVG) with no JavaScript error;
screenshots are kept as test artefacts in ``test-artifacts/``.

Chromium comes from Debian (``make test`` installs it when missing: docs/testing.md);
Playwright's own browser download does not work here and is never used.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.ports import free_port

from outcomes.dashboard.snapshots import refresh
from outcomes.settings import Settings
from outcomes.warehouse.connection import Warehouse

pytestmark = pytest.mark.slow
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.fail("Debian's chromium is missing: `make test` installs it (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        launched.close()


def charts_rendered(page: Any, errors: list[str], screenshot: str) -> list[str]:
    """Wait for every chart the snapshot declares; returns the declared chart ids."""
    declared = page.locator('meta[name="outcomes-charts"]').get_attribute("content").split()
    assert declared
    for chart in declared:
        page.locator(f'[id="{chart}"] .main-svg').first.wait_for(state="attached", timeout=30_000)
    drawn = page.evaluate(
        "ids => ids.filter(id => document.getElementById(id).querySelectorAll('.main-svg').length > 0)",
        declared,
    )
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / screenshot), full_page=True)
    assert drawn == declared
    assert errors == []
    return list(declared)


def watch(page: Any) -> list[str]:
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(f"pageerror: {error}"))
    page.on("console", lambda msg: errors.append(f"console: {msg.text}") if msg.type == "error" else None)
    page.on("requestfailed", lambda request: errors.append(f"request failed: {request.url}"))
    return errors


def test_a_snapshot_opens_from_disk_with_every_chart_and_no_error(
    browser: Any, own_home: Settings, published_trial: Warehouse
) -> None:
    path = refresh(own_home, published_trial)
    context = browser.new_context(viewport={"width": 1400, "height": 900}, offline=True)  # no network at all
    page = context.new_page()
    errors = watch(page)
    page.goto(path.as_uri())
    charts = charts_rendered(page, errors, "dashboard-from-disk.png")
    assert len(charts) == 9  # 4 per study, and the RCT's between-arm forest plot
    assert "52.8 % (19/36)" in page.inner_text("body")
    context.close()


@pytest.fixture(scope="module")
def api_server(airflow_ready: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``airflow api-server`` with the project's plugin and one viewer account (a test password)."""
    folder = tmp_path_factory.mktemp("api")
    password = secrets.token_urlsafe(12)
    passwords = folder / "passwords.json"
    passwords.write_text(json.dumps({"trialteam": password}))
    port = free_port()
    env = {
        **os.environ,
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "trialteam:viewer",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
    }
    log = (folder / "api-server.log").open("w")
    airflow = str(Path(sys.executable).parent / "airflow")
    server = subprocess.Popen(
        [airflow, "api-server", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{url}/api/v2/monitor/health", timeout=2):
                    break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                if server.poll() is not None or time.monotonic() > deadline:
                    log.flush()
                    pytest.fail(
                        "the API server did not start:\n" + (folder / "api-server.log").read_text()[-3000:]
                    )
                time.sleep(1)
        yield f"{url}|trialteam|{password}"
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


def test_the_plugin_page_needs_a_login_and_renders_every_chart(
    browser: Any, api_server: str, settings: Settings, published_trial: Warehouse
) -> None:
    url, user, password = api_server.split("|")
    snapshot = refresh(settings, published_trial)  # the session's home: what the server serves
    for path in (
        "/outcomes/dashboards/latest",
        "/outcomes/dashboards/",
        f"/outcomes/dashboards/{snapshot.name}",
    ):
        request = urllib.request.Request(url + path)
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=10)
        assert refused.value.code == 401, path

    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.goto(f"{url}/auth/login")  # Airflow's own sign-in page
    page.get_by_label("Username").fill(user)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(lambda current: "/auth/login" not in current, timeout=30_000)

    page = (
        context.new_page()
    )  # a fresh tab, signed in by the cookie (the UI's own requests end with the old one)
    errors = watch(page)
    page.goto(f"{url}/outcomes/dashboards/latest")
    assert page.url.endswith(snapshot.name)  # the address names the build it shows
    charts_rendered(page, errors, "dashboard-in-airflow.png")

    listed = page.goto(f"{url}/outcomes/dashboards/")
    assert listed is not None and listed.status == 200
    assert snapshot.name in page.content() and "latest" in page.inner_text("body")

    # the link in Airflow's navigation opens the same page inside the UI
    page.goto(f"{url}/plugin/outcomes-dashboard")
    frame = page.frame_locator("iframe").first
    frame.locator(".main-svg").first.wait_for(state="attached", timeout=60_000)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "dashboard-airflow-ui.png"))
    context.close()
