{#
    The timeline's one date rule (docs/definitions.md, "Time"): `months` months after `day`, by PostgreSQL
    interval arithmetic from day 0 every time (31 Jan + 1 month = 28/29 Feb).
#}
{% macro months_after(day, months) -%}
    ({{ day }} + ({{ months }}) * interval '1 month')::date
{%- endmacro %}
