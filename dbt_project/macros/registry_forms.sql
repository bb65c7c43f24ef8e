{#
    The incremental builds by questionnaire form: stg_registry__prom_items (its header says how)
    and int_prom_forms_scored, which scores a form again only when its items changed.
#}

{# The code the model's rows follow: the model's and these macros' source. A change of it changes
   every fingerprint, so every form is recomputed. #}
{% macro registry_code_version() -%}
    {{- local_md5(model.raw_code ~ registry_form_fingerprints.macro.macro_sql ~ version_rank.macro.macro_sql
        ~ visible_deliveries.macro.macro_sql ~ as_of_date.macro.macro_sql ~ as_of_cutoff.macro.macro_sql) -}}
{%- endmacro %}

{# Per form of `items_relation` (visible raw rows): a 64-bit hash of its row count, the sum of a
   64-bit hash of each row's identity with its person's participant, and the code. #}
{% macro registry_form_fingerprints(items_relation, participants_relation) -%}
    select
        {{ items_relation }}.form_id,
        hashtextextended(
            count(*)::text
            || ':' || sum(hashtextextended(
                {{ items_relation }}.delivery_id || '/' || {{ items_relation }}.source_line::text
                || '/' || coalesce(fingerprinted_participants.participant_id, ''),
                0
            ))::text
            || ':{{ registry_code_version() }}',
            0
        ) as form_fingerprint
    from {{ items_relation }}
    left join {{ participants_relation }} as fingerprinted_participants
        on {{ items_relation }}.person_pseudonym = fingerprinted_participants.person_pseudonym
    group by {{ items_relation }}.form_id
{%- endmacro %}

{# Pre-hook: the forms whose fingerprint changed (or that are new or gone) into a temporary table
   the model reads, and their stored rows deleted; nothing on a first build or a full refresh. #}
{% macro registry_forms_touched() -%}
{%- if is_incremental() -%}
    create temporary table registry_forms_touched on commit drop as
    with

    visible_deliveries as (
        {{ visible_deliveries(source('meta', 'deliveries'), 'registry') }}
    ),

    visible_items as (
        select items.form_id, items.person_pseudonym, items.delivery_id, items.source_line
        from {{ source('raw', 'registry_proms') }} as items
        inner join visible_deliveries
            on items.delivery_id = visible_deliveries.delivery_id
        where
            items.updated_at < {{ as_of_cutoff() }}
            and items.answered_on <= {{ as_of_date() }}
    ),

    current_forms as (
        {{ registry_form_fingerprints('visible_items', ref('stg_trial__participants')) }}
    ),

    stored_forms as (
        -- one fingerprint per form (a hash aggregate: `distinct` sorts every row)
        select form_id, max(form_fingerprint) as form_fingerprint
        from {{ this }}
        group by form_id
    )

    select coalesce(current_forms.form_id, stored_forms.form_id) as form_id
    from current_forms
    full outer join stored_forms
        on current_forms.form_id = stored_forms.form_id
    where current_forms.form_fingerprint is distinct from stored_forms.form_fingerprint;

    analyze registry_forms_touched;

    delete from {{ this }}
    where form_id in (select form_id from registry_forms_touched)
{%- endif -%}
{%- endmacro %}

{# int_prom_forms_scored's fingerprint of a form: its items' fingerprint and this model's code. #}
{% macro scored_form_fingerprint(items_fingerprint) -%}
    hashtextextended({{ items_fingerprint }}::text || ':{{ local_md5(model.raw_code) }}', 0)
{%- endmacro %}

{# Pre-hook of int_prom_forms_scored: the forms whose items' fingerprint (or this model's code)
   changed, or that are new or gone, into a temporary table; their scored rows deleted. #}
{% macro prom_forms_rescored() -%}
{%- if is_incremental() -%}
    create temporary table prom_forms_rescored on commit drop as
    with

    current_forms as (
        select form_id, {{ scored_form_fingerprint('max(form_fingerprint)') }} as form_fingerprint
        from {{ ref('stg_registry__prom_items') }}
        group by form_id
    )

    select coalesce(current_forms.form_id, stored_forms.form_id) as form_id
    from current_forms
    full outer join {{ this }} as stored_forms
        on current_forms.form_id = stored_forms.form_id
    where current_forms.form_fingerprint is distinct from stored_forms.form_fingerprint;

    analyze prom_forms_rescored;

    delete from {{ this }}
    where form_id in (select form_id from prom_forms_rescored)
{%- endif -%}
{%- endmacro %}
