"""The estimates of the effect marts, computed into their tables (docs/analysts-guide.md, "Effects").

dbt builds each effect mart's rows and counts and leaves its estimates NULL; :func:`fill` computes
them with :mod:`outcomes.analysis.effects` from the row-level marts beside them. It runs on the
candidate after dbt and before the gate (the ``estimate_effects`` task), so the estimates are
audited and published with everything else, and on a lock's copy when an erasure recounts the
lock's aggregates (``outcomes.warehouse.locks``): the rule is the same code both times.

Rows are read in a fixed order, so the same rows give the same estimates, digit for digit.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from psycopg import sql

from outcomes.analysis import effects

log = logging.getLogger(__name__)


def _employment(conn: Any, into: sql.Composable, inputs: str) -> int:
    rows = conn.execute(
        sql.SQL(
            "select study, horizon_months, analysis, n_ips, n_employed_ips, n_tau, n_employed_tau "
            "from {} order by study, horizon_months, analysis"
        ).format(into)
    ).fetchall()
    for study, horizon, analysis, n_ips, employed_ips, n_tau, employed_tau in rows:
        values = effects.compare_proportions(employed_ips, n_ips, employed_tau, n_tau)
        _update(conn, into, values, {"study": study, "horizon_months": horizon, "analysis": analysis})
    return len(rows)


def _time_to_employment(conn: Any, into: sql.Composable, inputs: str) -> int:
    studies = [s for (s,) in conn.execute(sql.SQL("select study from {} order by study").format(into))]
    for study in studies:
        times = conn.execute(
            sql.SQL(
                "select analysis_days, is_event, arm = 'IPS' from {} "
                "where study = %s and arm in ('IPS', 'TAU') order by participant_id"
            ).format(sql.Identifier(inputs, "adtte_first_employment")),
            (study,),
        ).fetchall()
        days, events, ips = zip(*times, strict=True) if times else ((), (), ())
        _update(conn, into, effects.compare_survival(days, events, ips), {"study": study})
    return len(studies)


def _prom(conn: Any, into: sql.Composable, inputs: str) -> int:
    grid = conn.execute(
        sql.SQL("select distinct study, measure from {} order by study, measure").format(into)
    ).fetchall()
    for study, measure in grid:
        # the measure names come from the table dbt built, and are checked against the columns
        rows = conn.execute(
            sql.SQL(
                """
                select p.participant_id as participant, s.timepoint_months as time,
                       s.{m}::float8 as score, b.{m}::float8 as baseline, p.arm = 'IPS' as is_ips
                from {scores} as s
                join {scores} as b on b.participant_id = s.participant_id and b.timepoint_months = 0
                join {participants} as p on p.participant_id = s.participant_id
                where p.study = %s and p.arm in ('IPS', 'TAU') and s.timepoint_months > 0
                order by p.participant_id, s.timepoint_months
                """
            ).format(
                m=sql.Identifier(measure),
                scores=sql.Identifier(inputs, "fct_prom_scores"),
                participants=sql.Identifier(inputs, "dim_participants"),
            ),
            (study,),
        ).fetchall()
        records = [
            {"participant": r[0], "time": r[1], "score": r[2], "baseline": r[3], "is_ips": r[4]} for r in rows
        ]
        # the time points of each method are the rows dbt made (agg_prom_effects' grid)
        timepoints: dict[str, list[int]] = defaultdict(list)
        for method, t in conn.execute(
            sql.SQL(
                "select method, timepoint_months from {} where study = %s and measure = %s "
                "order by method, timepoint_months"
            ).format(into),
            (study, measure),
        ):
            timepoints[method].append(t)
        for t in timepoints.get("ancova", []):
            key = {"study": study, "measure": measure, "timepoint_months": t, "method": "ancova"}
            _update(conn, into, effects.ancova([r for r in records if r["time"] == t]), key)
        if timepoints.get("mixed_model"):
            for t, values in effects.mixed_model(records, timepoints["mixed_model"]).items():
                key = {"study": study, "measure": measure, "timepoint_months": t, "method": "mixed_model"}
                _update(conn, into, values, key)
    return len(grid)


#: Each effect mart and the rule that computes its estimates.
ESTIMATED: dict[str, Callable[[Any, sql.Composable, str], int]] = {
    "agg_employment_effects": _employment,
    "agg_time_to_employment_effects": _time_to_employment,
    "agg_prom_effects": _prom,
}


def _update(conn: Any, into: sql.Composable, values: dict[str, Any], key: dict[str, Any]) -> None:
    conn.execute(
        sql.SQL("update {} set {} where {}").format(
            into,
            sql.SQL(", ").join(
                sql.SQL("{} = {}").format(sql.Identifier(c), sql.Placeholder(c)) for c in values
            ),
            sql.SQL(" and ").join(
                sql.SQL("{} = {}").format(sql.Identifier(c), sql.Placeholder(f"key_{c}")) for c in key
            ),
        ),
        {**values, **{f"key_{c}": v for c, v in key.items()}},
    )


def fill(conn: Any, table: str, into: sql.Composable, inputs: str) -> int:
    """Compute the estimates of the effect mart ``table`` into the table ``into`` (its rows as
    dbt made them), from the row-level marts of schema ``inputs``; returns the groups estimated.
    A table that is not an effect mart is left alone (0)."""
    rule = ESTIMATED.get(table)
    return rule(conn, into, inputs) if rule else 0


def fill_schema(conn: Any, schema: str) -> dict[str, int]:
    """Every effect mart of ``schema`` (the candidate), from the row-level marts beside it."""
    done: dict[str, int] = {}
    for table in ESTIMATED:
        if conn.execute("select to_regclass(%s)", (f'"{schema}"."{table}"',)).fetchone() == (None,):
            raise RuntimeError(f"{schema}.{table} is missing: the dbt build did not make it")
        done[table] = fill(conn, table, sql.Identifier(schema, table), schema)
    return done
