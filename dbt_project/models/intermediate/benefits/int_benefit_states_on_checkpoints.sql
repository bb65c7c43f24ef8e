{#
    Incremental by participant (macros/benefit_months.sql): a build recomputes only the
    participants whose spells, randomisation date or this model's code changed.
#}
{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        on_schema_change='fail',
        pre_hook=["{{ benefit_months_touched('before', 'benefit_states_touched') }}"],
        post_hook=["{{ benefit_months_touched('after', 'benefit_states_touched') }}"],
    )
}}

with

{{ benefit_months_inputs('benefit_states_touched') }},

benefit_types as (

    select * from {{ ref('benefit_types') }}

),

active as (

    -- spells active on the checkpoint date, ranked by the benefit types' precedence
    select
        months.participant_id,
        months.month_index,
        spells.benefit,
        spells.grade_pct,
        row_number() over (
            partition by months.participant_id, months.month_index
            order by benefit_types.precedence asc, spells.grade_pct desc
        ) as precedence_rank

    from months
    inner join spells
        on
            months.participant_id = spells.participant_id
            and months.checkpoint_date >= spells.from_date
            and (spells.to_date is null or months.checkpoint_date <= spells.to_date)
    inner join benefit_types
        on spells.benefit = benefit_types.benefit

),

final as (

    select
        active.participant_id,
        active.month_index,
        active.benefit as benefit_on_checkpoint,
        active.grade_pct as benefit_grade_pct,
        fingerprints.participant_fingerprint

    from active
    inner join fingerprints
        on active.participant_id = fingerprints.participant_id
    where active.precedence_rank = 1

)

select * from final
