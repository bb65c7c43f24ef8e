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

benefit_days as (

    -- the days covered by each group of benefits, overlapping spells merged (a multirange per group)
    select
        spells.participant_id,
        benefit_types.days_group as benefit_group,
        range_agg(daterange(spells.from_date, spells.to_date, '[]')) as covered
    from spells
    inner join benefit_types
        on spells.benefit = benefit_types.benefit
    group by spells.participant_id, benefit_types.days_group

),

per_month as (

    select
        months.participant_id,
        months.month_index,
        benefit_days.benefit_group,
        (
            select coalesce(sum(upper(part) - lower(part)), 0)
            from unnest(
                benefit_days.covered * datemultirange(daterange(months.period_start_date, months.checkpoint_date, '[)'))
            ) as part
        ) as days_covered

    from months
    inner join benefit_days
        on months.participant_id = benefit_days.participant_id
    where months.month_index >= 1

),

final as (

    select
        participant_id,
        month_index,
        sum(days_covered) filter (where benefit_group = 'SYKEPENGER')::integer as days_sykepenger,
        sum(days_covered) filter (where benefit_group = 'AAP')::integer as days_aap,
        sum(days_covered) filter (where benefit_group = 'UFORETRYGD')::integer as days_uforetrygd,
        sum(days_covered) filter (where benefit_group = 'DAGPENGER')::integer as days_dagpenger,
        sum(days_covered) filter (where benefit_group = 'OTHER')::integer as days_other_benefit

    from per_month
    group by participant_id, month_index

)

select * from final
