with

participants as (

    select * from {{ ref('int_participants_observed') }}

),

month_indexes as (

    select * from {{ ref('int_month_indexes') }}

),

final as (

    select
        participants.participant_id,
        month_indexes.month_index,
        -- PostgreSQL interval arithmetic from day 0 every time: 31 Jan + 1 month = 28/29 Feb
        (participants.randomised_on + month_indexes.month_index * interval '1 month')::date
            as checkpoint_date,
        case
            when month_indexes.month_index >= 1
                then (participants.randomised_on + (month_indexes.month_index - 1) * interval '1 month')::date
        end as period_start_date,
        participants.randomised_on,
        participants.observed_until,
        (participants.randomised_on + month_indexes.month_index * interval '1 month')::date
            <= participants.observed_until as is_observed

    from participants
    cross join month_indexes

)

select * from final
