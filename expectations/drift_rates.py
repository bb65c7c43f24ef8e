"""Drift: each arm's employment rates against the last published build (agg_employment_rates).

ITT rates may move at most OUTCOMES_GATE_MAX_ITT_RATE_CHANGE_PP points; complete-case rates at most
OUTCOMES_GATE_MAX_COMPLETE_CASE_RATE_CHANGE_PP where both builds know enough participants
(OUTCOMES_GATE_MIN_KNOWN_FOR_RATE_DRIFT; a few known people swing a complete-case rate by design).
With a drift reason a larger move publishes with a warning. Skipped before the first publish.

An erasure moves rates by itself: an arm that loses k of its n participants may see a rate move by
up to 100 k / (n - k) points, whatever their outcomes were. Each bound is widened by exactly that
for the participants of the published build whose erasure the build carries out
(``pending.erasure_queue``, as in drift_participants), and by nothing for anyone else.
"""

from __future__ import annotations

from outcomes.quality.suite import Dataset, GateContext, no_violations


def build(gate: GateContext) -> Dataset | None:
    if gate.published is None or "agg_employment_rates" not in gate.published_tables:
        return None
    bounds = gate.config
    if "dim_participants" in gate.published_tables:
        erased = f"""
            select people.study, people.arm, count(*) as n_erased
            from {gate.published_table("dim_participants")} as people
            where people.participant_id in (select participant_id from pending.erasure_queue)
            group by people.study, people.arm
        """
    else:
        erased = "select null::text as study, null::text as arm, 0 as n_erased where false"
    # the most k erased people of n can move a rate: 100 k / (n - k) points; all of them: anything
    allowance = (
        "coalesce(100.0 * coalesce(erased.n_erased, 0) / nullif({n} - coalesce(erased.n_erased, 0), 0), 100)"
    )
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
            {allowance.format(n="published.n_randomised")} as itt_erasure_allowance_pp,
            {allowance.format(n="published.n_known")} as complete_case_erasure_allowance_pp
        from {gate.published_table("agg_employment_rates")} as published
        join {gate.table("agg_employment_rates")} as candidate using (study, arm, horizon_months)
        left join erased using (study, arm)
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
