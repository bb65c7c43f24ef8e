"""The history's consistency, as the erasure and fault tests check it."""

from __future__ import annotations

import psycopg

from outcomes.warehouse.connection import Warehouse


def history_counts(warehouse: Warehouse, without: str | None = None) -> tuple[bool, int, int]:
    """Whether, at every published build's moment (the next publish; now for the last), the
    counts of ``history.agg_employment_rates`` equal the counts of
    ``history.fct_employment_outcomes`` (without the participant ``without``), counted here
    independently of the dbt models; how many builds were checked; how many versions the history
    holds. Also that no key has two versions in a row with the same values, nor overlapping ones."""
    valid = "dbt_valid_from < %(at)s and (dbt_valid_to is null or dbt_valid_to >= %(at)s)"
    with psycopg.connect(warehouse.url()) as conn:
        published = [
            r[0] for r in conn.execute("select published_at::timestamp from meta.published_builds order by 1")
        ]
        moments = [*published[1:], "infinity"]
        agreeing = True
        for at in moments:
            shown = conn.execute(
                "select study, arm, horizon_months, n_randomised, n_known, n_employed "
                f"from history.agg_employment_rates where {valid}",
                {"at": at},
            ).fetchall()
            counted = conn.execute(
                "select study, arm, horizon_months, count(*), count(is_employed_within), "
                "count(*) filter (where is_employed_within) from history.fct_employment_outcomes "
                f"where {valid} and participant_id is distinct from %(without)s group by 1, 2, 3",
                {"at": at, "without": without},
            ).fetchall()
            agreeing = agreeing and set(shown) == set(counted) and len(shown) == 15
        versions = conn.execute(
            """
            select n_randomised, n_known, n_employed, dbt_valid_from, lag(dbt_valid_to) over w,
                   lag(n_randomised) over w, lag(n_known) over w, lag(n_employed) over w
            from history.agg_employment_rates
            window w as (partition by study, arm, horizon_months order by dbt_valid_from)
            """
        ).fetchall()
    for row in versions:
        valid_from, before_to = row[3], row[4]
        assert before_to is None or before_to <= valid_from  # no overlap
        assert row[5] is None or row[5:8] != row[0:3]  # no version that changes nothing
    return agreeing, len(moments), len(versions)
