{#
    A range rule: every non-NULL value of the column lies in [min_value, max_value], or in
    (min_value, max_value] with exclusive_min.
#}
{% test value_between(model, column_name, min_value, max_value, exclusive_min=false) %}

    select {{ column_name }}
    from {{ model }}
    where
        {{ column_name }} {{ '<=' if exclusive_min else '<' }} {{ min_value }}
        or {{ column_name }} > {{ max_value }}

{% endtest %}
