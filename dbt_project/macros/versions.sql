{#
    Shared staging logic: which deliveries a build may see, and which version of a record wins.
#}

{# The delivery_ids of `source_name` applied (loaded or released) and extracted before the as-of cutoff. #}
{% macro visible_deliveries(deliveries_relation, source_name) -%}
    select delivery_id
    from {{ deliveries_relation }}
    where
        source = '{{ source_name }}'
        and status in ('loaded', 'released')
        and extracted_at < {{ as_of_cutoff() }}
{%- endmacro %}

{# 1 for the latest version of a record: the latest version column wins, then the later delivery and line. #}
{% macro version_rank(relation_alias, key_columns, version_column) -%}
    row_number() over (
        partition by {% for column in key_columns %}{{ relation_alias }}.{{ column }}{% if not loop.last %}, {% endif %}{% endfor %}
        order by
            {{ relation_alias }}.{{ version_column }} desc,
            {{ relation_alias }}.delivery_id desc,
            {{ relation_alias }}.source_line desc
    )
{%- endmacro %}
