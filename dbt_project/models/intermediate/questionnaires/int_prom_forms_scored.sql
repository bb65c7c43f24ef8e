{#
    One row per questionnaire form of a trial participant, scored (docs/definitions.md, "Questionnaires").
    Each score is NULL when too few of its items are answered. Scores are rounded here, once:
    ODI % to one decimal, HSCL-25 means to two, the EQ-5D index to three (the value set's
    precision); the HSCL-25 case flag is decided on the unrounded total.

    Only the participants' forms (macros/cohort.sql). Incremental by form, like
    stg_registry__prom_items: a form is scored again only when its items' fingerprint, its
    participant, this model's code or the EQ-5D value set changed (macros/registry_forms.sql).
#}
{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        on_schema_change='fail',
        pre_hook=["{{ prom_forms_rescored('before') }}"],
        post_hook=["{{ prom_forms_rescored('after') }}"],
        indexes=[{'columns': ['form_id'], 'unique': true}],
    )
}}

with

items as (

    -- the participants' items (macros/cohort.sql), of the forms to score (in an incremental
    -- build, read as in stg_registry__prom_items: macros/registry_forms.sql)
    {% if is_incremental() %}
        {%- set staged = rows_of_touched_forms(ref('stg_registry__prom_items'), 'prom_forms_rescored') %}
    {% else %}
        {%- set staged = ref('stg_registry__prom_items') %}
    {% endif %}
    select participant_items.*
    from ({{ of_participants(staged) }}) as participant_items

),

forms as (

    select
        participant_id,
        form_id,
        -- a form's date and version: those of its most recently updated item
        (array_agg(answered_on order by updated_at desc, item asc))[1] as answered_on,
        max(updated_at) as updated_at,
        {{ scored_form_fingerprint('max(form_fingerprint)', 'participant_id') }} as form_fingerprint,

        count(value) filter (where item like 'odi\_%') as odi_sections_answered,
        sum(value) filter (where item like 'odi\_%') as odi_sum,

        count(value) filter (where item like 'hscl\_%') as hscl25_items_answered,
        avg(value) filter (where item like 'hscl\_%') as hscl25_total_mean,
        count(value) filter (where item between 'hscl_01' and 'hscl_10') as hscl25_anxiety_items_answered,
        avg(value) filter (where item between 'hscl_01' and 'hscl_10') as hscl25_anxiety_mean,
        count(value) filter (where item between 'hscl_11' and 'hscl_25') as hscl25_depression_items_answered,
        avg(value) filter (where item between 'hscl_11' and 'hscl_25') as hscl25_depression_mean,

        max(value) filter (where item = 'nrs_pain_intensity') as nrs_pain_intensity,
        max(value) filter (where item = 'nrs_pain_bother') as nrs_pain_bother,

        max(value) filter (where item = 'eq5d_mobility') as eq5d_mobility,
        max(value) filter (where item = 'eq5d_selfcare') as eq5d_selfcare,
        max(value) filter (where item = 'eq5d_activities') as eq5d_activities,
        max(value) filter (where item = 'eq5d_pain') as eq5d_pain,
        max(value) filter (where item = 'eq5d_anxiety') as eq5d_anxiety,
        max(value) filter (where item = 'eq5d_vas') as eq5d_vas

    from items
    group by participant_id, form_id

),

value_set as (

    select * from {{ ref('eq5d_uk_tto_1997') }}

),

scored as (

    select
        participant_id,
        form_id,
        answered_on,
        updated_at,

        -- ODI: 100 * sum / (5 * answered sections), when at least 8 of the 10 sections are answered
        case
            when odi_sections_answered >= 8
                then round(100.0 * odi_sum / (5 * odi_sections_answered), 1)
        end as odi_pct,

        nrs_pain_intensity,
        nrs_pain_bother,

        -- HSCL-25: mean of the answered items, when at least 80 % of the scale's items are answered
        -- (total 20 of 25, anxiety 8 of 10, depression 12 of 15)
        case when hscl25_items_answered >= 20 then round(hscl25_total_mean, 2) end as hscl25_total,
        case
            when hscl25_anxiety_items_answered >= 8 then round(hscl25_anxiety_mean, 2)
        end as hscl25_anxiety,
        case
            when hscl25_depression_items_answered >= 12 then round(hscl25_depression_mean, 2)
        end as hscl25_depression,
        case when hscl25_items_answered >= 20 then hscl25_total_mean >= 1.75 end as is_hscl25_case,

        -- EQ-5D-3L, UK TTO value set (Dolan 1997, seeds/eq5d_uk_tto_1997.csv), when all five
        -- dimensions are answered: 1 less every decrement of the value set that the state meets
        case
            when num_nonnulls(eq5d_mobility, eq5d_selfcare, eq5d_activities, eq5d_pain, eq5d_anxiety) = 5
                then round(
                    1 - (
                        select coalesce(sum(value_set.decrement), 0)
                        from value_set
                        where
                            -- the constant from level 2 of the worst dimension, n3 from level 3
                            (
                                value_set.term in ('constant', 'n3')
                                and value_set.level <= greatest(
                                    forms.eq5d_mobility, forms.eq5d_selfcare, forms.eq5d_activities,
                                    forms.eq5d_pain, forms.eq5d_anxiety
                                )
                            )
                            or (value_set.term, value_set.level) in (
                                ('mobility', forms.eq5d_mobility),
                                ('selfcare', forms.eq5d_selfcare),
                                ('activities', forms.eq5d_activities),
                                ('pain', forms.eq5d_pain),
                                ('anxiety', forms.eq5d_anxiety)
                            )
                    ),
                    3
                )
        end as eq5d_index,
        eq5d_vas,
        form_fingerprint

    from forms

),

final as (

    select
        participant_id,
        form_id,
        answered_on,
        updated_at,
        odi_pct,
        nrs_pain_intensity,
        nrs_pain_bother,
        hscl25_total,
        hscl25_anxiety,
        hscl25_depression,
        is_hscl25_case,
        eq5d_index,
        case when eq5d_index is not null then 'UK_TTO_1997' end as eq5d_value_set,
        eq5d_vas,
        form_fingerprint

    from scored

)

select * from final
