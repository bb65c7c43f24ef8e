with

participants as (

    select * from {{ ref('int_participants_observed') }}

),

evidence as (

    select * from {{ ref('int_employment_evidence_unioned') }}

),

horizons as (

    select unnest(array[3, 6, 12, 18, 24]) as horizon_months

),

first_employment as (

    select
        participant_id,
        min(evidence_date) as first_employment_date
    from evidence
    group by participant_id

),

participant_horizons as (

    select
        participants.participant_id,
        participants.study,
        participants.arm,
        participants.randomised_on,
        participants.observed_until,
        horizons.horizon_months,
        {{ months_after('participants.randomised_on', 'horizons.horizon_months') }} as horizon_date,
        first_employment.first_employment_date

    from participants
    cross join horizons
    left join first_employment
        on participants.participant_id = first_employment.participant_id

),

final as (

    select
        participant_id,
        study,
        arm,
        horizon_months,
        case
            when first_employment_date <= horizon_date then true
            when observed_until >= horizon_date then false
            -- lost or withdrawn before the horizon, or the horizon not reached yet: unknown
        end as is_employed_within,
        first_employment_date,
        first_employment_date - randomised_on as days_to_first_employment

    from participant_horizons

)

select * from final
