"""fct_participant_months: one row per participant and month_index 0..24 (docs/definitions.md, "Time")."""

from __future__ import annotations

from outcomes.quality.suite import Dataset, GateContext, gx, no_violations

E = gx.expectations


def build(gate: GateContext) -> Dataset:
    participants = gate.table("dim_participants")
    expectations = [
        no_violations(
            "fct_participant_months.checkpoint_is_r_plus_k_months",
            f"""
            select count(*) as months from {{batch}} as months
            join {participants} as dim using (participant_id)
            where months.checkpoint_date
                <> (dim.randomised_on + months.month_index * interval '1 month')::date
            having count(*) > 0
            """,
            severity="error",
            description="the checkpoint of month k is randomisation + k months",
        ),
        no_violations(
            "fct_participant_months.observed_within_follow_up",
            f"""
            select count(*) as months from {{batch}} as months
            join {participants} as dim using (participant_id)
            where months.is_observed and months.checkpoint_date > dim.observed_until
            having count(*) > 0
            """,
            severity="error",
            description="a month is observed only up to the end of observation",
        ),
    ]
    return Dataset(name="fct_participant_months", table="fct_participant_months", expectations=expectations)
