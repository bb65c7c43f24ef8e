"""agg_time_to_employment_effects: time to first employment, IPS against TAU (docs/analysts-guide.md,
"Effects")."""

from __future__ import annotations

from outcomes.quality.suite import Dataset, GateContext, no_violations


def build(gate: GateContext) -> Dataset:
    times = gate.table("adtte_first_employment")
    return Dataset(
        name="agg_time_to_employment_effects",
        table="agg_time_to_employment_effects",
        expectations=[
            no_violations(
                "agg_time_to_employment_effects.counts_match_times",
                f"""
                select count(*) as cells from {{batch}} as effects
                full join (
                    select study,
                           count(*) filter (where arm = 'IPS') as n_ips,
                           count(*) filter (where arm = 'IPS' and is_event) as n_events_ips,
                           count(*) filter (where arm = 'TAU') as n_tau,
                           count(*) filter (where arm = 'TAU' and is_event) as n_events_tau
                    from {times} group by study having count(distinct arm) = 2
                ) as times using (study)
                where (effects.n_ips, effects.n_events_ips, effects.n_tau, effects.n_events_tau)
                      is distinct from (times.n_ips, times.n_events_ips, times.n_tau, times.n_events_tau)
                having count(*) > 0
                """,
                severity="error",
                description=(
                    "every study with two arms is compared, with its arms' counts and events in "
                    "adtte_first_employment"
                ),
            ),
            no_violations(
                "agg_time_to_employment_effects.estimates_hold",
                """
                select count(*) as cells from {batch}
                where (n_events_ips + n_events_tau > 0 and (logrank_p is null or logrank_chi2 < 0))
                   or (n_events_ips > 0 and n_events_tau > 0 and hazard_ratio is null)
                   or not (hazard_ratio_ci_low <= hazard_ratio and hazard_ratio <= hazard_ratio_ci_high)
                   or (hazard_ratio is null) <> (hazard_ratio_ci_low is null)
                   or logrank_p not between 0 and 1
                having count(*) > 0
                """,
                severity="error",
                description=(
                    "the log-rank test wherever there is an event, the hazard ratio wherever both arms "
                    "have one, inside its interval"
                ),
            ),
        ],
    )
