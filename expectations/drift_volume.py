"""Volume: each mart's row count against the last published build, within OUTCOMES_GATE_MAX_ROW_CHANGE_PCT.

A mart of the published build missing from the candidate always counts; a mart that was empty has
no baseline yet (the trial's first deliveries). With a drift reason (the
build's ``drift_reason`` parameter) a larger move publishes with a warning, and the reason is kept.
Skipped before the first publish.
"""

from __future__ import annotations

from outcomes.quality.suite import Dataset, GateContext, no_violations


def build(gate: GateContext) -> Dataset | None:
    if gate.published is None:
        return None
    bound = gate.config.max_row_change_pct
    rows = []
    for table in sorted(gate.published_tables):
        candidate = "null::bigint"  # a published mart missing from the candidate
        if table in gate.columns:
            candidate = f"(select count(*) from {gate.table(table)})"
        published = f"(select count(*) from {gate.published_table(table)})"
        rows.append(f"select '{table}' as mart, {published} as published_rows, {candidate} as candidate_rows")
    query = " union all ".join(rows)
    return Dataset(
        name="drift_volume",
        query=query,
        expectations=[
            no_violations(
                "drift_volume.row_counts_within_bounds",
                f"""
                select mart, published_rows, candidate_rows,
                       round(100.0 * (candidate_rows - published_rows) / nullif(published_rows, 0), 1)
                           as change_pct
                from {{batch}}
                where candidate_rows is null
                   or (published_rows > 0
                       and abs(candidate_rows - published_rows) > {bound / 100.0} * published_rows)
                """,
                severity=gate.drift_severity,
                description=f"each mart's row count is within {bound:g} % of the published build's"
                + gate.drift_accepted,
            )
        ],
    )
