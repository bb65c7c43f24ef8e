{#
    Plain schema names: a model configured with +schema: staging builds into `staging`, not
    `<target>_staging` (dbt's default). Models without a custom schema build into the target schema.
#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}
        {{ target.schema }}
    {%- else -%}
        {{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}
