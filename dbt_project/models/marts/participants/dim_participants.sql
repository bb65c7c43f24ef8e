with

participants as (

    select * from {{ ref('int_participants_observed') }}

),

final as (

    select
        participant_id,
        study,
        site,
        arm,
        sex,
        -- the trial delivers the birth year only: age in whole years as of the randomisation year
        extract(year from randomised_on)::integer - birth_year as age_at_randomisation,
        randomised_on,
        intervention_ended_on,
        followup_ended_on,
        followup_end_reason,
        observed_until

    from participants

)

select * from final
