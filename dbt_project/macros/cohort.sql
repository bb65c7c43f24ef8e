{#
    The participant filter, in one place (docs/operations.md, "The layers divide the
    work"): the rows of `relation`, a staging model of a source keyed by the person's pseudonym
    (the welfare register, the pain registry), that belong to a participant of this build, each
    with its participant_id. Anyone else's rows (a clinic patient outside the trial, someone
    randomised after the as-of date) are left out. Sources keyed by participant_id meet the
    cohort where they are used (the observation window of int_employment_evidence_unioned, the
    months of the timeline).
#}
{% macro of_participants(relation) -%}
    select
        cohort.participant_id,
        person_rows.*
    from {{ relation }} as person_rows
    inner join {{ ref('int_participants_observed') }} as cohort
        on person_rows.person_pseudonym = cohort.person_pseudonym
{%- endmacro %}
