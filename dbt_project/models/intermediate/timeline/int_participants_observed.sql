with

participants as (

    select * from {{ ref('stg_trial__participants') }}

),

final as (

    select
        participants.*,
        -- observation ends at follow-up end or at the end of the as-of day, whichever comes first
        least(
            coalesce(participants.followup_ended_on, {{ as_of_date() }}),
            {{ as_of_date() }}
        ) as observed_until

    from participants

)

-- every column of the participant passes through (participants.*)
select * from final  -- noqa: AM04
