"""Every expectation's history across gate runs, read from the gate's ledger (``meta.gate_runs``,
``meta.gate_results``, ``meta.published_builds``, ``meta.published_build_deliveries``,
``meta.deliveries``): what the quality page of the Airflow UI shows (``outcomes.quality.page``).

A *build* here is one gate run (a blocked build has a gate run and no publish). The deliveries
*new in* a build are those it included that the build gated before it did not: for a published
build, exactly the ones its publish recorded (``meta.published_build_deliveries``); for a blocked
one, the ones applied before its gate ran and extracted by its as-of date (the rule a publish
records by, ``outcomes.warehouse.publish.included_deliveries``, at the time of the gate run).

For each expectation: its result in every build (``None`` where it did not run: a drift check on
the first build, or an expectation added later), the build of the current failing streak's
first failure (*failing since*), and the last build whose result or observed value differed from
the build before it (*last changed*), with the deliveries new in it: which delivery moved it.

Cheap (no GX): plain queries, as the analyst role.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass, field
from typing import Any

from outcomes.warehouse.connection import Role, Warehouse
from outcomes.warehouse.publish import INCLUDED_STATUSES, build_cutoff

#: ``observed`` of a query check: ``<n> row(s): [...]``; of a column check: ``<n> of <m> unexpected``.
_LEADING_COUNT = re.compile(r"^(-?\d+(?:\.\d+)?) (?:row\(s\)|of \d+ unexpected)")


@dataclass(frozen=True)
class Build:
    """One gate run of a candidate build, and whether it was published."""

    build_id: str
    as_of_date: str
    checked_at: str
    status: str  # passed, warned, blocked
    expectations: int
    failed_errors: int
    failed_warnings: int
    drift_reason: str | None
    published: bool
    new_deliveries: tuple[str, ...] = ()  # "source/delivery_id", new since the build before
    left_out: tuple[str, ...] = ()  # in the build before, not in this one (an earlier as-of date)
    deliveries_recorded: bool = True  # False: a blocked build's, inferred (see the module doc)


@dataclass(frozen=True)
class Point:
    """One expectation in one build: ``success`` None where it did not run."""

    build: Build
    success: bool | None
    severity: str | None  # a drift check warns instead of blocking in a build with a drift reason
    observed: str | None
    value: float | None  # the observed value as a number, when it is one (a rate, a count)


@dataclass
class ExpectationHistory:
    name: str
    dataset: str
    expectation_type: str
    severity: str
    description: str
    points: list[Point] = field(default_factory=list)  # one per build, oldest first

    @property
    def ran(self) -> list[Point]:
        return [p for p in self.points if p.success is not None]

    @property
    def latest(self) -> Point | None:
        ran = self.ran
        return ran[-1] if ran else None

    @property
    def failing_since(self) -> Build | None:
        """The first build of the failing streak the latest result ends (None if it passes)."""
        since = None
        for point in reversed(self.ran):
            if point.success:
                break
            since = point.build
        return since

    @property
    def last_change(self) -> Point | None:
        """The last build whose result or observed value differed from the build before it that
        ran this expectation (None: it never changed, or ran once)."""
        ran = self.ran
        for before, after in zip(reversed(ran[:-1]), reversed(ran[1:]), strict=True):
            if (before.success, before.observed) != (after.success, after.observed):
                return after
        return None

    @property
    def failures(self) -> int:
        return sum(1 for p in self.ran if p.success is False)


@dataclass(frozen=True)
class QualityHistory:
    builds: list[Build]  # every gate run, oldest first
    expectations: dict[str, ExpectationHistory]  # by name

    @property
    def latest(self) -> Build | None:
        return self.builds[-1] if self.builds else None

    @property
    def last_published(self) -> Build | None:
        return next((b for b in reversed(self.builds) if b.published), None)

    def latest_results(self) -> list[ExpectationHistory]:
        """The expectations the latest build ran: failed first (errors before warnings), then by
        dataset and name."""
        latest = self.latest
        if latest is None:
            return []
        ran = [h for h in self.expectations.values() if h.points and h.points[-1].success is not None]
        return sorted(ran, key=lambda h: (h.points[-1].success, h.severity != "error", h.dataset, h.name))


def observed_number(observed: str | None) -> float | None:
    """The observed value as a number: a plain number (a rate, a count), or the count that leads a
    query check's rows or a column check's unexpected values; None for anything else."""
    if observed is None:
        return None
    match = _LEADING_COUNT.match(observed)
    if match:
        return float(match.group(1))
    try:
        value = json.loads(observed)
    except ValueError:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def read_history(warehouse: Warehouse) -> QualityHistory:
    """Every gate run and every result of the ledger (empty before the first gate run)."""
    import psycopg
    from psycopg.rows import dict_row

    with psycopg.connect(warehouse.url(), row_factory=dict_row) as conn:
        conn.execute(f"set role {Role.ANALYST}")  # the ledger is readable by analysts: no more
        if conn.execute("select to_regclass('meta.gate_runs') as t").fetchone()["t"] is None:  # type: ignore[index]
            return QualityHistory(builds=[], expectations={})
        runs = conn.execute(
            """
            select runs.build_id, runs.as_of_date, runs.checked_at, runs.status, runs.expectations,
                runs.failed_errors, runs.failed_warnings, runs.drift_reason,
                published.build_id is not null as published
            from meta.gate_runs as runs
            left join meta.published_builds as published using (build_id)
            order by runs.checked_at, runs.build_id
            """
        ).fetchall()
        recorded = _recorded_deliveries(conn)
        applied = conn.execute(
            """
            select source, delivery_id, extracted_at, applied_at from meta.deliveries
            where status = any(%s) and extracted_at is not null
            """,
            (list(INCLUDED_STATUSES),),
        ).fetchall()
        results = conn.execute(
            """
            select build_id, dataset, expectation, expectation_type, severity, success, observed,
                description
            from meta.gate_results
            """
        ).fetchall()
    builds = _builds(runs, recorded, applied)
    return QualityHistory(builds=builds, expectations=_histories(builds, results))


def _recorded_deliveries(conn: Any) -> dict[str, set[str]]:
    recorded: dict[str, set[str]] = {}
    for row in conn.execute("select build_id, source, delivery_id from meta.published_build_deliveries"):
        recorded.setdefault(row["build_id"], set()).add(f"{row['source']}/{row['delivery_id']}")
    return recorded


def _builds(
    runs: list[dict[str, Any]], recorded: dict[str, set[str]], applied: list[dict[str, Any]]
) -> list[Build]:
    builds, before = [], set[str]()
    for run in runs:
        included = recorded.get(run["build_id"])
        if included is None:  # not published: the deliveries it saw, as a publish would record them
            cutoff = build_cutoff(run["as_of_date"])
            included = {
                f"{d['source']}/{d['delivery_id']}"
                for d in applied
                if d["extracted_at"] < cutoff and d["applied_at"] <= run["checked_at"]
            }
        builds.append(
            Build(
                build_id=run["build_id"],
                as_of_date=str(run["as_of_date"]),
                checked_at=run["checked_at"].astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
                status=run["status"],
                expectations=run["expectations"],
                failed_errors=run["failed_errors"],
                failed_warnings=run["failed_warnings"],
                drift_reason=run["drift_reason"],
                published=bool(run["published"]),
                new_deliveries=tuple(sorted(included - before)),
                left_out=tuple(sorted(before - included)),
                deliveries_recorded=run["build_id"] in recorded,
            )
        )
        before = included
    return builds


def _histories(builds: list[Build], results: list[dict[str, Any]]) -> dict[str, ExpectationHistory]:
    order = {b.build_id: i for i, b in enumerate(builds)}
    by_name: dict[str, dict[int, dict[str, Any]]] = {}
    for row in results:
        if row["build_id"] in order:
            by_name.setdefault(row["expectation"], {})[order[row["build_id"]]] = row
    histories = {}
    for name, rows in by_name.items():
        newest = rows[max(rows)]  # what the expectation is now: its newest dataset, severity, text
        history = ExpectationHistory(
            name=name,
            dataset=newest["dataset"],
            expectation_type=newest["expectation_type"],
            severity=newest["severity"],
            description=newest["description"] or "",
        )
        for i, build in enumerate(builds):
            found = rows.get(i)
            history.points.append(
                Point(
                    build=build,
                    success=None if found is None else bool(found["success"]),
                    severity=None if found is None else found["severity"],
                    observed=None if found is None else found["observed"],
                    value=None if found is None else observed_number(found["observed"]),
                )
            )
        histories[name] = history
    return histories
