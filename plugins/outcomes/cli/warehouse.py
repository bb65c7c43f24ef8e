"""Commands about the warehouse and its services: settings in effect, migrations, status, stop,
``psql``/``airflow``/``dbt`` with the right settings, and Airflow in the background (up, down)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from outcomes.cli.common import PASSTHROUGH, _console, _fail, _settings, app

# Exit codes (docs/operations.md), defined once: 0 success, 1 failure, 2 usage, 3 the gate blocked.

if TYPE_CHECKING:
    pass

PANEL = "Warehouse and Airflow"


@app.command(rich_help_panel=PANEL)
def env(
    show_all: Annotated[
        bool,
        typer.Option(
            "--all", help="Also print every OUTCOMES_* setting in effect (a secret: only whether set)."
        ),
    ] = False,
    show_secrets: Annotated[
        bool,
        typer.Option(
            "--show-secrets", help="Print the database URLs with their passwords (default: as ***)."
        ),
    ] = False,
) -> None:
    """Print the settings in effect as KEY=value lines (`eval "$(outcomes env --show-secrets)"` works).

    Checks every declared setting first: a bad value is refused, naming the variable. Starts the
    embedded warehouse if it is the one in use, so the URL printed answers. A database URL's
    password is shown only with --show-secrets (the embedded warehouse's URLs have none).
    """
    import shlex

    from sqlalchemy.engine import make_url

    from outcomes.settings import check_all, effective
    from outcomes.warehouse.connection import Role, resolve

    problems = check_all()
    if problems:
        raise _fail("; ".join(problems))
    settings = _settings()
    warehouse = resolve(settings, start=True)
    url = warehouse.url if show_secrets else warehouse.display_url
    airflow_conn = warehouse.airflow_sql_alchemy_conn()
    values = {
        "OUTCOMES_HOME": str(settings.home),
        "OUTCOMES_WAREHOUSE_URL": url(),
        "OUTCOMES_WAREHOUSE_EMBEDDED": "true" if warehouse.embedded else "false",
        "OUTCOMES_ANALYST_URL": url(role=Role.ANALYST),
        "OUTCOMES_LANDING": settings.landing,
        "OUTCOMES_PROJECT_DIR": str(settings.project_dir),
        "AIRFLOW_HOME": str(settings.airflow_home),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": (
            airflow_conn if show_secrets else make_url(airflow_conn).render_as_string(hide_password=True)
        ),
    }
    for key, value in values.items():
        typer.echo(f"{key}={shlex.quote(value)}")
    if not show_all:
        return
    for key, text in effective().items():
        if key in values:
            continue
        if text is None:  # a secret that is set: never printed
            typer.echo(f"# {key} is set (not shown)")
        else:
            typer.echo(f"{key}={shlex.quote(text)}")


@app.command(rich_help_panel=PANEL)
def migrate() -> None:
    """Create the warehouse databases if missing and apply every pending migration."""
    from outcomes.warehouse.bootstrap import bootstrap, current_revision

    warehouse = bootstrap(_settings())
    _console().print(
        f"warehouse [bold]{warehouse.display_url()}[/] at migration {current_revision(warehouse)}"
    )


@app.command(rich_help_panel=PANEL)
def prepare() -> None:
    """Prepare a deployment (docker compose's airflow-init): migrations, Airflow's database, the dbt
    manifest, the admin's password (AIRFLOW_ADMIN_PASSWORD); fails when any DAG file does not import."""
    from outcomes.runners import deployment

    prepared = deployment.prepare(_settings())
    console = _console()
    console.print(f"warehouse [bold]{prepared.warehouse}[/] at migration {prepared.revision}")
    console.print(f"dbt manifest {prepared.manifest}")
    if prepared.import_errors:
        for path, error in prepared.import_errors.items():
            _console(stderr=True).print(f"[bold red]DAG import error[/] in {path}:\n{error}")
        raise _fail(f"{len(prepared.import_errors)} DAG file(s) do not import: no component may start")
    console.print(f"{len(prepared.dag_ids)} DAGs import: {', '.join(prepared.dag_ids)}")


@app.command("dag-errors", rich_help_panel=PANEL)
def dag_errors() -> None:
    """Exit 1 when the dag-processor recorded any DAG import error (a healthcheck); print them."""
    from outcomes.runners import airflow_env, deployment
    from outcomes.warehouse.connection import resolve

    settings = _settings()
    airflow_env.configure(settings, resolve(settings, start=True))
    errors = deployment.recorded_import_errors()
    for path, error in errors.items():
        _console(stderr=True).print(f"[bold red]DAG import error[/] in {path}:\n{error}")
    if errors:
        raise _fail(f"{len(errors)} DAG file(s) do not import")
    _console().print("no DAG import errors")


@app.command(rich_help_panel=PANEL)
def status() -> None:
    """Show the warehouse (where, running, migration), the landing zone and the Airflow home."""
    from outcomes.operations.status import collect_status, render_status

    settings = _settings()
    render_status(_console(), collect_status(settings))


@app.command(rich_help_panel=PANEL)
def stop() -> None:
    """Stop the embedded warehouse (PostgreSQL under OUTCOMES_HOME). Data stays on disk."""
    from outcomes.warehouse import embedded

    settings = _settings()
    console = _console()
    if not settings.embedded:
        console.print("the warehouse is external (OUTCOMES_WAREHOUSE_URL): nothing to stop")
        return
    if embedded.stop(settings.pgdata):
        console.print(f"stopped the embedded warehouse in {settings.pgdata}")
    else:
        console.print(f"the embedded warehouse in {settings.pgdata} was not running")


@app.command(rich_help_panel=PANEL, context_settings=PASSTHROUGH, add_help_option=False)
def psql(ctx: typer.Context) -> None:
    """psql on the warehouse as the read-only analyst role (arguments go to psql).

    Example: `outcomes psql -c "select * from marts.agg_employment_rates"`.
    """
    from outcomes.warehouse.connection import Role, resolve

    settings = _settings()
    warehouse = resolve(settings, start=True)
    binary = _psql_binary()
    args = [binary, warehouse.url(role=Role.ANALYST), *ctx.args]
    sys.stdout.flush()
    os.execv(binary, args)


def _psql_binary() -> str:
    """pgserver ships psql; fall back to one on PATH."""
    import shutil

    from pgserver._commands import POSTGRES_BIN_PATH

    shipped = Path(POSTGRES_BIN_PATH) / "psql"
    if shipped.exists():
        return str(shipped)
    found = shutil.which("psql")
    if found is None:
        raise _fail("no psql found (pgserver ships one; is the package installed?)")
    return found


@app.command(rich_help_panel=PANEL, context_settings=PASSTHROUGH, add_help_option=False)
def airflow(ctx: typer.Context) -> None:
    """Airflow with the project's settings: AIRFLOW_HOME under OUTCOMES_HOME, dags/ and plugins/.

    Example: `outcomes airflow dags list`, `outcomes airflow standalone`.
    """
    from outcomes.runners import airflow_env
    from outcomes.warehouse.bootstrap import bootstrap

    settings = _settings()
    warehouse = bootstrap(settings)
    airflow_env.configure(settings, warehouse)
    binary = airflow_env.airflow_binary()
    sys.stdout.flush()
    os.execv(binary, [binary, *ctx.args])


@app.command(rich_help_panel=PANEL, context_settings=PASSTHROUGH, add_help_option=False)
def dbt(ctx: typer.Context) -> None:
    """dbt on the project with the warehouse's profile (arguments go to dbt).

    Example: `outcomes dbt build --vars '{as_of: 2026-11-21}'`; without `as_of` dbt builds as of
    today (UTC). Artefacts go to OUTCOMES_HOME/dbt, not into the checkout.
    """
    from outcomes.transform.dbt import dbt_environ
    from outcomes.warehouse.bootstrap import bootstrap

    settings = _settings()
    warehouse = bootstrap(settings)
    os.environ.update(dbt_environ(warehouse))
    os.environ.setdefault("DBT_TARGET_PATH", str(settings.dbt_target_dir))
    os.environ.setdefault("DBT_LOG_PATH", str(settings.dbt_log_dir))
    os.environ.setdefault("DBT_PROJECT_DIR", str(settings.dbt_project_dir))
    os.environ.setdefault("DBT_PROFILES_DIR", str(settings.dbt_project_dir))
    binary = Path(sys.executable).parent / "dbt"
    sys.stdout.flush()
    os.execv(str(binary), [str(binary), *ctx.args])


@app.command(rich_help_panel=PANEL)
def up() -> None:
    """Start Airflow (standalone: api-server, scheduler, dag-processor, triggerer) in the background
    with the project's DAGs unpaused; print the URL and the login. `outcomes down` stops it."""
    from outcomes.runners import standalone

    os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING")
    try:
        running = standalone.up(_settings())
    except RuntimeError as error:
        raise _fail(str(error)) from None
    console = _console()
    console.print(f"Airflow is up: {running.url}  (process group {running.pid}, log {running.log})")
    console.print(f"  sign in as {running.username}, password {running.password}")
    console.print(f"  dashboard: {running.url}/outcomes/dashboards/latest   stop: make down")


@app.command(rich_help_panel=PANEL)
def down() -> None:
    """Stop the Airflow that `outcomes up` started."""
    from outcomes.runners import standalone

    stopped = standalone.down(_settings())
    _console().print("Airflow stopped" if stopped else "Airflow was not running")
