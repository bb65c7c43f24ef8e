{#
    Incremental by participant (macros/benefit_months.sql): a build recomputes only the
    participants whose spells, randomisation date or this model's code changed.
#}
{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        on_schema_change='fail',
        pre_hook=["{{ benefit_months_touched('before', 'benefit_days_touched') }}"],
        post_hook=["{{ benefit_months_touched('after', 'benefit_days_touched') }}"],
    )
}}

with

{{ benefit_months_inputs('benefit_days_touched') }},

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

covered_ranges as (

    -- the disjoint date ranges of each multirange, half-open: [covered_from, covered_until)
    select
        benefit_days.participant_id,
        benefit_days.benefit_group,
        lower(covered_range) as covered_from,
        upper(covered_range) as covered_until
    from benefit_days
    cross join lateral unnest(benefit_days.covered) as covered_range

),

per_month as (

    -- the days of [period_start_date, checkpoint_date) in each range, by integer arithmetic on
    -- the bounds (an unbounded end is NULL, which least and greatest pass over): the same days
    -- as the multirange intersected with the month, without building a multirange per row
    -- (twice as fast at 100,000 participants, bench/README.md)
    select
        months.participant_id,
        months.month_index,
        covered_ranges.benefit_group,
        greatest(
            0,
            least(covered_ranges.covered_until, months.checkpoint_date)
            - greatest(covered_ranges.covered_from, months.period_start_date)
        ) as days_covered

    from months
    inner join covered_ranges
        on months.participant_id = covered_ranges.participant_id
    where months.month_index >= 1

),

days_by_month as (

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

),

final as (

    select
        days_by_month.*,
        fingerprints.participant_fingerprint

    from days_by_month
    inner join fingerprints
        on days_by_month.participant_id = fingerprints.participant_id

)

select * from final
