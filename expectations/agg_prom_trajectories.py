"""agg_prom_trajectories: one row per study, arm, time point and measure (n, mean, sd, median)."""

from __future__ import annotations

from outcomes.quality.suite import Dataset, GateContext, gx, no_violations
from outcomes.transform.seeds import prom_measures

E = gx.expectations


def build(gate: GateContext) -> Dataset:
    # each measure's range: the seed prom_measures
    ranges = ", ".join(f"('{m.measure}', {m.min_value}, {m.max_value})" for m in prom_measures())
    return Dataset(
        name="agg_prom_trajectories",
        table="agg_prom_trajectories",
        expectations=[
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
