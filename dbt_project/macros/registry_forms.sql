{#
    The incremental builds by questionnaire form: stg_registry__prom_items (its header says how)
    and int_prom_forms_scored, which scores a form again only when its items changed.
#}

{# The registry rows a build may see: in a delivery applied and extracted before the as-of
   cutoff (visible_deliveries), stamped before the cutoff and answered by the as-of day. #}
{% macro visible_registry_items(items_relation) -%}
    select registry_items.*
    from {{ items_relation }} as registry_items
    inner join (
        {{ visible_deliveries(source('meta', 'deliveries'), 'registry') }}
    ) as visible_registry_deliveries
        on registry_items.delivery_id = visible_registry_deliveries.delivery_id
    where
        registry_items.updated_at < {{ as_of_cutoff() }}
        and registry_items.answered_on <= {{ as_of_date() }}
{%- endmacro %}

{# The code the model's rows follow: the model's and these macros' source. A change of it changes
   every fingerprint, so every form is recomputed. (A macro the model comes to use is added here.) #}
{% macro registry_code_version() -%}
    {#- dbt's macros carry their source (macro.macro_sql); a linter's plain Jinja macros do not -#}
    {%- set used = [registry_form_fingerprints, form_fingerprint, visible_registry_items, version_rank,
        visible_deliveries, as_of_date, as_of_cutoff, rows_of_touched_forms, rows_of_touched] -%}
    {%- set sources = used | map(attribute='macro.macro_sql', default='') | list -%}
    {%- if model.raw_code and '' in sources -%}
        {#- under dbt (the linter's stand-in has no code) every source must be there -#}
        {{ exceptions.raise_compiler_error("registry_code_version: a macro's source is missing") }}
    {%- endif -%}
    {{- local_md5(model.raw_code ~ (sources | join(''))) -}}
{%- endmacro %}

{# A form's fingerprint from its row count and the sum of its rows' identity hashes (aggregate
   expressions), and the code: the one formula both ways of computing it share. #}
{% macro form_fingerprint(row_count, identity_hash_sum) -%}
    hashtextextended(
        ({{ row_count }})::text || ':' || ({{ identity_hash_sum }})::text || ':{{ registry_code_version() }}',
        0
    )
{%- endmacro %}

{# Per form of `items_relation` (visible raw rows): a 64-bit hash of its row count, the sum of a
   64-bit hash of each row's identity, and the code. #}
{% macro registry_form_fingerprints(items_relation) -%}
    select
        fingerprinted_items.form_id,
        {{ form_fingerprint(
            'count(*)',
            "sum(hashtextextended(fingerprinted_items.delivery_id || '/' || fingerprinted_items.source_line::text, 0))"
        ) }} as form_fingerprint
    from {{ items_relation }} as fingerprinted_items
    group by fingerprinted_items.form_id
{%- endmacro %}

{# The same fingerprints from raw.registry_form_rows (visible summary rows of `summary_relation`):
   per form, the count and the hash sum of its rows, kept by triggers on raw.registry_proms
   (migration 0010), so a build reads one row per form and delivery instead of one per item.
   `registry_form_fingerprints` of the visible raw rows gives the same value, bit for bit (if it
   ever did not, every form would be recomputed every night: slower, never wrong). Not part of the
   code version: it decides which forms to recompute, not what their rows are. #}
{% macro registry_summary_fingerprints(summary_relation) -%}
    select
        summarised_forms.form_id,
        {{ form_fingerprint(
            'sum(summarised_forms.row_count)', 'sum(summarised_forms.identity_hash_sum)'
        ) }} as form_fingerprint
    from {{ summary_relation }} as summarised_forms
    group by summarised_forms.form_id
{%- endmacro %}

{# The rows of `relation` of the forms in the temporary table `touched` (macros/incremental_by_key.sql). #}
{% macro rows_of_touched_forms(relation, touched) -%}
    {{ rows_of_touched(relation, touched, 'form_id') }}
{%- endmacro %}

{# The hooks of stg_registry__prom_items (`phase`: 'before' or 'after', macros/incremental_by_key.sql):
   the fingerprints of every form, from raw's summary. #}
{% macro registry_forms_touched(phase) -%}
    {%- set current = registry_summary_fingerprints(
        '(' ~ visible_registry_items(source('raw', 'registry_form_rows')) ~ ')'
    ) -%}
    {{ rebuild_by_key(phase, 'registry_forms_touched', current, 'form_id', 'form_fingerprint') }}
{%- endmacro %}

{# int_prom_forms_scored's fingerprint of a form: its items' fingerprint, whose participant it is,
   this model's code and the rows of the value set it scores with (seeds/eq5d_uk_tto_1997.csv). #}
{% macro scored_form_fingerprint(items_fingerprint, participant_id) -%}
    {#- the code: the model's and the macros it reads its items with -#}
    {%- set used = [scored_form_fingerprint, of_participants, rows_of_touched_forms, rows_of_touched] -%}
    {%- set sources = used | map(attribute='macro.macro_sql', default='') | list -%}
    {%- if model.raw_code and '' in sources -%}
        {{ exceptions.raise_compiler_error("scored_form_fingerprint: a macro's source is missing") }}
    {%- endif -%}
    hashtextextended(
        {{ items_fingerprint }}::text || '/' || {{ participant_id }}
        || ':{{ local_md5(model.raw_code ~ (sources | join(''))) }}:'
        || (
            select md5(string_agg(value_set_rows::text, ',' order by value_set_rows::text))
            from {{ ref('eq5d_uk_tto_1997') }} as value_set_rows
        ),
        0
    )
{%- endmacro %}

{# The hooks of int_prom_forms_scored (`phase`: 'before' or 'after'): the participants' forms whose
   items' fingerprint, whose participant, or this model's code changed (and the forms that are no
   participant's any more). The items' fingerprints are the ones stg_registry__prom_items kept
   beside its rows (`stg_registry__prom_items__fingerprints`: one row a form, of exactly the rows
   it built), not computed again from raw: a delivery committed between the two models' builds
   would give a fingerprint of items this model never scored. Whose form it is comes from raw's
   form summary (one row per form and delivery, not one per item: 15 M rows at 100,000
   participants); a person changed since staging was built means raw rows staging has not seen,
   so the items' fingerprint changes at the next build too. A form whose person changed between
   versions may be scored again when nothing changed, never the other way round. #}
{% macro prom_forms_rescored(phase) -%}
    {%- set visible = '(' ~ visible_registry_items(source('raw', 'registry_form_rows')) ~ ')' -%}
    {%- set persons = '(select distinct visible_forms.form_id, visible_forms.person_pseudonym from '
        ~ visible ~ ' as visible_forms)' -%}
    {%- set current -%}
        select
            form_persons.form_id,
            {{ scored_form_fingerprint('max(item_fingerprints.form_fingerprint)', 'form_persons.participant_id') }}
                as form_fingerprint
        from ({{ of_participants(persons) }}) as form_persons
        inner join {{ fingerprints_of(ref('stg_registry__prom_items')) }} as item_fingerprints
            on form_persons.form_id = item_fingerprints.form_id
        group by form_persons.form_id, form_persons.participant_id
    {%- endset -%}
    {{ rebuild_by_key(phase, 'prom_forms_rescored', current, 'form_id', 'form_fingerprint') }}
{%- endmacro %}
