"""Settings in effect, from the environment: one namespaced prefix, ``OUTCOMES_``.

Everything the project needs to know about its deployment comes from environment variables (see
``.env.example``); nothing is read from the repository that a deployment should choose. Every
``OUTCOMES_*`` variable a deployment may set is declared once, in ``settings.toml`` beside this
module (its section, kind, default and doc; :data:`DECLARED`), and read through :func:`setting`,
the one parser: a bad value is refused with one error that names the variable, the value and what
was expected. The settings table of docs/operations.md, ``.env.example`` and ``outcomes env --all``
are checked against the declarations by ``tests/test_settings.py``.

This module is imported by the CLI before anything heavy, so it must stay cheap (standard library
only, ``tomllib`` for the declarations; the per-source defaults are read from the contract on first
use).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: The checkout (or installed tree) this package lives in: ``<project>/plugins/outcomes/``.
PACKAGE_DIR = Path(__file__).resolve().parent
DEFAULT_PROJECT_DIR = PACKAGE_DIR.parent.parent
#: The dbt project's folder in the project tree.
DBT_PROJECT = "dbt_project"

#: Database names on the warehouse server. The Airflow metadata database lives beside the
#: warehouse, in the same server, as its own database.
DEFAULT_WAREHOUSE_DB = "outcomes"
AIRFLOW_DB_SUFFIX = "_airflow"


@dataclass(frozen=True)
class Settings:
    """The settings in effect. Build with :func:`load_settings`; never mutate."""

    project_dir: Path
    home: Path
    warehouse_url: str | None
    landing: str
    airflow_parallelism: int

    @property
    def embedded(self) -> bool:
        """True when the warehouse is the embedded PostgreSQL under ``home``."""
        return self.warehouse_url is None

    @property
    def pgdata(self) -> Path:
        """Data directory of the embedded PostgreSQL."""
        return self.home / "pg"

    @property
    def airflow_home(self) -> Path:
        return self.home / "airflow"

    @property
    def dags_folder(self) -> Path:
        return self.project_dir / "dags"

    @property
    def plugins_folder(self) -> Path:
        return self.project_dir / "plugins"

    @property
    def dbt_project_dir(self) -> Path:
        return self.project_dir / DBT_PROJECT

    @property
    def dbt_target_dir(self) -> Path:
        """dbt's artefacts (manifest, compiled SQL): state, not the checkout."""
        return self.home / "dbt" / "target"

    @property
    def dbt_log_dir(self) -> Path:
        return self.home / "dbt" / "logs"

    @property
    def dbt_manifest(self) -> Path:
        """The parsed project the build DAG is rendered from (``dbt parse``; kept fresh by prepare)."""
        return self.dbt_target_dir / "manifest.json"

    @property
    def dbt_docs_dir(self) -> Path:
        """The generated dbt docs (index.html, manifest.json, catalog.json) the Airflow UI serves."""
        return self.home / "dbt" / "docs"

    @property
    def cosmos_cache_dir(self) -> Path:
        return self.home / "cosmos"

    @property
    def gx_dir(self) -> Path:
        """The quality gate's Great Expectations file context (suites, results, Data Docs)."""
        return self.home / "gx"

    @property
    def gx_data_docs_dir(self) -> Path:
        """The gate's Data Docs site, written by the gate (the Airflow UI serves the project's own
        quality page instead: docs/quality-gate.md)."""
        return self.gx_dir / "gx" / "uncommitted" / "data_docs" / "local_site"

    @property
    def dashboards_dir(self) -> Path:
        """The dated dashboard snapshots and ``latest.html`` (dashboard/snapshots.py)."""
        return self.home / "dashboards"

    @property
    def alerts_log(self) -> Path:
        return self.home / "alerts.log"


def project_dir(env: Mapping[str, str] | None = None) -> Path:
    """The project tree in use (``OUTCOMES_PROJECT_DIR``, default: the checkout of the package),
    for what needs only it (the seeds' value sets) and not every warehouse setting."""
    return (
        setting("OUTCOMES_PROJECT_DIR", os.environ if env is None else env) or DEFAULT_PROJECT_DIR
    ).resolve()


def home_dir(env: Mapping[str, str] | None = None) -> Path:
    """The state folder in use (``OUTCOMES_HOME``, default ``.outcomes/`` in the project tree), for
    what needs it before the other settings (the secrets backend's lookup of the warehouse)."""
    return (setting("OUTCOMES_HOME", env) or project_dir(env) / ".outcomes").resolve()


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """The warehouse section of the settings, read from ``env`` (default: ``os.environ``); the
    others are read where they are used, through :func:`setting`."""
    env = os.environ if env is None else env
    home = home_dir(env)
    return Settings(
        project_dir=project_dir(env),
        home=home,
        warehouse_url=setting("OUTCOMES_WAREHOUSE_URL", env),
        landing=setting("OUTCOMES_LANDING", env) or str(home / "landing"),
        airflow_parallelism=setting("OUTCOMES_AIRFLOW_PARALLELISM", env),
    )


# -- the declared settings -------------------------------------------------------------------------

