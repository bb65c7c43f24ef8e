with

spells as (

    select * from {{ source('raw', 'welfare_benefit_spells') }}

),

deliveries as (

    select * from {{ source('meta', 'deliveries') }}

),

visible_deliveries as (

    -- applied, and extracted before the end of the as-of day
    {{ visible_deliveries('deliveries', 'welfare') }}

),

ranked_versions as (

    -- corrections are new versions of a spell: the latest registered_at wins
    select
        spells.*,
        {{ version_rank('spells', ['spell_id'], 'registered_at') }} as version_rank
    from spells
    inner join visible_deliveries
        on spells.delivery_id = visible_deliveries.delivery_id
    where
        spells.registered_at < {{ as_of_cutoff() }}
        and spells.from_date <= {{ as_of_date() }}

),

final as (

    select
        ranked_versions.person_pseudonym,
        ranked_versions.spell_id,
        ranked_versions.benefit,
        ranked_versions.grade_pct,
        ranked_versions.from_date,
        ranked_versions.to_date,
        ranked_versions.registered_at,
        ranked_versions.delivery_id

    from ranked_versions
    where
        ranked_versions.version_rank = 1
        -- an annulled spell never happened
        and ranked_versions.status = 'ACTIVE'

)

select * from final
