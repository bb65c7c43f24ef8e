"""fct_employment_outcomes: one row per participant and horizon (3, 6, 12, 18, 24), docs/definitions.md."""

from __future__ import annotations

from outcomes.quality.suite import Dataset, GateContext, gx, no_violations

E = gx.expectations


def build(gate: GateContext) -> Dataset:
    participants = gate.table("dim_participants")
    return Dataset(
        name="fct_employment_outcomes",
        table="fct_employment_outcomes",
        expectations=[
            no_violations(
                "fct_employment_outcomes.first_employment_by_as_of",
                f"""
                select count(*) as participants from {{batch}}
                where first_employment_date > {gate.as_of_sql} having count(*) > 0
                """,
                severity="error",
                description="no first employment dated after the build's as-of date",
            ),
            no_violations(
                "fct_employment_outcomes.days_to_first_employment_match",
                f"""
                select count(*) as rows from {{batch}} as outcomes
                join {participants} as dim using (participant_id)
                where outcomes.days_to_first_employment
                    is distinct from (outcomes.first_employment_date - dim.randomised_on)
                having count(*) > 0
                """,
                severity="error",
                description="days_to_first_employment is first_employment_date - randomised_on",
            ),
            no_violations(
                "fct_employment_outcomes.employed_within_matches_date",
                f"""
                select count(*) as rows from {{batch}} as outcomes
                join {participants} as dim using (participant_id)
                where (outcomes.is_employed_within and (
                        outcomes.first_employment_date is null
                        or outcomes.first_employment_date
                            > (dim.randomised_on + outcomes.horizon_months * interval '1 month')::date))
                   or (not outcomes.is_employed_within and outcomes.first_employment_date
                            <= (dim.randomised_on + outcomes.horizon_months * interval '1 month')::date)
                having count(*) > 0
                """,
                severity="error",
                description="employed within h is true exactly when the first employment is by r + h months",
            ),
            no_violations(
                "fct_employment_outcomes.employed_stays_employed",
                """
                select count(*) as participants from (
                    select participant_id from {batch} as earlier
                    join {batch} as later using (participant_id)
                    where earlier.horizon_months < later.horizon_months
                      and earlier.is_employed_within and later.is_employed_within is not true
                    group by participant_id
                ) as regressed
                having count(*) > 0
                """,
                severity="error",
                description="employed within h means employed within every later horizon",
            ),
        ],
    )
