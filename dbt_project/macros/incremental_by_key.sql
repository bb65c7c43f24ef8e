{#
    The machinery of the models incremental by a key: by form (stg_registry__prom_items,
    int_prom_forms_scored: macros/registry_forms.sql) and by participant (the benefit months:
    macros/benefit_months.sql). Each stored row carries its key's fingerprint, a hash of exactly
    what the key's rows are computed from; a build recomputes only the keys whose fingerprint
    changed, or that are new or gone (bench/README.md, "Incremental staging").
#}

{# Another model's code, from dbt's graph ('' while parsing, and in a unit test, whose graph has
   no nodes: its rows' fingerprints are not what it tests). #}
{% macro model_code(name) -%}
    {%- if not execute or 'nodes' not in graph -%}
        {{- return('') -}}
    {%- endif -%}
    {%- set node = graph.nodes.get('model.' ~ project_name ~ '.' ~ name) -%}
    {%- if node is none or not node.raw_code -%}
        {{ exceptions.raise_compiler_error("model_code: " ~ name ~ "'s code is not in the graph") }}
    {%- endif -%}
    {{- return(node.raw_code) -}}
{%- endmacro %}

{# The rows of `relation` of the keys in the temporary table `touched` (a column named `key`), by
   one index probe per key: the lateral subquery (offset 0: never flattened into a join) keeps the
   planner from a scan of the whole relation, which it chose for the semi-join (it estimated a
   seventh of the forms there are). `relation` needs an index that leads with `key`. #}
{% macro rows_of_touched(relation, touched, key) -%}
    (
        select touched_rows.*
        from {{ touched }}
        cross join lateral (
            select keyed_rows.* from {{ relation }} as keyed_rows
            where keyed_rows.{{ key }} = {{ touched }}.{{ key }}
            offset 0
        ) as touched_rows
    )
{%- endmacro %}

{# Where a model incremental by key keeps each key's fingerprint: a table beside the model's
   (`<model>__fingerprints`: key, fingerprint), one row per key the last build computed, with or
   without rows. Read instead of the model's rows (one row a key, not one a row: 0.35 M rows
   instead of 15 M for the registry's items), and holding the keys whose rows came to nothing
   (a withdrawn form, a participant whose spells reach no checkpoint), which would otherwise be
   recomputed every build. #}
{% macro fingerprints_of(relation) -%}
    {{ relation.incorporate(path={"identifier": relation.identifier ~ "__fingerprints"}) }}
{%- endmacro %}

{# The pre-hook of a model incremental by `key`. First, the whole build of the model (these
   statements, the model's own and its post-hooks) reads one snapshot (repeatable read): the
   fingerprints stored are of exactly the rows the model read, though a delivery commits while it
   runs. Then, in an incremental build, the keys whose fingerprint in `current` (a query of `key`,
   `fingerprint`) differs from the stored one, or that are new or gone, into the temporary table
   `touched` (`key`, and its current fingerprint to store; dropped at the model's commit) that the
   model reads; their rows and stored fingerprints deleted. A key in `current` twice (a form of
   two people: its person changed between versions) keeps the larger fingerprint, differs from
   the other, and is recomputed each build. #}
{% macro keys_to_rebuild(touched, current, key, fingerprint) -%}
    set transaction isolation level repeatable read;

    -- outside a transaction block the line above is a warning, not an error
    do $$ begin
        if current_setting('transaction_isolation') <> 'repeatable read' then
            raise exception 'keys_to_rebuild: % is not built in one snapshot', '{{ this }}';
        end if;
    end $$;
{%- if is_incremental() %}

    -- a table built before its fingerprints were kept beside it: the fingerprints of its rows
    create table if not exists {{ fingerprints_of(this) }} as
    select {{ key }}, max({{ fingerprint }}) as {{ fingerprint }}
    from {{ this }}
    group by {{ key }};

    analyze {{ fingerprints_of(this) }};

    create temporary table {{ touched }} on commit drop as
    with

    current_keys as (
        {{ current }}
    ),

    stored_keys as (
        select {{ key }}, {{ fingerprint }} from {{ fingerprints_of(this) }}
    ),

    compared as (
        select
            coalesce(current_keys.{{ key }}, stored_keys.{{ key }}) as {{ key }},
            current_keys.{{ fingerprint }},
            current_keys.{{ fingerprint }} is distinct from stored_keys.{{ fingerprint }} as differs
        from current_keys
        full outer join stored_keys
            on current_keys.{{ key }} = stored_keys.{{ key }}
    )

    -- one row a key: a key read twice would be computed from every row twice
    select {{ key }}, max({{ fingerprint }}) as {{ fingerprint }}
    from compared
    group by {{ key }}
    having bool_or(differs);

    analyze {{ touched }};

    delete from {{ this }}
    where {{ key }} in (select {{ key }} from {{ touched }});

    delete from {{ fingerprints_of(this) }}
    where {{ key }} in (select {{ key }} from {{ touched }})
{%- endif -%}
{%- endmacro %}

{# The post-hook of a model incremental by `key`: the fingerprints of the keys it computed, kept
   (those still current). A first build or a full refresh keeps every key's, anew.

   Then the planner is told how many rows a key has. ANALYZE's sample of 30,000 rows sees few
   rows of each key and estimates a fraction of the keys there are (26,500 forms where the
   registry's items have 345,000), so it expects 13 times the rows a key has and deletes the
   rows of a night's 3,000 touched forms by a scan of all 15 M (4 s) instead of by the index
   (0.3 s). The keys kept beside (a few without rows included) over the rows ANALYZE counted is
   the fraction of distinct keys, set on the column and read by the next ANALYZE (of that
   column, here). #}
{% macro keys_rebuilt(touched, current, key, fingerprint) -%}
{%- if is_incremental() -%}
    insert into {{ fingerprints_of(this) }} ({{ key }}, {{ fingerprint }})
    select {{ key }}, {{ fingerprint }} from {{ touched }}
    where {{ fingerprint }} is not null;
{%- else -%}
    drop table if exists {{ fingerprints_of(this) }};

    create table {{ fingerprints_of(this) }} as
    select current_keys.{{ key }}, max(current_keys.{{ fingerprint }}) as {{ fingerprint }}
    from ({{ current }}) as current_keys
    group by current_keys.{{ key }}
    -- as the incremental path: a key without a fingerprint is not kept (and so never matches)
    having max(current_keys.{{ fingerprint }}) is not null;

    alter table {{ fingerprints_of(this) }} add primary key ({{ key }});
{%- endif %}

    analyze {{ fingerprints_of(this) }};

    do $$
    declare
        distinct_fraction float8;
    begin
        select -least(1.0, kept.reltuples::float8 / greatest(model.reltuples::float8, 1.0))
        into distinct_fraction
        from pg_class as model, pg_class as kept
        where model.oid = '{{ this }}'::regclass and kept.oid = '{{ fingerprints_of(this) }}'::regclass
            -- counted by the ANALYZE of the project's post-hook, which runs before this one
            and model.reltuples > 0;
        if distinct_fraction < 0 then
            execute format(
                'alter table %s alter column %I set (n_distinct = %s)',
                '{{ this }}', '{{ key }}', distinct_fraction
            );
        end if;
    end $$;

    analyze {{ this }} ({{ key }})
{%- endmacro %}

{# A model incremental by `key`: its pre-hook (`phase` 'before': keys_to_rebuild) or its post-hook
   ('after': keys_rebuilt), for the keys and fingerprints of `current`. #}
{% macro rebuild_by_key(phase, touched, current, key, fingerprint) -%}
    {%- if phase == 'before' -%}
        {{ keys_to_rebuild(touched, current, key, fingerprint) }}
    {%- elif phase == 'after' -%}
        {{ keys_rebuilt(touched, current, key, fingerprint) }}
    {%- else -%}
        {{ exceptions.raise_compiler_error("rebuild_by_key: phase is 'before' or 'after', not " ~ phase) }}
    {%- endif -%}
{%- endmacro %}
