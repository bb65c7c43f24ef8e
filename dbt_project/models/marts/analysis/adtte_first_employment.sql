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

evidence as (

    -- the row that decided J: of the evidence on that day, a job before a checkpoint, then the
    -- latest delivery and line (the same order as every version choice, macros/versions.sql)
    select
        participant_id,
        evidence_date,
        evidence_source,
        evidence_record,
        delivery_id,
        source_line,
        row_number() over (
            partition by participant_id, evidence_date
            order by evidence_source = 'job' desc, delivery_id desc, source_line desc
        ) as evidence_rank
    from {{ ref('int_employment_evidence_unioned') }}

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
        outcomes.first_employment_date,
        evidence.evidence_source,
        evidence.evidence_record,
        evidence.delivery_id as evidence_delivery_id,
        evidence.source_line as evidence_source_line

    from participants
    inner join outcomes
        on participants.participant_id = outcomes.participant_id
    left join evidence
        on
            outcomes.participant_id = evidence.participant_id
            and outcomes.first_employment_date = evidence.evidence_date
            and evidence.evidence_rank = 1

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
        ) as analysis_days,
        -- lineage of an event: where J came from (NULL when censored)
        case when first_employment_date <= analysis_ends_on then evidence_source end as event_source,
        case when first_employment_date <= analysis_ends_on then evidence_record end as event_record,
        case when first_employment_date <= analysis_ends_on then evidence_delivery_id end as event_delivery_id,
        case when first_employment_date <= analysis_ends_on then evidence_source_line end as event_source_line

    from windowed

)

select * from final
