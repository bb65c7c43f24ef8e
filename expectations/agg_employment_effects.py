"""agg_employment_effects: IPS against TAU per study, horizon and analysis (docs/analysts-guide.md,
"Effects")."""

from __future__ import annotations

from outcomes.quality.suite import Dataset, GateContext, no_violations


def build(gate: GateContext) -> Dataset:
    rates = gate.table("agg_employment_rates")
    return Dataset(
        name="agg_employment_effects",
        table="agg_employment_effects",
        expectations=[
            no_violations(
                "agg_employment_effects.counts_match_rates",
                f"""
                select count(*) as cells from {{batch}} as effects
                full join (
                    select ips.study, ips.horizon_months, analyses.analysis,
                           case when analyses.analysis = 'itt' then ips.n_randomised
                                else ips.n_known end as n_ips,
                           ips.n_employed as n_employed_ips,
                           case when analyses.analysis = 'itt' then tau.n_randomised
                                else tau.n_known end as n_tau,
                           tau.n_employed as n_employed_tau
                    from {rates} as ips
                    join {rates} as tau
                      on tau.study = ips.study and tau.horizon_months = ips.horizon_months and tau.arm = 'TAU'
                    cross join (values ('complete_case'), ('itt')) as analyses (analysis)
                    where ips.arm = 'IPS'
                ) as rates using (study, horizon_months, analysis)
                where (effects.n_ips, effects.n_employed_ips, effects.n_tau, effects.n_employed_tau)
                      is distinct from (rates.n_ips, rates.n_employed_ips, rates.n_tau, rates.n_employed_tau)
                having count(*) > 0
                """,
                severity="error",
                description=(
                    "every comparison's counts are its arms' in agg_employment_rates, and every study "
                    "with two arms is compared"
                ),
            ),
            no_violations(
                "agg_employment_effects.estimates_match_counts",
                """
                select count(*) as cells from {batch}
                where n_ips > 0 and n_tau > 0 and (
                       fisher_p is null
                    or risk_difference_pct is distinct from round(
                           100.0 * (n_employed_ips * n_tau - n_employed_tau * n_ips) / (n_ips * n_tau), 1)
                    or risk_ratio is distinct from case when n_employed_ips > 0 and n_employed_tau > 0
                           then round(1.0 * n_employed_ips * n_tau / (n_employed_tau * n_ips), 3) end
                    or odds_ratio is distinct from
                           case when least(n_employed_ips, n_ips - n_employed_ips,
                                           n_employed_tau, n_tau - n_employed_tau) > 0
                           then round(1.0 * n_employed_ips * (n_tau - n_employed_tau)
                                      / ((n_ips - n_employed_ips) * n_employed_tau), 3) end)
                having count(*) > 0
                """,
                severity="error",
                description=(
                    "the estimates were computed, and the point estimates are their counts' (risk "
                    "difference, risk ratio, odds ratio)"
                ),
            ),
            no_violations(
                "agg_employment_effects.intervals_hold_estimates",
                """
                select count(*) as cells from {batch}
                where not (risk_difference_ci_low_pct <= risk_difference_pct
                           and risk_difference_pct <= risk_difference_ci_high_pct)
                   or not (risk_ratio_ci_low <= risk_ratio and risk_ratio <= risk_ratio_ci_high)
                   or not (odds_ratio_ci_low <= odds_ratio and odds_ratio <= odds_ratio_ci_high)
                   or (risk_ratio is null) <> (risk_ratio_ci_low is null)
                   or (odds_ratio is null) <> (odds_ratio_ci_low is null)
                   or risk_difference_ci_low_pct < -100 or risk_difference_ci_high_pct > 100
                having count(*) > 0
                """,
                severity="error",
                description="each interval holds its estimate; a ratio and its interval are there together",
            ),
            no_violations(
                "agg_employment_effects.p_values_in_range",
                """
                select count(*) as cells from {batch}
                where fisher_p not between 0 and 1 or chi2_p not between 0 and 1
                having count(*) > 0
                """,
                severity="error",
                description="every p lies between 0 and 1 (here: dbt's tests run before the estimates)",
            ),
        ],
    )
