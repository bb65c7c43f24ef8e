with

jobs as (

    select * from {{ source('raw', 'employment_jobs') }}

),

deliveries as (

    select * from {{ source('meta', 'deliveries') }}

),

visible_deliveries as (

    -- applied, and extracted before the end of the as-of day
    {{ visible_deliveries('deliveries', 'employment') }}

),

ranked_versions as (

    -- corrections are new versions of a job: the latest recorded_at wins
    select
        jobs.*,
        {{ version_rank('jobs', ['job_id'], 'recorded_at') }} as version_rank
    from jobs
    inner join visible_deliveries
        on jobs.delivery_id = visible_deliveries.delivery_id
    where
        jobs.recorded_at < {{ as_of_cutoff() }}
        and jobs.start_date <= {{ as_of_date() }}

),

final as (

    select
        ranked_versions.job_id,
        ranked_versions.participant_id,
        ranked_versions.start_date,
        -- an end dated after the as-of day is not known yet on that day: still ongoing
        case
            when ranked_versions.end_date <= {{ as_of_date() }} then ranked_versions.end_date
        end as end_date,
        ranked_versions.job_type,
        ranked_versions.hours_per_week,
        ranked_versions.recorded_at,
        ranked_versions.delivery_id,
        ranked_versions.source_line

    from ranked_versions
    where
        ranked_versions.version_rank = 1
        -- a job entered in error never existed
        and not ranked_versions.is_deleted

)

select * from final
