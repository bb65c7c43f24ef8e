"""agg_consort_flow: one row per study and arm, the CONSORT diagram's numbers."""

from __future__ import annotations

from outcomes.quality.suite import Dataset, GateContext, gx, no_violations

E = gx.expectations


def build(gate: GateContext) -> Dataset:
    participants = gate.table("dim_participants")
    return Dataset(
        name="agg_consort_flow",
        table="agg_consort_flow",
        expectations=[
            no_violations(
                "agg_consort_flow.counts_add_up",
                """
                select count(*) as cells from {batch}
                where least(n_randomised, n_intervention_ended, n_lost_by_12m, n_analysed_12m,
                            n_lost_by_24m, n_analysed_24m) < 0
                   or n_lost_by_12m + n_analysed_12m > n_randomised
                   or n_lost_by_24m + n_analysed_24m > n_randomised
                   or n_lost_by_12m > n_lost_by_24m
                   or n_intervention_ended > n_randomised
                having count(*) > 0
                """,
                severity="error",
                description="no count is negative or exceeds the randomised, and losses only grow",
            ),
            no_violations(
                "agg_consort_flow.randomised_match_participants",
                f"""
                select count(*) as cells from {{batch}} as flow
                full join (
                    select study, arm, count(*) as n from {participants} group by study, arm
                ) as dim using (study, arm)
                where flow.n_randomised is distinct from dim.n
                having count(*) > 0
                """,
                severity="error",
                description="n_randomised is the arm's count in dim_participants, for every arm",
            ),
        ],
    )
