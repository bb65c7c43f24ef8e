{#
    The between-arm comparisons of employment within each horizon, both ways (complete case and
    intention to treat). The rows and their counts are this model's; the estimates are computed
    from the counts by outcomes.analysis (scipy, statsmodels) into the candidate before the gate,
    and into a lock's copy when an erasure recounts it: this model leaves them NULL.
#}

with

outcomes as (

    select * from {{ ref('fct_employment_outcomes') }}

),

two_arms as (

    -- a comparison needs both arms (the pilot has one)
    select study
    from outcomes
    group by study
    having count(distinct arm) = 2

),

counted as (

    select
        outcomes.study,
        outcomes.horizon_months,
        count(*) filter (where outcomes.arm = 'IPS') as n_randomised_ips,
        count(outcomes.is_employed_within) filter (where outcomes.arm = 'IPS') as n_known_ips,
        count(*) filter (where outcomes.arm = 'IPS' and outcomes.is_employed_within) as n_employed_ips,
        count(*) filter (where outcomes.arm = 'TAU') as n_randomised_tau,
        count(outcomes.is_employed_within) filter (where outcomes.arm = 'TAU') as n_known_tau,
        count(*) filter (where outcomes.arm = 'TAU' and outcomes.is_employed_within) as n_employed_tau

    from outcomes
    inner join two_arms
        on outcomes.study = two_arms.study
    group by outcomes.study, outcomes.horizon_months

),

analyses as (

    select analysis
    from (values ('complete_case'), ('itt')) as analyses (analysis)

),

final as (

    select
        counted.study,
        counted.horizon_months,
        analyses.analysis,
        -- complete case: the known; intention to treat: the randomised, unknown as not employed
        case when analyses.analysis = 'itt' then counted.n_randomised_ips else counted.n_known_ips end as n_ips,
        counted.n_employed_ips,
        case when analyses.analysis = 'itt' then counted.n_randomised_tau else counted.n_known_tau end as n_tau,
        counted.n_employed_tau,
        null::numeric as risk_difference_pct,
        null::numeric as risk_difference_ci_low_pct,
        null::numeric as risk_difference_ci_high_pct,
        null::numeric as risk_ratio,
        null::numeric as risk_ratio_ci_low,
        null::numeric as risk_ratio_ci_high,
        null::numeric as odds_ratio,
        null::numeric as odds_ratio_ci_low,
        null::numeric as odds_ratio_ci_high,
        null::numeric as fisher_p,
        null::numeric as chi2_p

    from counted
    cross join analyses

)

select * from final
