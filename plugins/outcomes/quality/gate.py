"""The quality gate: the suites of ``expectations/`` on the candidate, by one GX checkpoint.

:func:`run_gate` loads every suite module, builds its dataset against the candidate schema, runs
them all with one checkpoint of a file-backed GX context under ``$OUTCOMES_HOME/gx`` (suites,
checkpoint, validation results and Data Docs on disk; the connection string stays a
``${OUTCOMES_GX_URL}`` template, so no credential is written) and returns a :class:`GateReport`.
:func:`record` keeps the report in ``meta.gate_runs`` / ``meta.gate_results``.

Verdict: ``blocked`` when an ``error`` expectation failed (or could not be evaluated), ``warned``
when only ``warn`` ones did, else ``passed``. Only GX is slow to import: this module imports it
inside :func:`run_gate`.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import logging
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from outcomes.quality.config import GateConfig, load_gate_config
from outcomes.settings import Settings
from outcomes.warehouse.connection import Warehouse
from outcomes.warehouse.publish import CANDIDATE, PUBLISHED, schema_tables

if TYPE_CHECKING:
    from outcomes.quality.suite import Dataset, GateContext

log = logging.getLogger(__name__)

DATASOURCE = "warehouse"
CHECKPOINT = "quality_gate"
URL_VARIABLE = "OUTCOMES_GX_URL"
BATCH = "whole"


@dataclass(frozen=True)
class ExpectationOutcome:
    dataset: str
    name: str
    type: str
    severity: str
    success: bool
    observed: str
    description: str


@dataclass
class GateReport:
    build_id: str
    as_of: dt.date
    outcomes: list[ExpectationOutcome] = field(default_factory=list)
    seconds: float = 0.0
    drift_reason: str | None = None
    data_docs: str | None = None

    def failed(self, severity: str) -> list[ExpectationOutcome]:
        return [o for o in self.outcomes if not o.success and o.severity == severity]

    @property
    def status(self) -> str:
        if self.failed("error"):
            return "blocked"
        return "warned" if self.failed("warn") else "passed"

    def summary(self) -> dict[str, Any]:
        """Counts and the failed expectations: what ``meta.published_builds`` keeps."""
        return {
            "status": self.status,
            "expectations": len(self.outcomes),
            "failed_errors": [f"{o.name}: {o.observed}" for o in self.failed("error")],
            "failed_warnings": [f"{o.name}: {o.observed}" for o in self.failed("warn")],
            "drift_reason": self.drift_reason,
            "seconds": round(self.seconds, 2),
        }

    def message(self) -> str:
        """One line per failed expectation, errors first, with its observed value."""
        head = (
            f"quality gate {self.status} build {self.build_id} (as of {self.as_of}): "
            f"{len(self.failed('error'))} error(s), {len(self.failed('warn'))} warning(s) "
            f"of {len(self.outcomes)} expectations"
        )
        lines = [head]
        for severity in ("error", "warn"):
            for o in self.failed(severity):
                lines.append(f"  [{severity}] {o.name}: {o.description} -- observed {o.observed}")
        return "\n".join(lines)


def suite_modules(settings: Settings) -> list[ModuleType]:
    """Every suite module of ``expectations/`` (files not starting with ``_``), by name."""
    folder = settings.project_dir / "expectations"
    modules = []
    for path in sorted(folder.glob("*.py")):
        if path.name.startswith("_"):
            continue
        spec = importlib.util.spec_from_file_location(f"outcomes_expectations.{path.stem}", path)
        if spec is None or spec.loader is None:  # pragma: no cover - a .py file always has a loader
            raise ImportError(f"cannot load {path}")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        if not callable(getattr(module, "build", None)):
            raise TypeError(f"{path}: a suite module needs build(gate) -> Dataset | None")
        modules.append(module)
    return modules


def gx_url(warehouse: Warehouse) -> str:
    """The warehouse for GX: psycopg2, and a host even on a unix socket (GX rejects none)."""
    from sqlalchemy.engine import make_url

    url = make_url(warehouse.url()).set(drivername="postgresql+psycopg2")
    if not url.host:
        url = url.set(host="localhost")  # the `host` query parameter (the socket) wins
    return url.render_as_string(hide_password=False)


def context_for(conn: Any, as_of: dt.date, drift_reason: str | None, config: GateConfig) -> GateContext:
    from outcomes.quality.suite import GateContext

    published_tables = frozenset(schema_tables(conn, PUBLISHED))
    rows = conn.execute(
        """
        select table_name, column_name, data_type from information_schema.columns
        where table_schema = %s order by table_name, ordinal_position
        """,
        (CANDIDATE,),
    ).fetchall()
    columns: dict[str, list[tuple[str, str]]] = {}
    for table, column, data_type in rows:
        columns.setdefault(table, []).append((column, data_type))
    return GateContext(
        candidate=CANDIDATE,
        published=PUBLISHED if published_tables else None,
        published_tables=published_tables,
        as_of=as_of,
        config=config,
        drift_reason=drift_reason,
        columns=columns,
    )


def _quiet() -> None:
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    for name in ("great_expectations", "great_expectations.core", "great_expectations.datasource"):
        logging.getLogger(name).setLevel(logging.WARNING)


def run_gate(
    settings: Settings,
    warehouse: Warehouse,
    *,
    build_id: str,
    as_of: dt.date,
    drift_reason: str | None = None,
    datasets: Iterable[str] | None = None,
    config: GateConfig | None = None,
) -> GateReport:
    """Run the suites (all, or only ``datasets``) on the candidate; nothing is published here."""
    import psycopg

    started = time.monotonic()
    _quiet()
    import great_expectations as gx
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.data_context.types.base import ProgressBarsConfig

    config = config or load_gate_config()
    with psycopg.connect(warehouse.url()) as conn:
        gate = context_for(conn, as_of, drift_reason, config)
    wanted = set(datasets) if datasets is not None else None
    built: list[Dataset] = []
    for module in suite_modules(settings):
        dataset = module.build(gate)
        if dataset is not None and (wanted is None or dataset.name in wanted):
            built.append(dataset)
    if wanted is not None and wanted - {d.name for d in built}:
        raise ValueError(f"no such dataset(s) in expectations/: {sorted(wanted - {d.name for d in built})}")
    _check_names(built)

    os.environ[URL_VARIABLE] = gx_url(warehouse)
    settings.gx_dir.mkdir(parents=True, exist_ok=True)
    _forget_definitions(settings.gx_dir)
    context = gx.get_context(mode="file", project_root_dir=str(settings.gx_dir))
    context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    context.variables.save()
    if DATASOURCE in [d.name for d in context.data_sources.all().values()]:
        context.data_sources.delete(DATASOURCE)
    source = context.data_sources.add_postgres(name=DATASOURCE, connection_string="${" + URL_VARIABLE + "}")
    batches: dict[str, Any] = {}
    definitions = []
    for dataset in built:
        asset: Any
        if dataset.table is not None:
            asset = source.add_table_asset(dataset.name, table_name=dataset.table, schema_name=gate.candidate)
        else:
            asset = source.add_query_asset(dataset.name, query=_select(dataset.query or ""))
        batches[dataset.name] = asset.add_batch_definition_whole_table(BATCH)
        suite = context.suites.add_or_update(
            gx.ExpectationSuite(name=dataset.name, expectations=dataset.expectations)
        )
        definitions.append(
            context.validation_definitions.add_or_update(
                gx.ValidationDefinition(name=dataset.name, data=batches[dataset.name], suite=suite)
            )
        )
    # one run identifier for the whole gate run: retention keeps or prunes it whole
    run_id = RunIdentifier(run_name=build_id, run_time=dt.datetime.now(dt.UTC))
    result = _checkpoint(gx, context, CHECKPOINT, definitions).run(run_id=run_id)
    results = {r.suite_name: r for r in result.run_results.values()}
    # this run's pages and the index (not the whole site: results accumulate night after night)
    context.build_data_docs(resource_identifiers=list(result.run_results))
    report = GateReport(build_id=build_id, as_of=as_of, drift_reason=drift_reason)
    for dataset_name, suite_result in results.items():
        for item in suite_result.results:
            report.outcomes.append(_outcome(dataset_name, item))
    report.seconds = time.monotonic() - started
    index = settings.gx_data_docs_dir / "index.html"
    report.data_docs = str(index) if index.exists() else None
    log.info(
        "gate %s: %d expectations in %.1f s (%d errors, %d warnings failed)",
        report.status,
        len(report.outcomes),
        report.seconds,
        len(report.failed("error")),
        len(report.failed("warn")),
    )
    return report


def _checkpoint(gx: Any, context: Any, name: str, definitions: list[Any]) -> Any:
    return context.checkpoints.add_or_update(
        gx.Checkpoint(
            name=name,
            validation_definitions=definitions,
            actions=[],  # Data Docs once, by run_gate: the action rebuilds the index per validation
            # counts, not examples: the gate's checks are queries that carry their own first rows
            # (no_violations), or aggregates (a column's min or max); an example of a column's
            # unexpected values would cost GX another scan of the table per expectation
            result_format={"result_format": "SUMMARY", "partial_unexpected_count": 0},
        )
    )


def _forget_definitions(root: Path) -> None:
    """Drop the stored suites, validation definitions and checkpoint: ``expectations/`` is their
    source, and they are written afresh on every run (a stored one may name an asset that no
    longer exists). Validation results and Data Docs are kept."""
    for folder in ("expectations", "validation_definitions", "checkpoints"):
        for path in (root / "gx" / folder).glob("*.json"):
            path.unlink()


def _select(query: str) -> str:
    """GX wants a query asset to start with SELECT: wrap anything else (a WITH query)."""
    query = query.strip().rstrip(";")
    if query[:7].lower() == "select " or query[:7].lower() == "select\n":
        return query
    return f"select * from (\n{query}\n) as dataset"


def _check_names(datasets: list[Dataset]) -> None:
    seen: set[str] = set()
    for dataset in datasets:
        for expectation in dataset.expectations:
            name = (expectation.meta or {}).get("name")
            if not name:
                raise ValueError(f"dataset {dataset.name}: an expectation has no name (use suite.expect)")
            if name in seen:
                raise ValueError(f"expectation name {name!r} is used twice")
            seen.add(name)


def _outcome(dataset: str, item: Any) -> ExpectationOutcome:
    config = item.expectation_config
    meta = config.meta  # set by suite.expect for every expectation (checked by _check_names)
    return ExpectationOutcome(
        dataset=dataset,
        name=meta["name"],
        type=config.type,
        severity=meta["severity"],
        success=bool(item.success),
        observed=observed(item),
        description=config.description or "",
    )


def observed(item: Any) -> str:
    """The observed value of one expectation's result, short and free of row data."""
    info = item.exception_info or {}
    if isinstance(info, dict) and info.get("raised_exception"):
        message = str(info.get("exception_message") or "").strip().splitlines()
        return "could not be evaluated: " + (message[0] if message else "an error")
    result = item.result or {}
    violations = (result.get("details") or {}).get("violations")
    if violations is not None:
        shown = json.dumps(violations, default=str)
        return f"{result.get('observed_value')} row(s): {shown}"
    if "unexpected_count" in result and result.get("unexpected_count") is not None:
        count, total = result["unexpected_count"], result.get("element_count")
        percent = result.get("unexpected_percent")
        text = f"{count} of {total} unexpected"
        if percent is not None:
            text += f" ({percent:.2f} %)"
        return text
    if "observed_value" in result:
        return json.dumps(result["observed_value"], default=str)
    return "n/a"


