"""What a suite module in ``expectations/`` builds on: the gate's context and the checks' shape.

Each module of ``expectations/`` has ``build(gate: GateContext) -> Dataset | None``: the dataset
(a table of the candidate schema, or a query over it) and its expectations, each made with
:func:`expect` so it has a stable name and a severity. Imports Great Expectations: import this
module only inside the gate task (GX costs 7-9 s to import).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, ClassVar

import great_expectations as gx
from great_expectations.expectations import UnexpectedRowsExpectation

from outcomes.contracts.report import IDENTIFYING_COLUMNS, looks_identifying
from outcomes.quality.config import GateConfig

#: The gate's severities, and GX's names for them.
GX_SEVERITY = {"error": "critical", "warn": "warning"}
#: Rows of a violation kept in the result (summaries by construction: never a row of raw data).
EXAMPLE_ROWS = 5


@dataclass(frozen=True)
class GateContext:
    """What the suites may depend on: schemas, the build's as-of date, bounds, a drift reason."""

    candidate: str
    published: str | None  # None before the first publish: no drift to measure
    as_of: dt.date
    config: GateConfig
    drift_reason: str | None = None
    #: Every column of every candidate table: {table: [(column, data_type), ...]}.
    columns: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    #: The tables of the published build (empty before the first publish).
    published_tables: frozenset[str] = frozenset()

    def table(self, name: str) -> str:
        """The qualified candidate table ``name``."""
        return f"{self.candidate}.{name}"

    def published_table(self, name: str) -> str:
        if self.published is None:
            raise RuntimeError("no published build to compare with")
        return f"{self.published}.{name}"

    @property
    def drift_severity(self) -> str:
        """Drift beyond its bounds blocks, unless the build was given a reason: then it warns."""
        return "warn" if self.drift_reason else "error"

    @property
    def drift_accepted(self) -> str:
        """The reason, for a drift expectation's description ('' without one)."""
        return f" (drift accepted: {self.drift_reason})" if self.drift_reason else ""

    @property
    def as_of_sql(self) -> str:
        return f"date '{self.as_of.isoformat()}'"


@dataclass(frozen=True)
class Dataset:
    """A dataset of the gate: a candidate table (``table``) or a SQL ``query``, and its checks."""

    name: str
    expectations: list[Any]
    table: str | None = None
    query: str | None = None

    def __post_init__(self) -> None:
        if (self.table is None) == (self.query is None):
            raise ValueError(f"dataset {self.name}: give exactly one of table and query")


#: The column :func:`no_violations` adds to a query's rows: how many rows the whole query has.
COUNT_COLUMN = "gate_violation_count"
#: What a violation row keeps of a value in a column that says whom it is about
#: (``contracts.report.IDENTIFYING_COLUMNS``), or of a text holding a participant ID or an fnr's
#: shape: never the value (GX's stored results, ``meta.gate_results``, the task log, the alert).
WITHHELD = "(withheld)"


def _identifying(value: Any) -> bool:
    return isinstance(value, str) and looks_identifying(value)


class ExpectNoViolations(UnexpectedRowsExpectation):
    """No row from ``unexpected_rows_query``; a failure keeps the first rows as its evidence.

    GX's own UnexpectedRowsExpectation runs its query twice, once for the rows and once for their
    count, and reports only the count unless the whole checkpoint runs with the COMPLETE result
    format (every unexpected value of every expectation). Here the query runs once: made with
    :func:`no_violations`, it carries its own row count (:data:`COUNT_COLUMN`), and the first rows
    are kept. The queries of this project return summaries (counts, rates, table and column
    names), so those rows are the observed value a data engineer needs, never a row of
    participant data; should a query return a column that says whom a row is about
    (:data:`IDENTIFYING_COLUMNS`), its values are withheld.
    """

    metric_dependencies: ClassVar[tuple[str, ...]] = ("unexpected_rows_query.table",)

    def _validate(
        self,
        metrics: dict[str, Any],
        runtime_configuration: dict[str, Any] | None = None,
        execution_engine: Any = None,
    ) -> Any:
        rows = metrics.get("unexpected_rows_query.table") or []
        count = int(rows[0][COUNT_COLUMN]) if rows else 0
        result: dict[str, Any] = {"success": count == 0, "result": {"observed_value": count}}
        if count:
            result["result"]["details"] = {
                "violations": [
                    {
                        k: WITHHELD if k in IDENTIFYING_COLUMNS or _identifying(v) else v
                        for k, v in dict(row).items()
                        if k != COUNT_COLUMN
                    }
                    for row in rows[:EXAMPLE_ROWS]
                ]
            }
        return result


def expect(kind: type, name: str, *, severity: str, description: str, **kwargs: Any) -> Any:
    """An expectation of ``kind`` with the gate's stable ``name`` and ``severity`` (error|warn)."""
    if severity not in GX_SEVERITY:
        raise ValueError(f"{name}: severity {severity!r} is not one of {', '.join(GX_SEVERITY)}")
    return kind(
        severity=GX_SEVERITY[severity],
        description=description,
        meta={"name": name, "severity": severity},
        **kwargs,
    )


def no_violations(name: str, query: str, *, severity: str, description: str) -> Any:
    """:class:`ExpectNoViolations` with ``query`` (``{batch}`` is the dataset): its rows, each with
    the count of them all (one scan of the query, counted before the first rows are fetched)."""
    inner = query.strip().rstrip(";")
    counted = f"select violations.*, count(*) over () as {COUNT_COLUMN}\nfrom (\n{inner}\n) as violations"
    return expect(
        ExpectNoViolations, name, severity=severity, description=description, unexpected_rows_query=counted
    )


__all__ = ["Dataset", "ExpectNoViolations", "GateContext", "expect", "gx", "no_violations"]
