"""What every command group of the ``outcomes`` command shares: the Typer app, the console,
the settings, the exit codes and the one-line errors."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import typer

# Exit codes (docs/operations.md), defined once: 0 success, 1 failure, 2 usage, 3 the gate blocked.
from outcomes.runners.pipeline import EXIT_FAILURE

if TYPE_CHECKING:
    from rich.console import Console

    from outcomes.settings import Settings


app = typer.Typer(
    name="outcomes",
    help="Longitudinal outcomes warehouse for IPS trials: ingest, build, gate, publish.",
    no_args_is_help=True,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_enable=False,
)


PASSTHROUGH = {"allow_extra_args": True, "ignore_unknown_options": True, "help_option_names": []}


class UserError(Exception):
    """An error the user can fix; printed as one line, no traceback."""


def _console(stderr: bool = False) -> Console:
    from rich.console import Console

    # soft_wrap: long URLs and paths stay on one line, so they can be copied (and grepped).
    stream = sys.stderr if stderr else sys.stdout
    # Piped output (CI logs, grep) gets wide tables instead of 80 columns of ellipses.
    width = None if stream.isatty() else 160
    return Console(stderr=stderr, highlight=False, soft_wrap=True, width=width)


def _settings() -> Settings:
    from outcomes.settings import load_settings

    return load_settings()


def _fail(message: str, code: int = EXIT_FAILURE) -> typer.Exit:
    _console(stderr=True).print(f"[bold red]error:[/] {message}")
    return typer.Exit(code)


def _warehouse() -> Any:
    from outcomes.warehouse.connection import resolve

    return resolve(_settings(), start=True)


def _num(value: Any) -> str:
    return "-" if value is None else str(value)
