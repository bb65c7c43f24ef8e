"""adtte_first_employment: time to first employment, its events those of fct_employment_outcomes
(docs/analysts-guide.md, "Analysis datasets")."""

from __future__ import annotations

from outcomes.quality.suite import Dataset, GateContext, no_violations


def build(gate: GateContext) -> Dataset:
    outcomes = gate.table("fct_employment_outcomes")
    return Dataset(
        name="adtte_first_employment",
        table="adtte_first_employment",
        expectations=[
            no_violations(
                "adtte_first_employment.events_match_outcomes",
                f"""
                select count(*) as participants from {{batch}} as t
                join {outcomes} as o on o.participant_id = t.participant_id and o.horizon_months = 24
                where t.is_event
                      is distinct from coalesce(o.first_employment_date <= t.analysis_ends_on, false)
                   or (t.is_event and (
                          t.event_date is distinct from o.first_employment_date
                          or t.analysis_days <> t.event_date - t.randomised_on
                          or t.event_delivery_id is null or t.event_source_line is null))
                   or (not t.is_event and (
                          t.censored_on is null or t.censor_reason is null
                          or t.analysis_days <> greatest(t.censored_on - t.randomised_on, 0)))
                having count(*) > 0
                """,
                severity="error",
                description=(
                    "an event is the first employment date within 24 months, with the row it came "
                    "from; anyone else is censored with a day and a reason"
                ),
            ),
        ],
    )
