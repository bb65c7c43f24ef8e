{#
    Planner statistics for the sources before the build reads them. A delivery of millions of rows
    is committed minutes before the build; autovacuum analyses a table some time after a tenth of
    it changed, and a build planned on missing statistics picks the plans of a small table (at
    100,000 participants the registry backlog's staging model ran minutes longer). So the build
    first analyses every raw and pending table that changed by more than a tenth since its last
    analysis, as autovacuum would, and leaves the rest alone (an analyze samples 30,000 rows
    whatever the size: well under a second a table).
#}
{% macro analyze_stale_sources() %}
    {% if execute %}
        {% set stale = run_query("""
            select format('%I.%I', schemaname, relname)
            from pg_stat_user_tables
            where schemaname in ('raw', 'pending')
              and n_mod_since_analyze > 0.1 * greatest(n_live_tup, 1000)
            order by 1
        """) %}
        {% for row in stale.rows %}
            {% do run_query("analyze " ~ row[0]) %}
            {{ log("analysed " ~ row[0] ~ " (changed since its last analysis)", info=True) }}
        {% endfor %}
    {% endif %}
{% endmacro %}
