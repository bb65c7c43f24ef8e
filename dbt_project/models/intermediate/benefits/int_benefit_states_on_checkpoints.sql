with

months as (

    select * from {{ ref('int_participant_months_spined') }}

),

spells as (

    select * from {{ ref('int_benefit_spells') }}

),

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
        participant_id,
        month_index,
        benefit as benefit_on_checkpoint,
        grade_pct as benefit_grade_pct

    from active
    where precedence_rank = 1

)

select * from final
