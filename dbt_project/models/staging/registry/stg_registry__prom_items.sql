with

items as (

    select * from {{ source('raw', 'registry_proms') }}

),

deliveries as (

    select * from {{ source('meta', 'deliveries') }}

),

participants as (

    select * from {{ ref('stg_trial__participants') }}

),

visible_deliveries as (

    -- applied, and extracted before the end of the as-of day
    {{ visible_deliveries('deliveries', 'registry') }}

),

ranked_versions as (

    -- for one (form_id, item) the latest updated_at wins, whatever order deliveries arrived in
    select
        items.*,
        {{ version_rank('items', ['form_id', 'item'], 'updated_at') }} as version_rank
    from items
    inner join visible_deliveries
        on items.delivery_id = visible_deliveries.delivery_id
    where
        items.updated_at < {{ as_of_cutoff() }}
        and items.answered_on <= {{ as_of_date() }}

),

latest_versions as (

    select * from ranked_versions where version_rank = 1

),

withdrawn_forms as (

    -- is_deleted withdraws the whole form
    select distinct form_id from latest_versions where is_deleted

),

final as (

    select
        participants.participant_id,
        latest_versions.form_id,
        latest_versions.answered_on,
        latest_versions.item,
        latest_versions.value,
        latest_versions.updated_at,
        latest_versions.delivery_id

    from latest_versions
    inner join participants
        on latest_versions.person_pseudonym = participants.person_pseudonym
    -- an anti-join: `not in (subquery)` rescans the subquery for every row once it outgrows work_mem
    where not exists (
        select from withdrawn_forms
        where withdrawn_forms.form_id = latest_versions.form_id
    )

)

select * from final
