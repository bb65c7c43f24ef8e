"""agg_prom_trajectories: one row per study, arm, time point and measure (n, mean, sd, median)."""

from __future__ import annotations

from _domain import SCORE_RANGES

from outcomes.quality.suite import Dataset, GateContext, expect, gx, no_violations, unique_key

E = gx.expectations


def build(gate: GateContext) -> Dataset:
    ranges = ", ".join(f"('{measure}', {low}, {high})" for measure, (low, high) in SCORE_RANGES.items())
    return Dataset(
        name="agg_prom_trajectories",
        table="agg_prom_trajectories",
        expectations=[
            unique_key(
                "agg_prom_trajectories.one_row_per_cell",
                ["study", "arm", "timepoint_months", "measure"],
                severity="error",
                description="one row per study, arm, time point and measure",
            ),
            expect(
                E.ExpectColumnValuesToBeInSet,
                "agg_prom_trajectories.measure_in_set",
                column="measure",
                value_set=list(SCORE_RANGES),
                severity="error",
                description="a measure is one of the scores of fct_prom_scores",
            ),
            no_violations(
                "agg_prom_trajectories.statistics_in_range",
                f"""
                select count(*) as cells from {{batch}} as cells
                join (values {ranges}) as bounds (measure, low, high) using (measure)
                where cells.n < 0 or cells.sd < 0
                   or cells.mean not between bounds.low and bounds.high
                   or cells.median not between bounds.low and bounds.high
                having count(*) > 0
                """,
                severity="error",
                description="n and sd are not negative; mean and median lie within the measure's range",
            ),
        ],
    )
