with

enrolment as (

    select * from {{ source('raw', 'trial_enrolment') }}

),

deliveries as (

    select * from {{ source('meta', 'deliveries') }}

),

visible_deliveries as (

    -- applied, and extracted before the end of the as-of day
    {{ visible_deliveries('deliveries', 'trial') }}

),

latest_extract as (

    -- the trial delivers its whole enrolment every time: the latest extract is the truth
    select max(enrolment.delivery_id) as delivery_id
    from enrolment
    inner join visible_deliveries
        on enrolment.delivery_id = visible_deliveries.delivery_id

),

final as (

    select
        enrolment.participant_id,
        enrolment.person_pseudonym,
        enrolment.study,
        enrolment.site,
        enrolment.arm,
        enrolment.sex,
        enrolment.birth_year,
        enrolment.randomised_on,
        -- an end dated after the as-of day is not known yet on that day
        case
            when enrolment.intervention_ended_on <= {{ as_of_date() }}
                then enrolment.intervention_ended_on
        end as intervention_ended_on,
        case
            when enrolment.followup_ended_on <= {{ as_of_date() }}
                then enrolment.followup_ended_on
        end as followup_ended_on,
        case
            when enrolment.followup_ended_on <= {{ as_of_date() }}
                then enrolment.followup_end_reason
        end as followup_end_reason,
        enrolment.delivery_id

    from enrolment
    inner join latest_extract
        on enrolment.delivery_id = latest_extract.delivery_id
    where
        not enrolment.erase
        and enrolment.randomised_on <= {{ as_of_date() }}

)

select * from final
