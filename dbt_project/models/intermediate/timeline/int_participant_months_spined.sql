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
        {{ months_after('participants.randomised_on', 'month_indexes.month_index') }}
            as checkpoint_date,
        case
            when month_indexes.month_index >= 1
                then {{ months_after('participants.randomised_on', 'month_indexes.month_index - 1') }}
        end as period_start_date,
        participants.randomised_on,
        participants.observed_until,
        {{ months_after('participants.randomised_on', 'month_indexes.month_index') }}
        <= participants.observed_until as is_observed

    from participants
    cross join month_indexes

)

select * from final
