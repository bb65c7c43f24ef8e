"""Drift: each arm's employment rates against the last published build (agg_employment_rates).

ITT rates may move at most OUTCOMES_GATE_MAX_ITT_RATE_CHANGE_PP points; complete-case rates at most
OUTCOMES_GATE_MAX_COMPLETE_CASE_RATE_CHANGE_PP where both builds know enough participants
(OUTCOMES_GATE_MIN_KNOWN_FOR_RATE_DRIFT; a few known people swing a complete-case rate by design).
With a drift reason a larger move publishes with a warning. Skipped before the first publish.

An erasure moves rates by itself: an arm that loses k of the n people a rate counts may see it move
by up to 100 k / (n - k) points, whatever their outcomes were. Each bound is widened by exactly
that for the people of the published build whose erasure this build carried out: queued in
``pending.erasure_queue`` (as in drift_participants) and gone from the candidate; for the ITT rate
k counts them among the randomised, for the complete-case rate among those known at the horizon.
"""

from __future__ import annotations

from outcomes.quality.suite import Dataset, GateContext, no_violations


def build(gate: GateContext) -> Dataset | None:
    # the marts are published together, so the published outcomes are there with the rates
    if gate.published is None or "agg_employment_rates" not in gate.published_tables:
        return None
    bounds = gate.config
    # the published build's outcomes of the people this build erased: queued for erasure and
    # gone from the candidate (a queued person still in the candidate moves nothing)
    erased = f"""
        select outcomes.study, outcomes.arm, outcomes.horizon_months,
               count(*) as n_erased,
               count(outcomes.is_employed_within) as n_erased_known
        from {gate.published_table("fct_employment_outcomes")} as outcomes
        where outcomes.participant_id in (select participant_id from pending.erasure_queue)
          and outcomes.participant_id not in (select participant_id from {gate.table("dim_participants")})
        group by outcomes.study, outcomes.arm, outcomes.horizon_months
    """

    def allowance(k: str, n: str) -> str:
        """The most k people of n can move a rate by leaving: 100 k / (n - k) points; all: any."""
        return f"case when {k} = 0 then 0 when {n} <= {k} then 100 else 100.0 * {k} / ({n} - {k}) end"

    query = f"""
        with erased as ({erased})
        select
            study, arm, horizon_months,
            published.rate_itt_pct as published_itt_pct,
            candidate.rate_itt_pct as candidate_itt_pct,
            published.rate_complete_case_pct as published_complete_case_pct,
            candidate.rate_complete_case_pct as candidate_complete_case_pct,
            least(published.n_known, candidate.n_known) as fewest_known,
            coalesce(erased.n_erased, 0) as n_erased,
            {allowance("coalesce(erased.n_erased, 0)", "published.n_randomised")} as itt_erasure_allowance_pp,
            {allowance("coalesce(erased.n_erased_known, 0)", "published.n_known")}
                as complete_case_erasure_allowance_pp
        from {gate.published_table("agg_employment_rates")} as published
        join {gate.table("agg_employment_rates")} as candidate using (study, arm, horizon_months)
        left join erased using (study, arm, horizon_months)
    """
    return Dataset(
        name="drift_rates",
        query=query,
        expectations=[
            no_violations(
                "drift_rates.itt_rates_within_bounds",
                f"""
                select study, arm, horizon_months, published_itt_pct, candidate_itt_pct, n_erased
                from {{batch}}
                where abs(candidate_itt_pct - published_itt_pct)
                      > {bounds.max_itt_rate_change_pp} + itt_erasure_allowance_pp
                """,
                severity=gate.drift_severity,
                description=f"each ITT employment rate moved at most {bounds.max_itt_rate_change_pp:g} "
                "points from the published build (more by what the build's erasures can move it)"
                + gate.drift_accepted,
            ),
            no_violations(
                "drift_rates.complete_case_rates_within_bounds",
                f"""
                select study, arm, horizon_months, published_complete_case_pct, candidate_complete_case_pct,
                       n_erased
                from {{batch}}
                where fewest_known >= {bounds.min_known_for_rate_drift}
                  and abs(candidate_complete_case_pct - published_complete_case_pct)
                      > {bounds.max_complete_case_rate_change_pp} + complete_case_erasure_allowance_pp
                """,
                severity=gate.drift_severity,
                description="each complete-case employment rate (where both builds know "
                f">= {bounds.min_known_for_rate_drift}) moved at most "
                f"{bounds.max_complete_case_rate_change_pp:g} points (more by what the build's "
                "erasures can move it)" + gate.drift_accepted,
            ),
        ],
    )
