{#
    Each measure's statistics are aggregated over the wide rows of fct_prom_scores (one group per
    study, arm and time point, every measure's aggregates side by side) and only the result is
    unpivoted to a row per measure: unpivoting first made eight rows of every score row (3.2 M at
    100,000 participants) for a sort and a group of their own (4.1 s against 1.5 s; the same
    rows: exact numeric sums, and each median from the same sorted values, bench/README.md).
#}
{%- set measures = ['odi_pct', 'nrs_pain_intensity', 'nrs_pain_bother', 'hscl25_total', 'hscl25_anxiety',
    'hscl25_depression', 'eq5d_index', 'eq5d_vas'] -%}

with

scores as (

    select * from {{ ref('fct_prom_scores') }}

),

participants as (

    select * from {{ ref('dim_participants') }}

),

by_timepoint as (

    -- per study, arm and time point, each measure over the participants who have it: n, mean,
    -- sample SD (NULL when n < 2) and median, rounded to 3 decimals
    select
        participants.study,
        participants.arm,
        scores.timepoint_months,
    {%- for measure in measures %}
        count(scores.{{ measure }})::integer as {{ measure }}_n,
        round(avg(scores.{{ measure }}::numeric), 3) as {{ measure }}_mean,
        round(stddev_samp(scores.{{ measure }}::numeric), 3) as {{ measure }}_sd,
        round(
            (percentile_cont(0.5) within group (order by scores.{{ measure }}::numeric))::numeric, 3
        ) as {{ measure }}_median{{ "," if not loop.last }}
    {%- endfor %}

    from scores
    inner join participants
        on scores.participant_id = participants.participant_id
    group by participants.study, participants.arm, scores.timepoint_months

),

final as (

    -- one row per study, arm, time point and measure
    select
        by_timepoint.study,
        by_timepoint.arm,
        by_timepoint.timepoint_months,
        measures.measure,
        measures.n,
        measures.mean,
        measures.sd,
        measures.median

    from by_timepoint
    cross join lateral (
        values
        {%- for measure in measures %}
            (
                '{{ measure }}',
                by_timepoint.{{ measure }}_n,
                by_timepoint.{{ measure }}_mean,
                by_timepoint.{{ measure }}_sd,
                by_timepoint.{{ measure }}_median
            ){{ "," if not loop.last }}
        {%- endfor %}
    ) as measures (measure, n, mean, sd, median)

)

select * from final
