"""The dbt docs inside the Airflow UI: served to signed-in users only, through Airflow's own API app."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from outcomes.settings import Settings


@pytest.fixture(scope="module")
def client(airflow_ready: Settings) -> Iterator[Any]:
    import secrets

    from airflow.api_fastapi.app import create_app
    from airflow.configuration import conf
    from fastapi.testclient import TestClient

    conf.set("api_auth", "jwt_secret", secrets.token_urlsafe(32))  # a deployment sets its own
    with TestClient(create_app()) as test_client:
        yield test_client


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
        "dbt docs (outcomes)": "/outcomes/dbt-docs/index.html",
        "Quality gate (Data Docs)": "/outcomes/gate-docs/index.html",
    }


def test_the_docs_need_a_signed_in_user(client: Any) -> None:
    for name in ("index.html", "manifest.json", "catalog.json"):
        assert client.get(f"/outcomes/dbt-docs/{name}").status_code in {401, 403}


def test_a_signed_in_user_reads_the_docs_of_the_last_build(
    client: Any, token: str, settings: Settings
) -> None:
    docs = settings.dbt_docs_dir
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


def test_the_gate_data_docs_need_a_signed_in_user_and_stay_inside_their_site(
    client: Any, token: str, settings: Settings
) -> None:
    site = settings.gx_data_docs_dir
    (site / "validations").mkdir(parents=True, exist_ok=True)
    (site / "index.html").write_text("<html>gate results</html>")
    (site / "validations" / "page.html").write_text("<html>one validation</html>")
    assert client.get("/outcomes/gate-docs/index.html").status_code in {401, 403}
    headers = {"Authorization": f"Bearer {token}"}
    page = client.get("/outcomes/gate-docs/index.html", headers=headers)
    assert page.status_code == 200 and "gate results" in page.text
    assert "one validation" in client.get("/outcomes/gate-docs/validations/page.html", headers=headers).text
    for outside in ("..%2F..%2F..%2Fpg%2Fpostgresql.conf", "%2Fetc%2Fpasswd", "validations"):
        assert client.get(f"/outcomes/gate-docs/{outside}", headers=headers).status_code == 404
