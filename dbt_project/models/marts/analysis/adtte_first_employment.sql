{#
    Time to first competitive employment, one row per randomised participant, in the spirit of
    CDISC ADaM's ADTTE: from randomisation to the first employment date J within 24 months, or
    censored where observation of the participant ends (the end of follow-up, the build's as-of
    date, or 24 months after randomisation, whichever comes first).
#}

with

participants as (

    select * from {{ ref('dim_participants') }}

),

outcomes as (

    -- J: evidence counts only from randomisation to the end of observation (fct_employment_outcomes)
    select
        participant_id,
        first_employment_date
    from {{ ref('fct_employment_outcomes') }}
    where horizon_months = 24

),

windowed as (

    select
        participants.participant_id,
        participants.study,
        participants.arm,
        participants.randomised_on,
        {{ months_after('participants.randomised_on', 24) }} as analysis_ends_on,
        participants.observed_until,
        participants.followup_ended_on,
        participants.followup_end_reason,
        outcomes.first_employment_date

    from participants
    inner join outcomes
        on participants.participant_id = outcomes.participant_id

),

final as (

    select
        participant_id,
        study,
        arm,
        randomised_on,
        analysis_ends_on,
        coalesce(first_employment_date <= analysis_ends_on, false) as is_event,
        case when first_employment_date <= analysis_ends_on then first_employment_date end as event_date,
        case
            when first_employment_date <= analysis_ends_on then null
            else least(observed_until, analysis_ends_on)
        end as censored_on,
        case
            when first_employment_date <= analysis_ends_on then null
            when observed_until >= analysis_ends_on then 'END_OF_24_MONTHS'
            when followup_ended_on = observed_until then followup_end_reason
            else 'AS_OF_DATE'
        end as censor_reason,
        greatest(
            case
                when first_employment_date <= analysis_ends_on then first_employment_date
                else least(observed_until, analysis_ends_on)
            end - randomised_on,
            0
        ) as analysis_days

    from windowed

)

select * from final
