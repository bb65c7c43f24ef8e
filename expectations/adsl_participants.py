"""adsl_participants: one row per randomised participant, its outcomes those of the row-level marts
(docs/analysts-guide.md, "Analysis datasets")."""

from __future__ import annotations

from outcomes.dashboard.data import HORIZONS
from outcomes.quality.suite import Dataset, GateContext, no_violations


def build(gate: GateContext) -> Dataset:
    participants = gate.table("dim_participants")
    outcomes = gate.table("fct_employment_outcomes")
    differs = "\n                   or ".join(
        f"(adsl.is_employed_within_{h}m is distinct from o.is_employed_within and o.horizon_months = {h})"
        for h in HORIZONS
    )
    return Dataset(
        name="adsl_participants",
        table="adsl_participants",
        expectations=[
            no_violations(
                "adsl_participants.one_row_per_participant",
                f"""
                select count(*) as participants from {{batch}} as adsl
                full join {participants} as dim using (participant_id)
                where adsl.participant_id is null or dim.participant_id is null
                   or (adsl.study, adsl.arm, adsl.randomised_on)
                      is distinct from (dim.study, dim.arm, dim.randomised_on)
                having count(*) > 0
                """,
                severity="error",
                description="every randomised participant has one row, in their study and arm",
            ),
            no_violations(
                "adsl_participants.outcomes_match",
                f"""
                select count(distinct adsl.participant_id) as participants from {{batch}} as adsl
                join {outcomes} as o using (participant_id)
                where {differs}
                   or adsl.first_employment_date is distinct from o.first_employment_date
                having count(*) > 0
                """,
                severity="error",
                description="each horizon's outcome and the first employment date are the outcome mart's",
            ),
        ],
    )
