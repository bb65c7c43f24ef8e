{#
    Incremental by form (bench/README.md, "Incremental staging"). What a form's rows are depends
    only on that form's raw rows visible as of the build. `form_fingerprint` is a 64-bit hash of
    those: the count of the visible raw rows, the sum of a 64-bit hash of each row's identity
    (delivery, line: raw rows are never updated), and this model's code. A build recomputes only
    the forms whose fingerprint differs from the stored one, or that are new or gone: a night's
    deliveries, pending rows released into raw, an erasure or retention purge (rows leave raw), a
    backfill or a later as-of date (rows become visible or invisible) all change it. The pre-hook
    keeps those forms in a temporary table and deletes their stored rows; the model then inserts
    their new rows. A first build, `--full-refresh`, or a change of this file's code recomputes
    every form. The fingerprints are kept beside the table, one a form, those of forms that end
    with no rows (withdrawn) too (macros/incremental_by_key.sql). Whose forms they are is not staging's
    concern: int_prom_forms_scored keeps the participants' (macros/cohort.sql).
#}
{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        on_schema_change='fail',
        pre_hook=["{{ registry_forms_touched('before') }}"],
        post_hook=["{{ registry_forms_touched('after') }}"],
    )
}}

with

items as (

    {% if is_incremental() %}
        -- the raw rows of the forms to recompute (macros/registry_forms.sql)
        select raw_items.*
        from {{ rows_of_touched_forms(source('raw', 'registry_proms'), 'registry_forms_touched') }} as raw_items
    {% else %}
        select raw_items.* from {{ source('raw', 'registry_proms') }} as raw_items
    {% endif %}

),

visible_items as (

    -- in a delivery applied and extracted before the end of the as-of day, dated by then
    {{ visible_registry_items('items') }}

),

fingerprints as (

    {{ registry_form_fingerprints('visible_items') }}

),

ranked_versions as (

    -- for one (form_id, item) the latest updated_at wins, whatever order deliveries arrived in
    select
        visible_items.*,
        {{ version_rank('visible_items', ['form_id', 'item'], 'updated_at') }} as version_rank
    from visible_items

),

latest_versions as (

    select * from ranked_versions
    where version_rank = 1

),

withdrawn_forms as (

    -- is_deleted withdraws the whole form
    select distinct form_id from latest_versions
    where is_deleted

),

final as (

    select
        latest_versions.person_pseudonym,
        latest_versions.form_id,
        latest_versions.answered_on,
        latest_versions.item,
        latest_versions.value,
        latest_versions.updated_at,
        latest_versions.delivery_id,
        fingerprints.form_fingerprint

    from latest_versions
    inner join fingerprints
        on latest_versions.form_id = fingerprints.form_id
    -- an anti-join: `not in (subquery)` rescans the subquery for every row once it outgrows work_mem
    where not exists (
        select from withdrawn_forms
        where withdrawn_forms.form_id = latest_versions.form_id
    )

)

select * from final
