{#
    The build's as-of date D and its cutoff. A build for D sees the world as known at the end of
    day D (UTC): no record dated after D and no record version or delivery stamped at or after
    D + 1 day 00:00 UTC counts (docs/definitions.md, "Time").

    D comes from the var `as_of` (`outcomes dbt build --vars '{as_of: D}'`, unit tests), else
    from the environment variable OUTCOMES_AS_OF (what the build DAG sets), else today (UTC).
    The DAG passes it in the environment, not as a var: dbt re-parses the whole project when a
    var changes, but only the files that read an environment variable when its value changes,
    so a new night's date costs a partial parse (bench/README.md, "Partial parsing").
#}
{% macro as_of_date() -%}
    {%- set value = var('as_of', none) -%}
    {%- if value is none or value == '' -%}
        {%- set value = env_var('OUTCOMES_AS_OF', '') -%}
    {%- endif -%}
    {%- if value is none or value == '' -%}
        {%- set value = modules.datetime.datetime.now(modules.pytz.utc).date().isoformat() -%}
    {%- endif -%}
    date '{{ value }}'
{%- endmacro %}

{% macro as_of_cutoff() -%}
    (({{ as_of_date() }} + 1)::timestamp at time zone 'UTC')
{%- endmacro %}