def record(warehouse: Warehouse, report: GateReport, *, dag_run_id: str | None = None) -> None:
    """Keep the report in ``meta.gate_runs`` and ``meta.gate_results`` (one transaction)."""
    import psycopg

    from outcomes.runners import faults

    faults.point("gate.before_record")
    with psycopg.connect(warehouse.url()) as conn:
        conn.execute("set local role outcomes_owner")
        conn.execute("delete from meta.gate_runs where build_id = %s", (report.build_id,))
        conn.execute(
            """
            insert into meta.gate_runs (build_id, dag_run_id, as_of_date, status, expectations,
                failed_errors, failed_warnings, drift_reason, seconds)
            values (%s, %s, %s, %s, %s, %s, %s, %s, %s)
            """,
            (
                report.build_id,
                dag_run_id,
                report.as_of,
                report.status,
                len(report.outcomes),
                len(report.failed("error")),
                len(report.failed("warn")),
                report.drift_reason,
                round(report.seconds, 3),
            ),
        )
        with conn.cursor() as cur:
            cur.executemany(
                """
                insert into meta.gate_results (build_id, dataset, expectation, expectation_type,
                    severity, success, observed, description)
                values (%s, %s, %s, %s, %s, %s, %s, %s)
                """,
                [
                    (
                        report.build_id,
                        o.dataset,
                        o.name,
                        o.type,
                        o.severity,
                        o.success,
                        o.observed,
                        o.description,
                    )
                    for o in report.outcomes
                ],
            )
        conn.commit()


def new_build_id(now: dt.datetime | None = None) -> str:
    """A build id that sorts by time and is unique per run: ``b20261122T050012.123456Z``."""
    now = now or dt.datetime.now(dt.UTC)
    return "b" + now.strftime("%Y%m%dT%H%M%S") + f".{now.microsecond:06d}Z"
