"""The ``outcomes`` command: run, inspect and operate the outcomes warehouse.

Imports are lazy (inside the commands), so ``outcomes --help`` answers at once: Airflow, dbt,
Great Expectations and SQLAlchemy cost seconds to import and only the commands that use them pay.

The commands live in one module per group (warehouse, runs, deliveries, results); importing them
registers them on the app, in the order ``outcomes --help`` lists them.
"""

from __future__ import annotations

import importlib
import sys
from typing import Annotated

import typer

from outcomes.cli.common import UserError, _console, app

# Exit codes (docs/operations.md), defined once: 0 success, 1 failure, 2 usage, 3 the gate blocked.
from outcomes.runners.pipeline import EXIT_FAILURE

#: The command groups, in the order ``outcomes --help`` shows them; importing one registers it.
GROUPS = ("warehouse", "runs", "deliveries", "results")
for _group in GROUPS:
    importlib.import_module(f"outcomes.cli.{_group}")


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        typer.echo(f"outcomes {version('outcomes')}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    """Longitudinal outcomes warehouse for IPS trials: ingest, build, gate, publish.

    Settings come from the environment (OUTCOMES_HOME, OUTCOMES_WAREHOUSE_URL, OUTCOMES_LANDING, ...):
    see `outcomes env`.
    """


def main() -> None:
    """Entry point of the ``outcomes`` console script.

    Errors a user can act on (a bad setting, an unreachable warehouse) print one clear line and
    exit 1; anything else keeps its traceback, because then it is a bug to report.
    """
    try:
        app()
    except (UserError, ValueError, ConnectionError) as error:
        _console(stderr=True).print(f"[bold red]error:[/] {error}")
        sys.exit(EXIT_FAILURE)
    except Exception as error:
        if type(error).__module__.startswith("psycopg") and type(error).__name__ == "OperationalError":
            _console(stderr=True).print(f"[bold red]error:[/] cannot reach the warehouse: {error}")
            sys.exit(EXIT_FAILURE)
        raise


if __name__ == "__main__":  # pragma: no cover
    main()
