"""What a dashboard snapshot shows, read from the published marts (or a lock) as the analyst role.

The dashboard sees exactly what an analyst sees: it connects, sets role ``outcomes_analyst`` and
reads schema ``marts`` (or ``lock_<name>``) and the read-only ``meta`` ledger. It never reads the
candidate, raw data or quarantine.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from outcomes.contracts.registry import source_names
from outcomes.warehouse.connection import Role, Warehouse
from outcomes.warehouse.publish import latest_published, schema_build_id

HORIZONS = (3, 6, 12, 18, 24)
DAYS_PER_MONTH = 365.25 / 12


@dataclass(frozen=True)
class DashboardData:
    schema: str
    build: dict[str, Any] | None  # meta.published_builds of the build in `schema`
    gate: dict[str, Any] | None  # meta.gate_runs of that build
    gate_failures: list[dict[str, Any]]
    deliveries: list[dict[str, Any]]  # the last delivery of each source, with its reconciliation
    quarantined: dict[str, int]  # source -> deliveries still quarantined
    studies: list[str]
    rates: list[dict[str, Any]]  # agg_employment_rates
    survival: list[dict[str, Any]]  # study, arm, months, employed per participant
    states: list[dict[str, Any]]  # study, arm, month_index, state, n (observed months)
    observed: list[dict[str, Any]]  # study, arm, month_index, n observed
    trajectories: list[dict[str, Any]]  # agg_prom_trajectories
    consort: list[dict[str, Any]]  # agg_consort_flow
    lock: LockComparison | None = None
    effects: list[dict[str, Any]] = field(default_factory=list)  # agg_employment_effects
    survival_effects: list[dict[str, Any]] = field(default_factory=list)  # agg_time_to_employment_effects
    prom_effects: list[dict[str, Any]] = field(default_factory=list)  # agg_prom_effects
    baseline: list[dict[str, Any]] = field(default_factory=list)  # agg_baseline_by_arm (Table 1)
    read_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))


@dataclass(frozen=True)
class LockComparison:
    name: str
    as_of_date: str
    build_id: str
    created_at: str
    rates: list[dict[str, Any]]  # the lock's agg_employment_rates


def _rows(conn: Any, sql: Any, params: Any = None) -> list[dict[str, Any]]:
    return list(conn.execute(sql, params).fetchall())


def read(warehouse: Warehouse, schema: str = "marts", compare_lock: str | None = None) -> DashboardData:
    """Everything the snapshot shows, in one repeatable-read transaction (one consistent build)."""
    import psycopg
    from psycopg import sql
    from psycopg.rows import dict_row

    s = sql.Identifier(schema)
    with psycopg.connect(warehouse.url(), row_factory=dict_row) as conn:
        conn.execute("set transaction isolation level repeatable read, read only")
        conn.execute(sql.SQL("set local role {}").format(sql.Identifier(Role.ANALYST)))
        build_id = schema_build_id(conn, schema)
        if build_id is None and schema == "marts":
            last = latest_published(conn)
            build_id = last["build_id"] if last else None
        build = conn.execute(
            "select * from meta.published_builds where build_id = %s", (build_id,)
        ).fetchone()
        gate = conn.execute("select * from meta.gate_runs where build_id = %s", (build_id,)).fetchone()
        gate_failures = _rows(
            conn,
            "select expectation, severity, observed from meta.gate_results "
            "where build_id = %s and not success order by severity, expectation",
            (build_id,),
        )
        deliveries = _rows(
            conn,
            """
            select distinct on (source) source, delivery_id, status, extracted_at, applied_at,
                   rows_received, rows_loaded, rows_pending, rows_purged, rows_quarantined,
                   status = 'duplicate'
                       or rows_received = rows_loaded + rows_pending + rows_purged + rows_quarantined
                       as reconciled
            from meta.deliveries
            order by source, extracted_at desc nulls last, delivery_id desc
            """,
        )
        quarantined = {
            r["source"]: r["n"]
            for r in _rows(
                conn,
                "select source, count(*) as n from meta.deliveries "
                "where status = 'quarantined' group by source",
            )
        }
        q = _schema_queries(s)
        optional = _optional(conn, schema)
        data = DashboardData(
            schema=schema,
            build=build,
            gate=gate,
            gate_failures=gate_failures,
            deliveries=sorted(deliveries, key=lambda r: source_names().index(r["source"])),
            quarantined=quarantined,
            studies=[r["study"] for r in _rows(conn, q["studies"])],
            rates=_rows(conn, q["rates"]),
            survival=optional["survival"],
            states=_rows(conn, q["states"]),
            observed=_rows(conn, q["observed"]),
            trajectories=_rows(conn, q["trajectories"]),
            consort=_rows(conn, q["consort"]),
            lock=_lock(conn, compare_lock) if compare_lock else None,
            effects=optional["effects"],
            survival_effects=optional["survival_effects"],
            prom_effects=optional["prom_effects"],
            baseline=optional["baseline"],
        )
    return data


def _schema_queries(s: Any) -> dict[str, Any]:
    from psycopg import sql

    def q(text: str) -> Any:
        return sql.SQL(text).format(s=s)

    return {
        "studies": q("select distinct study from {s}.dim_participants order by study desc"),
        "rates": q("select * from {s}.agg_employment_rates order by study, arm, horizon_months"),
        "states": q(
            """
            select p.study, p.arm, m.month_index, m.work_participation_state as state, count(*) as n
            from {s}.fct_participant_months as m
            join {s}.dim_participants as p using (participant_id)
            where m.is_observed and m.work_participation_state is not null
            group by 1, 2, 3, 4 order by 1, 2, 3, 4
            """
        ),
        "observed": q(
            """
            select p.study, p.arm, m.month_index, count(*) as n
            from {s}.fct_participant_months as m
            join {s}.dim_participants as p using (participant_id)
            where m.is_observed and m.work_participation_state is not null
            group by 1, 2, 3 order by 1, 2, 3
            """
        ),
        "trajectories": q(
            "select * from {s}.agg_prom_trajectories order by study, measure, arm, timepoint_months"
        ),
        "consort": q("select * from {s}.agg_consort_flow order by study, arm"),
    }


def _optional(conn: Any, schema: str) -> dict[str, list[dict[str, Any]]]:
    """The marts of ``schema`` published since the analysis datasets (issue 17); none where a
    schema was published before them (a warehouse upgraded but not yet rebuilt)."""
    from psycopg import sql

    queries = {
        "effects": ("agg_employment_effects", "select * from {t} order by 1, 2, 3"),
        "survival_effects": ("agg_time_to_employment_effects", "select * from {t} order by 1, 2, 3"),
        "prom_effects": ("agg_prom_effects", "select * from {t} order by 1, 2, 3"),
        "baseline": (
            "agg_baseline_by_arm",
            "select * from {t} order by study, arm, characteristic_order, category",
        ),
        # time to first competitive employment within 24 months, as the analysis dataset has it
        # (censored at the end of observation or at 24 months), in months of 365.25/12 days
        "survival": (
            "adtte_first_employment",
            "select study, arm, analysis_days / {days}::float8 as months, is_event as employed "
            "from {t} order by study, arm, months",
        ),
    }
    found = {}
    for name, (table, query) in queries.items():
        exists = conn.execute(
            "select to_regclass(%s) is not null as e", (f'"{schema}"."{table}"',)
        ).fetchone()
        statement = sql.SQL(query).format(t=sql.Identifier(schema, table), days=sql.Literal(DAYS_PER_MONTH))
        found[name] = _rows(conn, statement) if exists and exists["e"] else []
    return found


def _lock(conn: Any, name: str) -> LockComparison | None:
    from psycopg import sql

    lock = conn.execute("select * from meta.locks where name = %s", (name,)).fetchone()
    if lock is None:
        return None
    rates = _rows(
        conn,
        sql.SQL("select * from {}.agg_employment_rates order by study, arm, horizon_months").format(
            sql.Identifier(lock["schema_name"])
        ),
    )
    return LockComparison(
        name=name,
        as_of_date=str(lock["as_of_date"]),
        build_id=lock["build_id"],
        created_at=str(lock["created_at"])[:19],
        rates=rates,
    )
