with

spells as (

    select * from {{ source('raw', 'welfare_benefit_spells') }}

),

deliveries as (

    select * from {{ source('meta', 'deliveries') }}

),

participants as (

    select * from {{ ref('stg_trial__participants') }}

),

visible_deliveries as (

    select delivery_id
    from deliveries
    where
        source = 'welfare'
        and status in ('loaded', 'released')
        and extracted_at < {{ as_of_cutoff() }}

),

ranked_versions as (

    -- corrections are new versions of a spell: the latest registered_at wins
    select
        spells.*,
        row_number() over (
            partition by spells.spell_id
            order by spells.registered_at desc, spells.delivery_id desc, spells.source_line desc
        ) as version_rank
    from spells
    inner join visible_deliveries
        on spells.delivery_id = visible_deliveries.delivery_id
    where
        spells.registered_at < {{ as_of_cutoff() }}
        and spells.from_date <= {{ as_of_date() }}

),

final as (

    select
        participants.participant_id,
        ranked_versions.spell_id,
        ranked_versions.benefit,
        ranked_versions.grade_pct,
        ranked_versions.from_date,
        ranked_versions.to_date,
        ranked_versions.registered_at,
        ranked_versions.delivery_id

    from ranked_versions
    inner join participants
        on ranked_versions.person_pseudonym = participants.person_pseudonym
    where
        ranked_versions.version_rank = 1
        -- an annulled spell never happened
        and ranked_versions.status = 'ACTIVE'

)

select * from final
