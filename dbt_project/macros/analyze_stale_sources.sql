{#
    Planner statistics for the sources before the build reads them. A delivery of millions of rows
    is committed minutes before the build; autovacuum analyses a table some time after a tenth of
    it changed, and never a table of fewer than 50 rows (the delivery ledger). A build planned on
    missing statistics takes the plans of a small table: at 100,000 participants, with the ledger
    unanalysed, the registry's staging model estimated 1 visible delivery, hashed 7.5 million
    latest item versions instead of 100,000 participants, and ran for more than 8 minutes. So the
    build first analyses every raw, pending and meta table that was never analysed or changed by
    more than a tenth since, and leaves the rest alone (an analyze samples 30,000 rows whatever
    the size: well under a second a table).
#}
{% macro analyze_stale_sources() %}
    {% if execute %}
        {% set stale = run_query("""
            select format('%I.%I', schemaname, relname)
            from pg_stat_user_tables
            where schemaname in ('raw', 'pending', 'meta')
              and n_live_tup + n_mod_since_analyze > 0
              and (
                  coalesce(last_analyze, last_autoanalyze) is null
                  or n_mod_since_analyze > 0.1 * greatest(n_live_tup, 1000)
              )
            order by 1
        """) %}
        {% for row in stale.rows %}
            {% do run_query("analyze " ~ row[0]) %}
            {{ log("analysed " ~ row[0] ~ " (changed since its last analysis)", info=True) }}
        {% endfor %}
    {% endif %}
{% endmacro %}
