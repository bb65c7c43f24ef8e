with

checkpoints as (

    select * from {{ source('raw', 'employment_checkpoints') }}

),

deliveries as (

    select * from {{ source('meta', 'deliveries') }}

),

visible_deliveries as (

    -- applied, and extracted before the end of the as-of day
    {{ visible_deliveries('deliveries', 'employment') }}

),

ranked_versions as (

    -- one contact per participant and checkpoint: the latest recorded_at wins
    select
        checkpoints.*,
        {{ version_rank('checkpoints', ['participant_id', 'checkpoint_month'], 'recorded_at') }} as version_rank
    from checkpoints
    inner join visible_deliveries
        on checkpoints.delivery_id = visible_deliveries.delivery_id
    where
        checkpoints.recorded_at < {{ as_of_cutoff() }}
        and checkpoints.assessed_on <= {{ as_of_date() }}

),

final as (

    select
        ranked_versions.participant_id,
        ranked_versions.checkpoint_month,
        ranked_versions.assessed_on,
        ranked_versions.status,
        ranked_versions.hours_per_week,
        ranked_versions.recorded_at,
        ranked_versions.delivery_id,
        ranked_versions.source_line

    from ranked_versions
    where ranked_versions.version_rank = 1

)

select * from final