#: The sections of the settings, in the order the docs list them.
SECTIONS = ("warehouse", "ingest", "schedules", "dbt", "gate", "retention", "alerts", "dashboard")

#: The kinds a setting's value can be, each with its one parser below.
KINDS = ("path", "text", "url", "list", "int", "number", "choice", "schedule", "secret")

#: ``OUTCOMES_SCHEDULE_*=manual``: no time schedule; the DAG runs when triggered (UI, REST API,
#: ``outcomes run``) or, for ``build_outcomes``, when every source's Asset has news.
MANUAL = "manual"
SOURCE = "<SOURCE>"


class SettingError(ValueError):
    """A setting's value that its parser refuses: ``NAME='raw': expected ...``."""


@dataclass(frozen=True)
class Setting:
    """One ``OUTCOMES_*`` variable: where it belongs, how its value is read, its default, its doc.

    A name with ``<SOURCE>`` stands for one variable per source of the contract
    (``OUTCOMES_SCHEDULE_TRIAL``, ...); its default is that source's ``contract_fact``.
    """

    name: str
    section: str
    kind: str
    doc: str
    #: The default, typed; None: unset means "none" (or see ``default_doc``).
    default: str | int | float | None = None
    #: How the docs state a default that is not a literal (derived from another setting, ...).
    default_doc: str = ""
    choices: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    #: Per-source settings: the attribute of the source's contract entry that is the default.
    contract_fact: str | None = None
    #: The default is this entry of the contract's ``defaults`` (one home for it: the contract).
    contract_default: str | None = None
    #: ``.env.example`` shows this value (the default, where it helps to see it); else empty.
    example: str = ""
    #: The value may hold a password or a token (a ``secret`` kind always does): see :attr:`is_secret`.
    sensitive: bool = False

    @property
    def per_source(self) -> bool:
        return SOURCE in self.name

    @property
    def is_secret(self) -> bool:
        """Never shown (``outcomes env --all`` says only whether it is set), masked in Airflow's
        logs once read, and read from Airflow's secrets backend when the environment does not set
        it (:func:`backend_variable`)."""
        return self.sensitive or self.kind == "secret"

    def names(self) -> list[str]:
        """The variables this declares: one, or one per source of the contract."""
        if not self.per_source:
            return [self.name]
        from outcomes.contracts.registry import source_names

        return [self.name.replace(SOURCE, source.upper()) for source in source_names()]

    def default_for(self, name: str) -> Any:
        """The default of the variable ``name`` (one of :meth:`names`)."""
        if self.contract_fact is not None:
            from outcomes.contracts.registry import source

            return getattr(source(_source_of(self.name, name)), self.contract_fact)
        if self.contract_default is not None:
            from outcomes.contracts import load_contract

            return getattr(load_contract().defaults, self.contract_default)
        return self.default

    def describe_default(self) -> str:
        """The default as the docs state it (a contract default with its value, read from there)."""
        if self.contract_default is not None:
            return f"{self.default_doc} ({self.default_for(self.name):g})"
        if self.default_doc:
            return self.default_doc
        if self.default is None:
            return "none"
        return f"`{self.default}`" if isinstance(self.default, str) else f"{self.default:g}"


def _source_of(template: str, name: str) -> str:
    prefix, suffix = template.split(SOURCE)
    return name[len(prefix) : len(name) - len(suffix)].lower()


def _declarations() -> tuple[tuple[Setting, ...], dict[str, str]]:
    """Every setting of ``settings.toml`` beside this module, and the internal variables."""
    import tomllib

    raw = tomllib.loads(Path(__file__).with_name("settings.toml").read_text(encoding="utf-8"))
    settings = tuple(
        Setting(**{**entry, "choices": tuple(entry.get("choices", ()))}) for entry in raw["setting"]
    )
    return settings, dict(raw["internal"])


#: Every setting a deployment may set, in the order the docs list them (``settings.toml``).
#: Variables the project sets itself, for its own child processes or for a shell: what each is.
DECLARED, INTERNAL = _declarations()


def declared(name: str) -> Setting:
    """The declaration of the variable ``name`` (per-source names included)."""
    for entry in DECLARED:
        if entry.name == name:
            return entry
        if entry.per_source:
            prefix, suffix = entry.name.split(SOURCE)
            if name.startswith(prefix) and name.endswith(suffix) and name in entry.names():
                return entry
    raise KeyError(f"{name} is not a declared setting (outcomes.settings.DECLARED)")


def every_name() -> list[str]:
    """Every variable a deployment may set, in the declared order."""
    return [name for entry in DECLARED for name in entry.names()]


_CRON_FIELD = re.compile(r"^[0-9A-Za-z*/,\-?LW#]+$")
_CRON_PRESETS = {"@once", "@hourly", "@daily", "@weekly", "@monthly", "@quarterly", "@yearly", "@annually"}


def _bounds(entry: Setting, name: str, raw: str, number: float) -> None:
    if entry.minimum is not None and number < entry.minimum:
        raise SettingError(f"{name}={raw!r}: expected at least {entry.minimum:g}")
    if entry.maximum is not None and number > entry.maximum:
        raise SettingError(f"{name}={raw!r}: expected at most {entry.maximum:g}")


