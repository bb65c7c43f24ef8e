"""The project's pages inside the Airflow UI (the dashboard snapshots, the dbt docs, the quality
page): served to signed-in users only, through Airflow's own API app."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import pytest
from support.builds import gate_results
from support.ports import free_port

from outcomes.settings import Settings
from outcomes.warehouse.connection import Warehouse


@pytest.fixture(scope="module")
def client(airflow_ready: Settings) -> Iterator[Any]:
    from airflow.api_fastapi.app import create_app
    from fastapi.testclient import TestClient

    # (the JWT secret is the session's: tests/conftest.py sets it as a deployment does)
    with TestClient(create_app()) as test_client:
        yield test_client


@pytest.fixture
def own_home(settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """An OUTCOMES_HOME of the test's own: the app reads its files from there (the session's home
    keeps real dbt docs and dashboards, which a fake file would break)."""
    monkeypatch.setenv("OUTCOMES_HOME", str(tmp_path))
    return dataclasses.replace(settings, home=tmp_path)


@pytest.fixture(scope="module")
def token(client: Any) -> str:
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    return str(get_auth_manager().generate_jwt(SimpleAuthManagerUser(username="analyst", role="viewer")))


def test_the_plugin_is_registered_with_a_link_in_the_ui(client: Any, token: str) -> None:
    listed = client.get("/api/v2/plugins", headers={"Authorization": f"Bearer {token}"}).json()
    ours = [p for p in listed["plugins"] if p["name"] == "outcomes"]
    assert ours
    links = {view["name"]: view["href"] for view in ours[0]["external_views"]}
    assert links == {
        "Outcomes dashboard": "/outcomes/dashboards/latest",
        "dbt docs (outcomes)": "/outcomes/dbt-docs/index.html",
        "Quality gate": "/outcomes/quality/",
    }


def test_the_docs_need_a_signed_in_user(client: Any) -> None:
    for name in ("index.html", "manifest.json", "catalog.json"):
        assert client.get(f"/outcomes/dbt-docs/{name}").status_code in {401, 403}


def test_a_signed_in_user_reads_the_docs_of_the_last_build(
    client: Any, token: str, own_home: Settings
) -> None:
    docs = own_home.dbt_docs_dir
    docs.mkdir(parents=True, exist_ok=True)
    (docs / "index.html").write_text("<html>dbt docs</html>")
    (docs / "manifest.json").write_text("{}")
    headers = {"Authorization": f"Bearer {token}"}
    page = client.get("/outcomes/dbt-docs/index.html", headers=headers)
    assert page.status_code == 200 and "dbt docs" in page.text
    assert client.get("/outcomes/dbt-docs/manifest.json", headers=headers).json() == {}
    # only the docs' own files, nothing else from the disk
    assert client.get("/outcomes/dbt-docs/..%2F..%2Fpg%2Fpostgresql.conf", headers=headers).status_code == 404
    assert client.get("/outcomes/dbt-docs/run_results.json", headers=headers).status_code == 404


def test_the_quality_page_shows_every_expectation_of_the_last_gate_run_to_signed_in_users(
    client: Any, token: str, published_trial: Warehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OUTCOMES_WAREHOUSE_URL", published_trial.admin_url)  # what the app reads
    # the latest gate run, which the page shows first (other test files may have built on the
    # same warehouse before this one: a fresh-clone run on the server saw two builds' results)
    build, status, names = gate_results(published_trial)
    assert len(names) >= 40
    for path in ("/outcomes/quality/", f"/outcomes/quality/expectations/{names[0]}"):
        assert client.get(path).status_code in {401, 403}, path
    headers = {"Authorization": f"Bearer {token}"}
    page = client.get("/outcomes/quality/", headers=headers)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert (
        build in page.text and f'<span class="badge {status}" id="latest-status">{status}</span>' in page.text
    )
    listed = re.findall(r'data-expectation="([^"]+)"', page.text)
    assert sorted(listed) == sorted(names)
    one = client.get(f"/outcomes/quality/expectations/{names[0]}", headers=headers)
    assert one.status_code == 200 and f"<h1>{names[0]}</h1>" in one.text and build in one.text
    missing = client.get("/outcomes/quality/expectations/no.such_check", headers=headers)
    assert missing.status_code == 404 and "no such expectation" in missing.json()["detail"]


def test_the_quality_page_says_when_it_cannot_read_the_warehouse(
    client: Any, token: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # nothing listens there: a warehouse that is down
    monkeypatch.setenv("OUTCOMES_WAREHOUSE_URL", f"postgresql://postgres@127.0.0.1:{free_port()}/outcomes")
    answer = client.get("/outcomes/quality/", headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 503
    assert answer.json()["detail"].startswith("the quality page could not read the warehouse: ")


def test_the_old_data_docs_addresses_lead_to_the_quality_page(client: Any, token: str) -> None:
    """The GX Data Docs are not served (they load their scripts from CDNs: docs/decisions.md);
    a bookmark of one of their pages lands on the quality page, relative to where it was."""
    headers = {"Authorization": f"Bearer {token}"}
    for path, target in (
        ("/outcomes/gate-docs", "quality/"),
        ("/outcomes/gate-docs/index.html", "../quality/"),
        ("/outcomes/gate-docs/validations/s/r/t/b.html", "../../../../../quality/"),
    ):
        assert client.get(path, follow_redirects=False).status_code == 401, path
        moved = client.get(path, headers=headers, follow_redirects=False)
        assert moved.status_code == 307 and moved.headers["location"] == target, path
        assert urljoin(f"http://ui{path}", target) == "http://ui/outcomes/quality/", path


def test_the_dashboard_snapshots_need_a_signed_in_user_and_only_serve_snapshots(
    client: Any, token: str, own_home: Settings
) -> None:
    from outcomes.dashboard.snapshots import write_snapshot

    for path in ("/outcomes/dashboards/", "/outcomes/dashboards/latest", "/outcomes/dashboards/x.html"):
        assert client.get(path, follow_redirects=False).status_code == 401, path
    headers = {"Authorization": f"Bearer {token}"}
    info = {
        "as_of_date": "2026-11-20",
        "build_id": "b20261120T050000.000000Z",
        "gate": "passed",
        "rendered_at": "2026-11-20T05:10:00+00:00",
        "charts": ["employment-RCT"],
        "lock": None,
    }
    older = write_snapshot(own_home, "<html>the 20th</html>", info)
    newer = write_snapshot(
        own_home,
        "<html>the 21st</html>",
        {
            **info,
            "as_of_date": "2026-11-21",
            "build_id": "b20261121T050000.000000Z",
            "rendered_at": "2026-11-21T05:10:00+00:00",
            "gate": "warned",
        },
    )
    moved = client.get("/outcomes/dashboards/latest", headers=headers, follow_redirects=False)
    assert moved.status_code == 307 and moved.headers["location"] == newer.name
    assert "the 21st" in client.get(f"/outcomes/dashboards/{newer.name}", headers=headers).text
    assert "the 20th" in client.get(f"/outcomes/dashboards/{older.name}", headers=headers).text
    listed = client.get("/outcomes/dashboards/", headers=headers).text
    assert listed.index("2026-11-21") < listed.index("2026-11-20")  # newest first
    assert "warned" in listed and "latest" in listed
    for outside in ("..%2F..%2Fpg%2Fpostgresql.conf", f"{newer.stem}.json", "latest.html", ".x.html"):
        assert client.get(f"/outcomes/dashboards/{outside}", headers=headers).status_code == 404, outside


def test_the_roots_redirect_to_their_pages_and_nothing_steers_them(client: Any, token: str) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    for root, target in (
        ("/outcomes/dbt-docs", "dbt-docs/index.html"),
        ("/outcomes/quality", "quality/"),
        ("/outcomes/dashboards", "dashboards/"),
    ):
        assert client.get(root, follow_redirects=False).status_code == 401, root
        moved = client.get(f"{root}?target=https://example.org/", headers=headers, follow_redirects=False)
        assert moved.status_code == 307 and moved.headers["location"] == target, root


def test_the_snapshot_list_escapes_what_it_shows() -> None:
    from types import SimpleNamespace

    from outcomes.webapp import snapshot_list_page

    hostile = SimpleNamespace(
        name="x.html", as_of_date="<script>alert(1)</script>", build_id="b1", gate="passed",
        rendered_at="now", lock=None, path="x",
    )  # fmt: skip
    page = snapshot_list_page([hostile], None)
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;" in page
    assert "No snapshots yet" in snapshot_list_page([], None)


#: The routes that answer a caller who is not signed in, each by design and holding no data: the
#: sign-in itself, health and version probes, the UI's page shell and static files (every figure
#: the UI shows comes through the API below it), routes that answer 404 to everyone. Anything else
#: that answers anonymously fails the test below.
PUBLIC = {
    ("GET", "/api/v2/monitor/health"): "health probe for load balancers",
    ("GET", "/api/v2/version"): "the Airflow version",
    ("GET", "/api/v2/auth/login"): "a redirect to the sign-in page",
    ("GET", "/api/v2/auth/logout"): "a redirect to the sign-out",
    ("POST", "/auth/token"): "the sign-in, with a user and a password",
    ("POST", "/auth/token/cli"): "the sign-in for the CLI, with a user and a password",
    ("GET", "/auth/static/"): "the sign-in page's styles and scripts",
    ("GET", "/execution/health"): "the task execution API's health probe",
    ("GET", "/execution/health/ping"): "the task execution API's health probe",
    ("GET", "/health"): "404 for everyone (gone in Airflow 3)",
    ("GET", "/api/v1/{_:path}"): "404 for everyone (Airflow 2's API, removed)",
    ("GET", "/api/{_:path}"): "404 for everyone (no such API)",
}
#: The description of each app mounted in the server (Airflow's API, the task execution API, the
#: auth manager's, Cosmos'): which routes there are, no data.
DESCRIPTION = re.compile(r"/(docs|docs/oauth2-redirect|redoc|openapi\.json|changelog)$")


def _routes(app: Any, prefix: str = "") -> list[tuple[str, str]]:
    """(method, path) of every route of ``app`` and of every app mounted in it."""
    from starlette.routing import Mount, Route

    found: list[tuple[str, str]] = []
    for route in app.routes:
        if isinstance(route, Mount):
            inner = getattr(route, "app", None)
            while inner is not None and not hasattr(inner, "routes") and hasattr(inner, "app"):
                inner = inner.app  # middleware around a mounted app
            if inner is not None and hasattr(inner, "routes"):
                found += _routes(inner, prefix + route.path)
            else:
                found.append(("GET", prefix + route.path + "/"))
        elif isinstance(route, Route):
            for method in sorted((route.methods or {"GET"}) - {"HEAD", "OPTIONS"}):
                found.append((method, prefix + route.path))
    return found


def test_every_route_of_airflow_and_the_plugin_refuses_an_anonymous_caller(client: Any) -> None:
    """Every route of the API server the deployment runs (Airflow's public and UI APIs, the task
    execution API, the auth manager's, Cosmos' and the plugin's pages under /outcomes), called
    with no session and no token, with a placeholder for each path parameter: refused (401 or
    403), unless listed in PUBLIC with its reason."""
    client.cookies.clear()  # the client is the module's: nobody signed in here
    client.get("/execution/health")  # the task execution API adds its versioned routes on first use
    routes = sorted(set(_routes(client.app)))  # (a route of every API version once)
    paths = {path for _, path in routes}
    assert {"/api/v2/dags", "/api/v2/connections", "/outcomes/dashboards/{name}"} <= paths
    answered, checked = [], set()
    for method, path in routes:
        if (method, path) in PUBLIC or DESCRIPTION.search(path) or path.startswith(("/static", "/assets")):
            continue
        if "{rest_of_path" in path:  # the UI's page shell, for any path the UI routes itself
            continue
        checked.add((method, path))
        url = re.sub(r"\{[^}]+\}", "x", path)
        response = client.request(method, url, follow_redirects=False)
        if response.status_code not in {401, 403}:
            answered.append(f"{method} {path}: {response.status_code}")
    assert not answered, "\n".join(answered)
    assert set(PUBLIC) <= set(routes), set(PUBLIC) - set(routes)  # the list names routes that exist
    # the stores of secrets and of task data behind the task execution API are among those called
    assert {
        "/execution/connections/{connection_id}",
        "/execution/variables/{variable_key:path}",
        "/api/v2/connections",
        "/outcomes/quality/expectations/{name}",
    } <= {path for _, path in checked}
    assert len(checked) >= 200  # 211 of 243 with Airflow 3.3.2 and Cosmos 1.15.1
