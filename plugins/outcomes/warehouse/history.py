"""As-of questions: "what was published on 3 March?" (``outcomes history DATE``, exact counts).

The ``history`` schema keeps every version of ``agg_employment_rates`` (dbt snapshots, taken after
each publish): a version was what analysts and the dashboard saw from ``dbt_valid_from`` until
``dbt_valid_to``. The rates as published on a day are the versions valid at the end of that day
(UTC), next to the build that was published then (``meta.published_builds``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from outcomes.warehouse.connection import Role, Warehouse


@dataclass(frozen=True)
class PublishedRates:
    day: dt.date
    build_id: str
    as_of_date: str
    published_at: str
    rates: list[dict[str, Any]]


def rates_on(warehouse: Warehouse, day: dt.date) -> PublishedRates:
    """The employment rates as published at the end of ``day`` (UTC); LookupError if none was."""
    import psycopg
    from psycopg.rows import dict_row

    end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)
    with psycopg.connect(warehouse.url(), row_factory=dict_row) as conn:
        conn.execute(f"set role {Role.ANALYST}")  # what an analyst may read, nothing more
        build = conn.execute(
            """
            select build_id, as_of_date, published_at from meta.published_builds
            where published_at < %s order by published_at desc limit 1
            """,
            (end,),
        ).fetchone()
        if build is None:
            raise LookupError(f"nothing was published by the end of {day.isoformat()} (UTC)")
        if conn.execute("select to_regclass('history.agg_employment_rates') as t").fetchone()["t"] is None:  # type: ignore[index]
            raise LookupError("no history yet: the build's snapshot_history task has not run")
        rates = conn.execute(
            """
            select study, arm, horizon_months, n_randomised, n_known, n_employed,
                   rate_complete_case_pct, rate_itt_pct, dbt_valid_from
            from history.agg_employment_rates
            where dbt_valid_from < %(end)s and (dbt_valid_to is null or dbt_valid_to >= %(end)s)
            order by study desc, arm, horizon_months
            """,
            {"end": end},
        ).fetchall()
    if not rates:
        raise LookupError(f"the history holds no employment rates valid on {day.isoformat()}")
    return PublishedRates(
        day=day,
        build_id=build["build_id"],
        as_of_date=build["as_of_date"].isoformat(),
        published_at=str(build["published_at"])[:19],
        rates=list(rates),
    )
