with

outcomes as (

    select * from {{ ref('fct_employment_outcomes') }}

),

counted as (

    select
        study,
        arm,
        horizon_months,
        count(*) as n_randomised,
        count(is_employed_within) as n_known,
        count(*) filter (where is_employed_within) as n_employed

    from outcomes
    group by study, arm, horizon_months

),

final as (

    select
        study,
        arm,
        horizon_months,
        n_randomised,
        n_known,
        n_employed,
        -- the published convention: employed / known (complete cases)
        round(100.0 * n_employed / nullif(n_known, 0), 1) as rate_complete_case_pct,
        -- intention to treat: employed / randomised, unknown counted as not employed
        round(100.0 * n_employed / nullif(n_randomised, 0), 1) as rate_itt_pct

    from counted

)

select * from final
