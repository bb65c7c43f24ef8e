{#
    The baseline table by arm ("Table 1" of a trial report), from adsl_participants: each
    categorical characteristic as counts and percentages per level, each continuous one as n,
    mean, SD, median and quartiles. Percentages are of the participants with a value.
#}
{%- set categorical = [
    ('sex', 'sex'),
    ('site', 'site'),
    ('benefit_at_randomisation', "coalesce(benefit_at_randomisation, 'NONE')"),
] -%}
{%- set continuous = ['age_at_randomisation'] -%}
{%- for measure in var('secondary_outcomes') -%}
    {%- do continuous.append('baseline_' ~ measure) -%}
{%- endfor -%}

with

participants as (

    select * from {{ ref('adsl_participants') }}

),

arms as (

    select
        study,
        arm,
        count(*) as n_arm
    from participants
    group by study, arm

),

levels as (

    -- one row per participant and categorical characteristic
    {% for name, expression in categorical -%}
        select
            study,
            arm,
            '{{ name }}' as characteristic,
            {{ loop.index }} as characteristic_order,
            ({{ expression }})::text as category
        from participants
        {% if not loop.last %}union all{% endif %}
    {% endfor %}

),

category_counts as (

    select
        study,
        arm,
        characteristic,
        category,
        count(*) as n
    from levels
    where category is not null
    group by study, arm, characteristic, category

),

known as (

    select
        study,
        arm,
        characteristic,
        characteristic_order,
        count(category) as n_known
    from levels
    group by study, arm, characteristic, characteristic_order

),

study_categories as (

    -- every category seen in the study, for every arm (0 where an arm has none)
    select distinct
        study,
        characteristic,
        category
    from category_counts

),

categorical_rows as (

    select
        known.study,
        known.arm,
        known.characteristic,
        known.characteristic_order,
        study_categories.category,
        known.n_known,
        coalesce(category_counts.n, 0) as n
    from known
    inner join study_categories
        on
            known.study = study_categories.study
            and known.characteristic = study_categories.characteristic
    left join category_counts
        on
            known.study = category_counts.study
            and known.arm = category_counts.arm
            and known.characteristic = category_counts.characteristic
            and study_categories.category = category_counts.category

),

values_ as (

    -- one row per participant and continuous characteristic
    {% for name in continuous -%}
        select
            study,
            arm,
            '{{ name }}' as characteristic,
            {{ categorical | length + loop.index }} as characteristic_order,
            {{ name }}::numeric as measured
        from participants
        {% if not loop.last %}union all{% endif %}
    {% endfor %}

),

continuous_rows as (

    select
        study,
        arm,
        characteristic,
        characteristic_order,
        count(measured) as n_known,
        round(avg(measured), 3) as mean,
        round(stddev_samp(measured), 3) as sd,
        round((percentile_cont(0.5) within group (order by measured))::numeric, 3) as median,
        round((percentile_cont(0.25) within group (order by measured))::numeric, 3) as q1,
        round((percentile_cont(0.75) within group (order by measured))::numeric, 3) as q3
    from values_
    group by study, arm, characteristic, characteristic_order

),

final as (

    select
        arms.study,
        arms.arm,
        categorical_rows.characteristic,
        categorical_rows.characteristic_order,
        categorical_rows.category,
        arms.n_arm,
        categorical_rows.n_known,
        categorical_rows.n,
        round(100.0 * categorical_rows.n / nullif(categorical_rows.n_known, 0), 1) as pct,
        null::numeric as mean,
        null::numeric as sd,
        null::numeric as median,
        null::numeric as q1,
        null::numeric as q3
    from categorical_rows
    inner join arms
        on categorical_rows.study = arms.study and categorical_rows.arm = arms.arm

    union all

    select
        arms.study,
        arms.arm,
        continuous_rows.characteristic,
        continuous_rows.characteristic_order,
        null as category,
        arms.n_arm,
        continuous_rows.n_known,
        continuous_rows.n_known as n,
        null as pct,
        continuous_rows.mean,
        continuous_rows.sd,
        continuous_rows.median,
        continuous_rows.q1,
        continuous_rows.q3
    from continuous_rows
    inner join arms
        on continuous_rows.study = arms.study and continuous_rows.arm = arms.arm

)

select * from final
