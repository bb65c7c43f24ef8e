{#
    The secondary outcomes compared between arms, per study with both arms, measure and follow-up
    time point: ANCOVA at 6 and 12 months, and the linear mixed model over every follow-up time
    point (6, 12 and 24). The rows and their counts (participants with a baseline score and a
    score at the time point) are this model's; the estimates are computed by outcomes.analysis
    (statsmodels) into the candidate before the gate (and into a lock's copy when an erasure
    recounts it): this model leaves them NULL.
#}
{%- set measures = var('secondary_outcomes') -%}

with

scores as (

    select * from {{ ref('fct_prom_scores') }}

),

participants as (

    select * from {{ ref('dim_participants') }}

),

two_arms as (

    select study
    from participants
    group by study
    having count(distinct arm) = 2

),

baseline as (

    select * from scores
    where timepoint_months = 0

),

followup as (

    -- each follow-up form beside the participant's baseline form and arm, in studies with two arms
    select
        participants.study,
        participants.arm,
        scores.timepoint_months,
    {%- for measure in measures %}
        scores.{{ measure }}::numeric as {{ measure }}_score,
        baseline.{{ measure }}::numeric as {{ measure }}_baseline{{ "," if not loop.last }}
    {%- endfor %}

    from scores
    inner join baseline
        on scores.participant_id = baseline.participant_id
    inner join participants
        on scores.participant_id = participants.participant_id
    inner join two_arms
        on participants.study = two_arms.study
    where scores.timepoint_months > 0

),

paired as (

    -- one row per form and measure: the score and its baseline
    select
        followup.study,
        followup.arm,
        followup.timepoint_months,
        measures.measure,
        measures.score,
        measures.baseline

    from followup
    cross join lateral (
        values
        {%- for measure in measures %}
            (
                '{{ measure }}',
                followup.{{ measure }}_score,
                followup.{{ measure }}_baseline
            ){{ "," if not loop.last }}
        {%- endfor %}
    ) as measures (measure, score, baseline)

),

grid as (

    select
        two_arms.study,
        methods.method,
        methods.timepoint_months,
        measures.measure
    from two_arms
    cross join (
        values
        ('ancova', 6),
        ('ancova', 12),
        ('mixed_model', 6),
        ('mixed_model', 12),
        ('mixed_model', 24)
    ) as methods (method, timepoint_months)
    cross join (
        values
        {%- for measure in measures %}
            ('{{ measure }}'){{ "," if not loop.last }}
        {%- endfor %}
    ) as measures (measure)

),

counted as (

    select
        study,
        timepoint_months,
        measure,
        count(*) filter (where arm = 'IPS' and score is not null and baseline is not null) as n_ips,
        count(*) filter (where arm = 'TAU' and score is not null and baseline is not null) as n_tau
    from paired
    group by study, timepoint_months, measure

),

final as (

    select
        grid.study,
        grid.measure,
        grid.timepoint_months,
        grid.method,
        coalesce(counted.n_ips, 0) as n_ips,
        coalesce(counted.n_tau, 0) as n_tau,
        null::numeric as difference,
        null::numeric as difference_ci_low,
        null::numeric as difference_ci_high,
        null::numeric as p_value

    from grid
    left join counted
        on
            grid.study = counted.study
            and grid.timepoint_months = counted.timepoint_months
            and grid.measure = counted.measure

)

select * from final
