{#
    The build's as-of date D and its cutoff. A build for D sees the world as known at the end of
    day D (UTC): no record dated after D and no record version or delivery stamped at or after
    D + 1 day 00:00 UTC counts (domain.md, "Time").
#}
{% macro as_of_date() -%}
    {%- set value = var('as_of', none) -%}
    {%- if value is none or value == '' -%}
        {%- set value = modules.datetime.datetime.now(modules.pytz.utc).date().isoformat() -%}
    {%- endif -%}
    date '{{ value }}'
{%- endmacro %}

{% macro as_of_cutoff() -%}
    (({{ as_of_date() }} + 1)::timestamp at time zone 'UTC')
{%- endmacro %}
