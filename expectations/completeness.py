"""Completeness: the share of participants with a baseline questionnaire, and with each follow-up
questionnaire and employment checkpoint that is due (its date within observation). Warn-level:
missing data is a finding for the trial team, not a broken build."""

from __future__ import annotations

from outcomes.quality.suite import Dataset, GateContext, expect, gx

E = gx.expectations
QUESTIONNAIRE_FOLLOW_UPS = (6, 12, 24)
EMPLOYMENT_CHECKPOINTS = (3, 6, 12, 18, 24)


def build(gate: GateContext) -> Dataset:
    bounds = gate.config
    prom = [
        f"""coalesce(round(100.0
            * count(*) filter (where scores.timepoint_months = {k} and scores.answered_on is not null
                               and scores.target_date + 45 <= dim.observed_until)
            / nullif(count(*) filter (where scores.timepoint_months = {k}
                                      and scores.target_date + 45 <= dim.observed_until), 0), 1), 100)
            as questionnaire_{k}m_pct"""
        for k in QUESTIONNAIRE_FOLLOW_UPS
    ]
    employment = [
        f"""coalesce(round(100.0
            * count(*) filter (where months.month_index = {k} and checkpoints.participant_id is not null)
            / nullif(count(*) filter (where months.month_index = {k}), 0), 1), 100)
            as employment_checkpoint_{k}m_pct"""
        for k in EMPLOYMENT_CHECKPOINTS
    ]
    query = f"""
        select
            (
                select coalesce(round(100.0 * count(*) filter (where scores.answered_on is not null)
                                      / nullif(count(*), 0), 1), 100)
                from {gate.table("fct_prom_scores")} as scores where scores.timepoint_months = 0
            ) as baseline_questionnaire_pct,
            prom.*,
            employment.*
        from (
            select {", ".join(prom)}
            from {gate.table("fct_prom_scores")} as scores
            join {gate.table("dim_participants")} as dim using (participant_id)
        ) as prom
        cross join (
            select {", ".join(employment)}
            from {gate.table("fct_participant_months")} as months
            left join staging.stg_employment__checkpoints as checkpoints
                on checkpoints.participant_id = months.participant_id
               and checkpoints.checkpoint_month = months.month_index
            where months.is_observed and months.month_index in ({", ".join(map(str, EMPLOYMENT_CHECKPOINTS))})
        ) as employment
    """
    expectations = [
        expect(
            E.ExpectColumnMinToBeBetween,
            "completeness.baseline_questionnaire",
            column="baseline_questionnaire_pct",
            min_value=bounds.min_baseline_questionnaire_pct,
            severity="warn",
            description=f"share (%) of participants with a baseline questionnaire "
            f"(at least {bounds.min_baseline_questionnaire_pct:g} %)",
        )
    ]
    expectations += [
        expect(
            E.ExpectColumnMinToBeBetween,
            f"completeness.questionnaire_{k}m",
            column=f"questionnaire_{k}m_pct",
            min_value=bounds.min_followup_questionnaire_pct,
            severity="warn",
            description=f"share (%) of participants due at {k} months with a questionnaire in the window "
            f"(at least {bounds.min_followup_questionnaire_pct:g} %)",
        )
        for k in QUESTIONNAIRE_FOLLOW_UPS
    ]
    expectations += [
        expect(
            E.ExpectColumnMinToBeBetween,
            f"completeness.employment_checkpoint_{k}m",
            column=f"employment_checkpoint_{k}m_pct",
            min_value=bounds.min_employment_checkpoint_pct,
            severity="warn",
            description=f"share (%) of participants observed at {k} months with an employment checkpoint "
            f"(at least {bounds.min_employment_checkpoint_pct:g} %)",
        )
        for k in EMPLOYMENT_CHECKPOINTS
    ]
    return Dataset(name="completeness", query=query, expectations=expectations)
