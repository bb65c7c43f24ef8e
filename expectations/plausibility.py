"""Cross-source plausibility: what the sources say together must make sense (one row of measures).

- no employment before randomisation (error): the first employment is on or after day 0;
- a full-time job during 100 % disability benefit (uføretrygd) is flagged (warn);
- employment checkpoints (status COMPETITIVE or NOT_WORKING) that disagree with the job rows on
  their date: the share is bounded (warn). A COMPETITIVE checkpoint without a job row is itself
  evidence (docs/definitions.md), so some disagreement is normal; a jump means one source is off.
"""

from __future__ import annotations

from outcomes.quality.suite import Dataset, GateContext, expect, gx

E = gx.expectations


def build(gate: GateContext) -> Dataset:
    bounds = gate.config
    query = f"""
        with compared as (
            select
                checkpoints.status = 'COMPETITIVE' as says_employed,
                exists (
                    select from staging.stg_employment__jobs as jobs
                    where jobs.participant_id = checkpoints.participant_id
                      and jobs.job_type = 'COMPETITIVE'
                      and jobs.start_date <= checkpoints.assessed_on
                      and (jobs.end_date is null or jobs.end_date >= checkpoints.assessed_on)
                ) as job_rows_say_employed
            from staging.stg_employment__checkpoints as checkpoints
            -- this build's participants (staging holds everyone raw holds)
            join {gate.table("dim_participants")} as cohort using (participant_id)
            where checkpoints.status in ('COMPETITIVE', 'NOT_WORKING')
        )
        select
            (
                select count(*) from {gate.table("fct_employment_outcomes")} as outcomes
                join {gate.table("dim_participants")} as dim using (participant_id)
                where outcomes.first_employment_date < dim.randomised_on
                   or outcomes.days_to_first_employment < 0
            ) as outcomes_employed_before_randomisation,
            (
                select count(*) from {gate.table("fct_participant_months")}
                where employed_hours_per_week >= {bounds.full_time_hours}
                  and benefit_on_checkpoint = 'UFORETRYGD' and benefit_grade_pct >= 100
            ) as full_time_months_on_full_disability,
            (select count(*) from compared) as checkpoints_compared,
            (select count(*) from compared where says_employed <> job_rows_say_employed)
                as checkpoints_disagreeing,
            coalesce((
                select round(100.0 * count(*) filter (where says_employed <> job_rows_say_employed)
                             / nullif(count(*), 0), 1)
                from compared
            ), 0) as checkpoint_disagreement_pct
    """
    return Dataset(
        name="plausibility",
        query=query,
        expectations=[
            expect(
                E.ExpectColumnMaxToBeBetween,
                "plausibility.no_employment_before_randomisation",
                column="outcomes_employed_before_randomisation",
                max_value=0,
                severity="error",
                description="no participant's first employment is before randomisation",
            ),
            expect(
                E.ExpectColumnMaxToBeBetween,
                "plausibility.full_time_job_on_full_disability",
                column="full_time_months_on_full_disability",
                max_value=bounds.max_full_time_on_full_disability,
                severity="warn",
                description=(
                    f"participant-months with a job of >= {bounds.full_time_hours:g} h/week during "
                    f"100 % uføretrygd (at most {bounds.max_full_time_on_full_disability})"
                ),
            ),
            expect(
                E.ExpectColumnMaxToBeBetween,
                "plausibility.checkpoint_vs_job_rows_disagreement",
                column="checkpoint_disagreement_pct",
                max_value=bounds.max_checkpoint_disagreement_pct,
                severity="warn",
                description=(
                    "share (%) of employment checkpoints whose status disagrees with the job rows "
                    f"on their date (at most {bounds.max_checkpoint_disagreement_pct:g} %)"
                ),
            ),
        ],
    )
