"""fct_prom_scores: one row per participant and time point (0, 6, 12, 24), scored (docs/definitions.md)."""

from __future__ import annotations

from outcomes.quality.suite import Dataset, GateContext, gx, no_violations

E = gx.expectations


def build(gate: GateContext) -> Dataset:
    participants = gate.table("dim_participants")
    expectations = [
        no_violations(
            "fct_prom_scores.answered_within_window",
            """
            select count(*) as forms from {batch}
            where answered_on is not null and not (
                (timepoint_months = 0 and answered_on - target_date between -60 and 14)
                or (timepoint_months > 0 and answered_on - target_date between -45 and 45))
            having count(*) > 0
            """,
            severity="error",
            description="the chosen form was answered within its time point's window",
        ),
        no_violations(
            "fct_prom_scores.target_is_r_plus_k_months",
            f"""
            select count(*) as rows from {{batch}} as scores
            join {participants} as dim using (participant_id)
            where scores.target_date
                <> (dim.randomised_on + scores.timepoint_months * interval '1 month')::date
            having count(*) > 0
            """,
            severity="error",
            description="the target date of time point k is randomisation + k months",
        ),
        no_violations(
            "fct_prom_scores.answered_by_as_of",
            f"""
            select count(*) as forms from {{batch}}
            where answered_on > {gate.as_of_sql} having count(*) > 0
            """,
            severity="error",
            description="no form answered after the build's as-of date",
        ),
    ]
    return Dataset(name="fct_prom_scores", table="fct_prom_scores", expectations=expectations)
