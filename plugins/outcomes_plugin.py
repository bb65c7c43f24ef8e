"""The project's Airflow plugin: the dashboard snapshots, the dbt docs and the quality gate's
results with their history, in the Airflow UI.

Airflow's plugin manager imports every ``.py`` under ``plugins/`` as a top-level module, so the
package (``plugins/outcomes/``) is kept out with ``.airflowignore`` and this one small file
registers what the UI needs. The app requires the caller to be allowed to see plugin views
(a plugin's FastAPI app is unauthenticated by default in Airflow 3).
"""

from __future__ import annotations

from typing import Any, ClassVar

from airflow.plugins_manager import AirflowPlugin

from outcomes.webapp import create_app


class OutcomesPlugin(AirflowPlugin):
    # AirflowPlugin annotates these as instance attributes, but the plugin manager reads them from
    # the class: class variables by design (hence the ignores).
    name = "outcomes"
    fastapi_apps: ClassVar[list[dict[str, Any]]] = [  # type: ignore[misc]
        {"app": create_app(), "url_prefix": "/outcomes", "name": "outcomes"}
    ]
    external_views: ClassVar[list[dict[str, Any]]] = [  # type: ignore[misc]
        {
            "name": "Outcomes dashboard",
            "href": "/outcomes/dashboards/latest",
            "destination": "nav",
            "url_route": "outcomes-dashboard",
        },
        {
            "name": "dbt docs (outcomes)",
            "href": "/outcomes/dbt-docs/index.html",
            "destination": "nav",
            "category": "browse",
            "url_route": "outcomes-dbt-docs",
        },
        {
            "name": "Quality gate",
            "href": "/outcomes/quality/",
            "destination": "nav",
            "category": "browse",
            "url_route": "outcomes-quality",
        },
    ]
