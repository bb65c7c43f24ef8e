"""agg_employment_rates: one row per study, arm and horizon, with denominators (docs/definitions.md)."""

from __future__ import annotations

from outcomes.quality.suite import Dataset, GateContext, gx, no_violations

E = gx.expectations


def build(gate: GateContext) -> Dataset:
    participants = gate.table("dim_participants")
    return Dataset(
        name="agg_employment_rates",
        table="agg_employment_rates",
        expectations=[
            no_violations(
                "agg_employment_rates.denominators_nest",
                """
                select count(*) as cells from {batch}
                where not (0 <= n_employed and n_employed <= n_known and n_known <= n_randomised)
                having count(*) > 0
                """,
                severity="error",
                description="0 <= employed <= known <= randomised",
            ),
            no_violations(
                "agg_employment_rates.rates_match_counts",
                """
                select count(*) as cells from {batch}
                where rate_itt_pct is distinct from
                        round(100.0 * n_employed / nullif(n_randomised, 0), 1)
                   or rate_complete_case_pct is distinct from
                        round(100.0 * n_employed / nullif(n_known, 0), 1)
                having count(*) > 0
                """,
                severity="error",
                description="each rate is its counts' percentage, rounded to one decimal",
            ),
            no_violations(
                "agg_employment_rates.randomised_match_participants",
                f"""
                select count(*) as cells from {{batch}} as rates
                left join (
                    select study, arm, count(*) as n from {participants} group by study, arm
                ) as dim using (study, arm)
                where rates.n_randomised is distinct from coalesce(dim.n, 0)
                having count(*) > 0
                """,
                severity="error",
                description="n_randomised is the arm's count in dim_participants",
            ),
        ],
    )
