-- The participants' benefit spells (macros/cohort.sql): the welfare register's spells as of the
-- build, each with its participant_id; everyone else's left out.
with

participant_spells as (

    {{ of_participants(ref('stg_welfare__benefit_spells')) }}

),

final as (

    select
        participant_id,
        spell_id,
        benefit,
        grade_pct,
        from_date,
        to_date,
        registered_at,
        delivery_id

    from participant_spells

)

select * from final
