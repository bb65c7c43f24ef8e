"""agg_prom_effects: the secondary outcomes, IPS against TAU (docs/analysts-guide.md, "Effects")."""

from __future__ import annotations

from outcomes.quality.suite import Dataset, GateContext, no_violations


def build(gate: GateContext) -> Dataset:
    return Dataset(
        name="agg_prom_effects",
        table="agg_prom_effects",
        expectations=[
            no_violations(
                "agg_prom_effects.intervals_hold_estimates",
                """
                select count(*) as cells from {batch}
                where not (difference_ci_low <= difference and difference <= difference_ci_high)
                   or (difference is null) <> (difference_ci_low is null or difference_ci_high is null)
                   or (difference is null) <> (p_value is null)
                   or p_value not between 0 and 1
                having count(*) > 0
                """,
                severity="error",
                description="each difference lies in its interval, and comes with its interval and p",
            ),
            no_violations(
                "agg_prom_effects.estimated_where_counts_allow",
                """
                select count(*) as cells from {batch}
                where difference is null and n_ips >= 10 and n_tau >= 10
                having count(*) > 0
                """,
                severity="warn",
                description="a comparison of 10 or more per arm has its estimate (or its model did not fit)",
            ),
        ],
    )
