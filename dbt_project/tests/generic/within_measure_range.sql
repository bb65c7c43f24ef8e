{#
    Every non-NULL score of the column lies within its measure's range (seeds/prom_measures.csv;
    the measure is the column's name unless `measure` names it). A measure the seed lacks fails.
#}
{% test within_measure_range(model, column_name, measure=none) %}

    with

    measures as (

        select * from {{ ref('prom_measures') }}

    )

    select scored.{{ column_name }}
    from {{ model }} as scored
    inner join measures
        on measures.measure = '{{ measure or column_name }}'
    where scored.{{ column_name }} < measures.min_value or scored.{{ column_name }} > measures.max_value

    union all

    select null
    where not exists (select from measures where measures.measure = '{{ measure or column_name }}')

{% endtest %}