def _number(entry: Setting, name: str, raw: str) -> float:
    whole = entry.kind == "int"
    try:
        number: float = int(raw) if whole else float(raw)
    except ValueError:
        raise SettingError(f"{name}={raw!r}: expected {'a whole number' if whole else 'a number'}") from None
    _bounds(entry, name, raw, number)
    return number


def _choice(entry: Setting, name: str, raw: str) -> str:
    value = raw.strip().lower()
    if value not in entry.choices:
        raise SettingError(f"{name}={raw!r}: use one of {', '.join(sorted(entry.choices))}")
    return value


def _schedule(entry: Setting, name: str, raw: str) -> str:
    value = raw.strip()
    fields = value.split()
    if value.lower() == MANUAL:
        return MANUAL
    if value in _CRON_PRESETS or (len(fields) in (5, 6) and all(_CRON_FIELD.match(f) for f in fields)):
        return value
    raise SettingError(f"{name}={raw!r}: expected a cron expression (UTC), e.g. '0 5 * * *', or '{MANUAL}'")


def _url(entry: Setting, name: str, raw: str) -> str:
    if entry.choices and not raw.startswith(entry.choices):
        # never echoed: a URL may hold a password or a token
        raise SettingError(f"{name}: expected a URL starting {' or '.join(entry.choices)} (value not shown)")
    return raw


#: The one parser of each kind: (declaration, variable name, raw text) -> the typed value.
_PARSERS: dict[str, Callable[[Setting, str, str], Any]] = {
    "int": _number,
    "number": _number,
    "choice": _choice,
    "schedule": _schedule,
    "url": _url,
    "list": lambda _entry, _name, raw: [item.strip() for item in raw.split(",") if item.strip()],
    "path": lambda _entry, _name, raw: Path(raw).expanduser(),
    "text": lambda _entry, _name, raw: raw,
    "secret": lambda _entry, _name, raw: raw,
}


def _parse(entry: Setting, name: str, raw: str) -> Any:
    return _PARSERS[entry.kind](entry, name, raw)


def setting(name: str, env: Mapping[str, str] | None = None) -> Any:
    """The value in effect of the declared variable ``name``: parsed by its kind, or its default
    when unset or empty. Raises :class:`SettingError` naming the variable for a bad value.

    A secret (:attr:`Setting.is_secret`) that the process's environment does not set is read from
    Airflow's secrets backend, as the Variable :func:`backend_variable` names (only when ``env`` is
    the process's environment: the backend is configured there). A secret's value, wherever it came
    from, is masked in Airflow's logs from then on."""
    entry = declared(name)
    environ = os.environ if env is None else env
    raw, source = environ.get(name, ""), name
    if raw.strip() == "" and entry.is_secret and environ is os.environ:
        from outcomes.runners.secrets_backend import from_secrets_backend

        raw, source = (
            from_secrets_backend(name),
            f"{name} (the secrets backend's Variable {backend_variable(name)})",
        )
    if raw.strip() == "":
        default = entry.default_for(name)
        if entry.kind == "list":
            return []
        return Path(default).expanduser() if entry.kind == "path" and default is not None else default
    value = _parse(entry, source, raw)
    if entry.is_secret:
        from outcomes.runners.secrets_backend import mask

        mask(entry, raw)
    return value


# -- secrets ---------------------------------------------------------------------------------------


def backend_variable(name: str) -> str:
    """The Airflow Variable that holds the secret setting ``name`` in a secrets backend: its name
    in lower case (``OUTCOMES_WAREHOUSE_URL`` -> ``outcomes_warehouse_url``)."""
    return name.lower()


def check_all(env: Mapping[str, str] | None = None) -> list[str]:
    """Every declared variable's error, if its value is bad (empty: all are good)."""
    problems = []
    for name in every_name():
        try:
            setting(name, env)
        except SettingError as error:
            problems.append(str(error))
    return problems


def settings_table() -> str:
    """The Markdown table of every declared setting, as docs/operations.md shows it."""
    rows = ["| Variable | Section | What it sets | Default |", "|---|---|---|---|"]
    for section in SECTIONS:
        for entry in (e for e in DECLARED if e.section == section):
            doc = entry.doc
            if entry.is_secret:
                doc += f"; a secret: or the Variable `{backend_variable(entry.name)}` of a secrets backend"
            rows.append(f"| `{entry.name}` | {section} | {doc} | {entry.describe_default()} |")
    return "\n".join(rows)


def effective(env: Mapping[str, str] | None = None) -> dict[str, str | None]:
    """Every declared variable and its value in effect as text (None for a secret that is set;
    secrets are never shown)."""
    values: dict[str, str | None] = {}
    for name in every_name():
        value = setting(name, env)
        entry = declared(name)
        if entry.is_secret and value != entry.default_for(name):
            values[name] = None if value else ""
        elif isinstance(value, list):
            values[name] = ",".join(value)
        elif isinstance(value, float):
            values[name] = f"{value:g}"
        else:
            values[name] = "" if value is None else str(value)
    return values
