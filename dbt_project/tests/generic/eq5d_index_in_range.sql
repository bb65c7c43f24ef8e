{#
    Every non-NULL EQ-5D-3L index lies between the value set's worst state (every dimension at
    level 3: 1 less the constant, n3 and every level-3 decrement) and 1 (seeds/eq5d_uk_tto_1997.csv).
#}
{% test eq5d_index_in_range(model, column_name) %}

    with

    value_set as (

        select * from {{ ref('eq5d_uk_tto_1997') }}

    ),

    bounds as (

        select round(1 - sum(decrement) filter (where term in ('constant', 'n3') or level = 3), 3) as worst
        from value_set

    )

    select scored.{{ column_name }}
    from {{ model }} as scored
    cross join bounds
    where scored.{{ column_name }} < bounds.worst or scored.{{ column_name }} > 1

{% endtest %}
