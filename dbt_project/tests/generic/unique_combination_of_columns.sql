{#
    The grain test: no two rows share the combination of `columns` (dbt_utils has the same test;
    the project installs no packages, so it carries its own).
#}
{% test unique_combination_of_columns(model, columns) %}

    select {{ columns | join(', ') }}, count(*) as n_rows
    from {{ model }}
    group by {{ columns | join(', ') }}
    having count(*) > 1

{% endtest %}
