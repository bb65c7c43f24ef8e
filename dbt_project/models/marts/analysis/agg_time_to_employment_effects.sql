{#
    Time to first competitive employment compared between arms, per study with both arms, from
    adtte_first_employment. The counts are this model's; the log-rank test and the Cox hazard
    ratio are computed by outcomes.analysis (statsmodels) into the candidate before the gate (and
    into a lock's copy when an erasure recounts it): this model leaves them NULL.
#}

with

times as (

    select * from {{ ref('adtte_first_employment') }}

),

final as (

    select
        study,
        count(*) filter (where arm = 'IPS') as n_ips,
        count(*) filter (where arm = 'IPS' and is_event) as n_events_ips,
        count(*) filter (where arm = 'TAU') as n_tau,
        count(*) filter (where arm = 'TAU' and is_event) as n_events_tau,
        null::numeric as logrank_chi2,
        null::numeric as logrank_p,
        null::numeric as hazard_ratio,
        null::numeric as hazard_ratio_ci_low,
        null::numeric as hazard_ratio_ci_high

    from times
    group by study
    having count(distinct arm) = 2

)

select * from final
