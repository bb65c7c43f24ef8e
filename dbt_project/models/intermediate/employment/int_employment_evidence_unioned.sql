with

participants as (

    select * from {{ ref('int_participants_observed') }}

),

jobs as (

    select * from {{ ref('stg_employment__jobs') }}

),

checkpoints as (

    select * from {{ ref('stg_employment__checkpoints') }}

),

competitive_jobs as (

    select
        job_id,
        participant_id,
        start_date,
        end_date,
        hours_per_week,
        delivery_id,
        source_line
    from jobs
    where job_type = 'COMPETITIVE'

),

job_evidence as (

    select
        participant_id,
        start_date as evidence_date,
        'job' as evidence_source,
        -- lineage: the record, and the delivery and line of the version that decided it
        'job ' || job_id as evidence_record,
        delivery_id,
        source_line
    from competitive_jobs

),

checkpoint_evidence as (

    -- a COMPETITIVE checkpoint that no competitive job row covers is evidence of its own
    select
        checkpoints.participant_id,
        checkpoints.assessed_on as evidence_date,
        'checkpoint' as evidence_source,
        'checkpoint month ' || checkpoints.checkpoint_month as evidence_record,
        checkpoints.delivery_id,
        checkpoints.source_line
    from checkpoints
    where
        checkpoints.status = 'COMPETITIVE'
        and not exists (
            select 1
            from competitive_jobs
            where
                competitive_jobs.participant_id = checkpoints.participant_id
                and competitive_jobs.start_date <= checkpoints.assessed_on
                and coalesce(competitive_jobs.end_date, checkpoints.assessed_on) >= checkpoints.assessed_on
        )

),

unioned as (

    select * from job_evidence
    union all
    select * from checkpoint_evidence

),

final as (

    -- only evidence from randomisation to the end of observation counts
    select unioned.*
    from unioned
    inner join participants
        on unioned.participant_id = participants.participant_id
    where unioned.evidence_date between participants.randomised_on and participants.observed_until

)

select * from final
