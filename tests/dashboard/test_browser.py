"""The dashboard in a real browser (Debian's headless Chromium, driven by Playwright): a snapshot
opened from disk, and the same snapshot through a running Airflow API server after signing in on
Airflow's own login page. Every chart must render (plotly drew its SVG) with no JavaScript error;
screenshots are kept as test artefacts in ``test-artifacts/``.

Chromium comes from Debian (``make test`` installs it when missing: docs/testing.md);
Playwright's own browser download does not work here and is never used.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from support.ui import ARTIFACTS, Server, api_server, charts_rendered, chromium, sign_in, watch

from outcomes.dashboard.snapshots import refresh
from outcomes.settings import Settings
from outcomes.warehouse.connection import Warehouse

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as launched:
        yield launched


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
def server(airflow_ready: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """``airflow api-server`` with the project's plugin and one viewer account (a test password)."""
    with api_server(tmp_path_factory.mktemp("api")) as started:
        yield started


def test_the_plugin_page_needs_a_login_and_renders_every_chart(
    browser: Any, server: Server, settings: Settings, published_trial: Warehouse
) -> None:
    url = server.url
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
    sign_in(context, server)  # on Airflow's own sign-in page
    page = context.new_page()  # a fresh tab, signed in by the cookie
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
