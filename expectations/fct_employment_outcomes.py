"""fct_employment_outcomes: one row per participant and horizon (3, 6, 12, 18, 24), docs/definitions.md."""

from __future__ import annotations

from outcomes.quality.suite import Dataset, GateContext, expect, gx, no_violations, unique_key

E = gx.expectations


def build(gate: GateContext) -> Dataset:
    participants = gate.table("dim_participants")
    return Dataset(
        name="fct_employment_outcomes",
        table="fct_employment_outcomes",
        expectations=[
            unique_key(
                "fct_employment_outcomes.one_row_per_participant_horizon",
                ["participant_id", "horizon_months"],
                severity="error",
                description="one outcome row per participant and horizon",
            ),
            expect(
                E.ExpectColumnValuesToBeInSet,
                "fct_employment_outcomes.horizon_in_set",
                column="horizon_months",
                value_set=[3, 6, 12, 18, 24],
                severity="error",
                description="horizons are 3, 6, 12, 18 and 24 months",
            ),
            no_violations(
                "fct_employment_outcomes.5_horizons_per_participant",
                f"""
                select count(*) as participants, min(horizons) as fewest, max(horizons) as most
                from (
                    select dim.participant_id, count(outcomes.participant_id) as horizons
                    from {participants} as dim
                    left join {{batch}} as outcomes using (participant_id)
                    group by dim.participant_id
                ) as counted
                where horizons <> 5 having count(*) > 0
                """,
                severity="error",
                description="every randomised participant has exactly the 5 horizons",
            ),
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
