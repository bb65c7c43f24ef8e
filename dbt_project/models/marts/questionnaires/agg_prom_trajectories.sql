with

scores as (

    select * from {{ ref('fct_prom_scores') }}

),

participants as (

    select * from {{ ref('dim_participants') }}

),

measures_long as (

    -- one row per participant, time point and measure; the value is NULL when not scored
    select
        participants.study,
        participants.arm,
        scores.timepoint_months,
        measures.measure,
        measures.value

    from scores
    inner join participants
        on scores.participant_id = participants.participant_id
    cross join lateral (
        values
        ('odi_pct', scores.odi_pct::numeric),
        ('nrs_pain_intensity', scores.nrs_pain_intensity::numeric),
        ('nrs_pain_bother', scores.nrs_pain_bother::numeric),
        ('hscl25_total', scores.hscl25_total::numeric),
        ('hscl25_anxiety', scores.hscl25_anxiety::numeric),
        ('hscl25_depression', scores.hscl25_depression::numeric),
        ('eq5d_index', scores.eq5d_index::numeric),
        ('eq5d_vas', scores.eq5d_vas::numeric)
    ) as measures (measure, value)

),

final as (

    select
        study,
        arm,
        timepoint_months,
        measure,
        count(value)::integer as n,
        round(avg(value), 3) as mean,
        round(stddev_samp(value), 3) as sd,
        round((percentile_cont(0.5) within group (order by value))::numeric, 3) as median

    from measures_long
    group by study, arm, timepoint_months, measure

)

select * from final
