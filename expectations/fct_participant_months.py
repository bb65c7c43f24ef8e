"""fct_participant_months: one row per participant and month_index 0..24 (docs/definitions.md, "Time")."""

from __future__ import annotations

from outcomes.quality.suite import Dataset, GateContext, expect, gx, no_violations, unique_key
from outcomes.transform.seeds import benefit_codes, state_codes

E = gx.expectations
DAY_COLUMNS = ("days_sykepenger", "days_aap", "days_uforetrygd", "days_dagpenger", "days_other_benefit")


def build(gate: GateContext) -> Dataset:
    participants = gate.table("dim_participants")
    expectations = [
        unique_key(
            "fct_participant_months.one_row_per_participant_month",
            ["participant_id", "month_index"],
            severity="error",
            description="one row per participant and month",
        ),
        expect(
            E.ExpectColumnValuesToBeBetween,
            "fct_participant_months.month_index_0_to_24",
            column="month_index",
            min_value=0,
            max_value=24,
            severity="error",
            description="month_index is 0..24",
        ),
        no_violations(
            "fct_participant_months.25_months_per_participant",
            """
            select count(*) as participants, min(months) as fewest, max(months) as most
            from (select participant_id, count(*) as months from {batch} group by participant_id) as counted
            where months <> 25 having count(*) > 0
            """,
            severity="error",
            description="exactly 25 months (0..24) per participant",
        ),
        no_violations(
            "fct_participant_months.same_participants_as_dim",
            f"""
            select
                count(*) filter (where timeline.participant_id is null) as without_timeline,
                count(*) filter (where dim.participant_id is null) as not_in_dim_participants
            from (select distinct participant_id from {{batch}} as months) as timeline
            full join {participants} as dim on dim.participant_id = timeline.participant_id
            where timeline.participant_id is null or dim.participant_id is null
            having count(*) > 0
            """,
            severity="error",
            description="every randomised participant has a timeline, and only they do",
        ),
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
        expect(
            E.ExpectColumnValuesToBeInSet,
            "fct_participant_months.work_participation_state_in_set",
            column="work_participation_state",
            value_set=list(state_codes()),
            severity="error",
            description="the work-participation state is one of the seed work_participation_states",
        ),
        expect(
            E.ExpectColumnValuesToBeInSet,
            "fct_participant_months.benefit_on_checkpoint_in_set",
            column="benefit_on_checkpoint",
            value_set=list(benefit_codes()),
            severity="error",
            description="the benefit on the checkpoint date is one of the seed benefit_types",
        ),
        expect(
            E.ExpectColumnValuesToBeBetween,
            "fct_participant_months.benefit_grade_0_to_100",
            column="benefit_grade_pct",
            min_value=0,
            max_value=100,
            severity="error",
            description="a benefit grade is 0-100 %",
        ),
        expect(
            E.ExpectColumnValuesToBeBetween,
            "fct_participant_months.hours_in_range",
            column="employed_hours_per_week",
            min_value=0,
            max_value=80,
            strict_min=True,
            severity="error",
            description="hours per week of a job are 0 < h <= 80",
        ),
    ]
    expectations += [
        expect(
            E.ExpectColumnValuesToBeBetween,
            f"fct_participant_months.{column}_0_to_31",
            column=column,
            min_value=0,
            max_value=31,
            severity="error",
            description=f"{column} counts days of one month (0-31)",
        )
        for column in DAY_COLUMNS
    ]
    return Dataset(name="fct_participant_months", table="fct_participant_months", expectations=expectations)
