"""dim_participants: one row per randomised participant (docs/analysts-guide.md)."""

from __future__ import annotations

from outcomes.quality.suite import Dataset, GateContext, gx, no_violations

E = gx.expectations


def build(gate: GateContext) -> Dataset:
    dated_after_as_of = f"""
        select count(*) as participants from {{batch}}
        where randomised_on > {gate.as_of_sql} having count(*) > 0
    """
    return Dataset(
        name="dim_participants",
        table="dim_participants",
        expectations=[
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
