{#
    Like every aggregate mart, read from the row-level marts alone: after an erasure, the
    aggregates of a database lock are recomputed from the lock's own rows by this model's SQL
    (outcomes.warehouse.erasures).
#}

with

participants as (

    select * from {{ ref('dim_participants') }}

),

outcomes as (

    select * from {{ ref('fct_employment_outcomes') }}

),

analysed as (

    select
        participant_id,
        bool_or(horizon_months = 12 and is_employed_within is not null) as is_analysed_12m,
        bool_or(horizon_months = 24 and is_employed_within is not null) as is_analysed_24m
    from outcomes
    group by participant_id

),

flow as (

    select
        participants.study,
        participants.arm,
        participants.intervention_ended_on is not null as has_stopped_intervention,
        -- lost, withdrawn or died before the horizon (planned completion is not a loss)
        coalesce(
            participants.followup_end_reason in ('LOST', 'WITHDREW', 'DIED')
            and participants.followup_ended_on < (participants.randomised_on + interval '12 months')::date,
            false
        ) as is_lost_by_12m,
        coalesce(
            participants.followup_end_reason in ('LOST', 'WITHDREW', 'DIED')
            and participants.followup_ended_on < (participants.randomised_on + interval '24 months')::date,
            false
        ) as is_lost_by_24m,
        analysed.is_analysed_12m,
        analysed.is_analysed_24m

    from participants
    inner join analysed
        on participants.participant_id = analysed.participant_id

),

final as (

    select
        study,
        arm,
        count(*) as n_randomised,
        count(*) filter (where has_stopped_intervention) as n_intervention_ended,
        count(*) filter (where is_lost_by_12m) as n_lost_by_12m,
        count(*) filter (where is_analysed_12m) as n_analysed_12m,
        count(*) filter (where is_lost_by_24m) as n_lost_by_24m,
        count(*) filter (where is_analysed_24m) as n_analysed_24m

    from flow
    group by study, arm

)

select * from final
