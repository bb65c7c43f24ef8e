{#
    The benefit months, incremental by participant: int_benefit_days_by_month and
    int_benefit_states_on_checkpoints (bench/README.md, "Benefit months by participant").

    A participant's rows in either model are a function of their months (the timeline spine,
    itself a function of the randomisation date: int_participant_months_spined,
    int_month_indexes, months_after), their benefit spells as of the build (int_benefit_spells),
    the value set benefit_types and the model's code. `participant_fingerprint` is a 64-bit hash
    of exactly those: the randomisation date, the number of spells and the sum of a 64-bit hash
    of each spell's benefit, grade and dates, a digest of the seed's rows and a digest of the
    code. A build recomputes only the participants whose fingerprint changed (a spell delivered,
    corrected, annulled or no longer visible as of the build; a randomisation date corrected; a
    participant erased or new), deleting their rows and inserting their new ones
    (macros/incremental_by_key.sql). The as-of date moves no fingerprint of its own: the rows do
    not depend on it but through the spells it makes visible, and those are in the fingerprint.

    A participant without spells has no rows in either model and no fingerprint; one whose spells
    are active on none of their checkpoints has a fingerprint and no rows in the states model.
#}

{# The code the benefit months follow: the model's own, the spine's, the months', and the macros
   that compute them. A change of any changes every fingerprint, so every participant is recomputed. #}
{% macro benefit_months_code_version() -%}
    {%- set used = [benefit_months_fingerprints, benefit_months_inputs, rows_of_touched, months_after] -%}
    {%- set sources = used | map(attribute='macro.macro_sql', default='') | list -%}
    {%- if model.raw_code and '' in sources -%}
        {#- under dbt (the linter's stand-in has no code) every source must be there -#}
        {{ exceptions.raise_compiler_error("benefit_months_code_version: a macro's source is missing") }}
    {%- endif -%}
    {%- set upstream = [] -%}
    {%- for name in ['int_participant_months_spined', 'int_month_indexes'] -%}
        {%- do upstream.append(model_code(name)) -%}
    {%- endfor -%}
    {{- local_md5(model.raw_code ~ (upstream | join('')) ~ (sources | join(''))) -}}
{%- endmacro %}

{# Per participant of `participants` (participant_id, randomised_on) with a spell in `spells`
   (int_benefit_spells' columns): the fingerprint of their benefit months. The one formula of the
   pre-hook (every participant) and of the model (the participants it recomputes). #}
{% macro benefit_months_fingerprints(participants, spells) -%}
    select
        fingerprinted_participants.participant_id,
        hashtextextended(
            coalesce(fingerprinted_participants.randomised_on::text, '-') || ':' || count(*)::text || ':'
            || sum(hashtextextended(
                row(
                    fingerprinted_spells.benefit,
                    fingerprinted_spells.grade_pct,
                    fingerprinted_spells.from_date,
                    fingerprinted_spells.to_date
                )::text,
                0
            ))::text
            || ':{{ benefit_months_code_version() }}:'
            || (
                select md5(string_agg(value_set_rows::text, ',' order by value_set_rows::text))
                from {{ ref('benefit_types') }} as value_set_rows
            ),
            0
        ) as participant_fingerprint
    from {{ participants }} as fingerprinted_participants
    inner join {{ spells }} as fingerprinted_spells
        on fingerprinted_participants.participant_id = fingerprinted_spells.participant_id
    group by fingerprinted_participants.participant_id, fingerprinted_participants.randomised_on
{%- endmacro %}

{# The hooks of a benefit-months model (`phase`: 'before' or 'after', macros/incremental_by_key.sql):
   the participants to recompute, into `touched`. The randomisation date is the spine's (its
   month 0), the one the rows' months were computed from. #}
{% macro benefit_months_touched(phase, touched) -%}
    {%- set participants -%}
        (select spine.participant_id, spine.randomised_on
        from {{ ref('int_participant_months_spined') }} as spine
        where spine.month_index = 0)
    {%- endset -%}
    {%- set current = benefit_months_fingerprints(participants, ref('int_benefit_spells')) -%}
    {{ rebuild_by_key(phase, touched, current, 'participant_id', 'participant_fingerprint') }}
{%- endmacro %}

{# The inputs of a benefit-months model, as CTEs `months`, `spells`, `participants` and their
   `fingerprints`: all of them in a full build, only the participants in `touched` in an
   incremental one (the spine, 25 rows a participant, read by index probe; the spells by a
   semi-join). #}
{% macro benefit_months_inputs(touched) -%}
months as (

    {% if is_incremental() -%}
    select touched_months.*
    from {{ rows_of_touched(ref('int_participant_months_spined'), touched, 'participant_id') }} as touched_months
    {%- else -%}
    select * from {{ ref('int_participant_months_spined') }}
    {%- endif %}

),

spells as (

    select * from {{ ref('int_benefit_spells') }}
    {% if is_incremental() -%}
    where participant_id in (select participant_id from {{ touched }})
    {%- endif %}

),

participants as (

    -- each participant's randomisation date, from the months the rows are computed from
    select participant_id, randomised_on from months
    where month_index = 0

),

fingerprints as (

    {{ benefit_months_fingerprints('participants', 'spells') }}

)
{%- endmacro %}
