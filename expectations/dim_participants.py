"""dim_participants: one row per randomised participant (docs/analysts-guide.md)."""

from __future__ import annotations

from outcomes.quality.suite import Dataset, GateContext, expect, gx, no_violations, unique_key

E = gx.expectations
#: The enrolment contract's value sets (docs/sources.md).
VALUE_SETS = {"study": ["PILOT", "RCT"], "arm": ["IPS", "TAU"], "sex": ["F", "M"]}


def build(gate: GateContext) -> Dataset:
    dated_after_as_of = f"""
        select count(*) as participants from {{batch}}
        where randomised_on > {gate.as_of_sql} having count(*) > 0
    """
    return Dataset(
        name="dim_participants",
        table="dim_participants",
        expectations=[
            expect(
                E.ExpectColumnValuesToNotBeNull,
                "dim_participants.participant_id_not_null",
                column="participant_id",
                severity="error",
                description="every participant has an ID",
            ),
            unique_key(
                "dim_participants.participant_id_unique",
                ["participant_id"],
                severity="error",
                description="one row per participant",
            ),
            *[
                expect(
                    E.ExpectColumnValuesToBeInSet,
                    f"dim_participants.{column}_in_set",
                    column=column,
                    value_set=values,
                    severity="error",
                    description=f"{column} is {' or '.join(values)}",
                )
                for column, values in VALUE_SETS.items()
            ],
            expect(
                E.ExpectColumnValuesToBeBetween,
                "dim_participants.age_in_range",
                column="age_at_randomisation",
                min_value=16,
                max_value=100,
                severity="error",
                description="age at randomisation is 16-100 (the contract's birth years)",
            ),
            expect(
                E.ExpectColumnValuesToBeInSet,
                "dim_participants.followup_end_reason_in_set",
                column="followup_end_reason",
                value_set=["COMPLETED", "LOST", "WITHDREW", "DIED"],
                severity="error",
                description="a follow-up end reason is COMPLETED, LOST, WITHDREW or DIED",
            ),
            no_violations(
                "dim_participants.randomised_by_as_of",
                dated_after_as_of,
                severity="error",
                description="nobody is randomised after the build's as-of date",
            ),
            no_violations(
                "dim_participants.dates_in_order",
                """
                select count(*) as participants from {batch}
                where intervention_ended_on < randomised_on
                   or followup_ended_on < randomised_on
                   or observed_until < randomised_on
                   or observed_until > coalesce(followup_ended_on, observed_until)
                having count(*) > 0
                """,
                severity="error",
                description="intervention and follow-up end, and observation, fall on or after randomisation",
            ),
            no_violations(
                "dim_participants.observed_until_by_as_of",
                f"""
                select count(*) as participants from {{batch}}
                where observed_until > {gate.as_of_sql} having count(*) > 0
                """,
                severity="error",
                description="observation ends by the build's as-of date",
            ),
        ],
    )
