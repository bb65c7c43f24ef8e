"""The Airflow UI in a real browser: ``airflow api-server`` with the project's plugin and one viewer
account, Debian's headless Chromium driven by Playwright, and the sign-in on Airflow's own page
(tests/dashboard/test_browser.py, tests/test_offline_ui.py).

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
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from support.ports import free_port

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
#: Screenshots kept as test artefacts.
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


@dataclass(frozen=True)
class Server:
    url: str
    user: str
    password: str


@contextmanager
def chromium(*args: str) -> Iterator[Any]:
    """Debian's chromium, headless, launched by Playwright with ``args`` added."""
    if not Path(CHROMIUM).exists():
        pytest.fail("Debian's chromium is missing: `make test` installs it (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", *args])
        try:
            yield launched
        finally:
            launched.close()


@contextmanager
def api_server(folder: Path, env: dict[str, str] | None = None) -> Iterator[Server]:
    """``airflow api-server`` on a free loopback port, with a viewer ``trialteam`` (a password of
    the test's own) and ``env`` added to the session's environment; stopped afterwards."""
    password = secrets.token_urlsafe(12)
    passwords = folder / "passwords.json"
    passwords.write_text(json.dumps({"trialteam": password}))
    port = free_port()
    full = {
        **os.environ,
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "trialteam:viewer",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
        **(env or {}),
    }
    log_path = folder / "api-server.log"
    log = log_path.open("w")
    airflow = str(Path(sys.executable).parent / "airflow")
    server = subprocess.Popen(
        [airflow, "api-server", "--host", "127.0.0.1", "--port", str(port)],
        env=full,
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
                    pytest.fail("the API server did not start:\n" + log_path.read_text()[-3000:])
                time.sleep(1)
        yield Server(url, "trialteam", password)
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


def sign_in(context: Any, server: Server) -> None:
    """Sign in on Airflow's own login page; the context keeps the session cookie."""
    page = context.new_page()
    page.goto(f"{server.url}/auth/login")
    page.get_by_label("Username").fill(server.user)
    page.get_by_label("Password").fill(server.password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(lambda current: "/auth/login" not in current, timeout=30_000)
    page.close()  # a fresh tab from here: the UI's own requests end with this one


def watch(page: Any) -> list[str]:
    """The page's JavaScript errors, console errors and failed requests, as they happen."""
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(f"pageerror: {error}"))
    page.on("console", lambda msg: errors.append(f"console: {msg.text}") if msg.type == "error" else None)
    page.on(
        "requestfailed", lambda request: errors.append(f"request failed: {request.url} ({request.failure})")
    )
    return errors


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
