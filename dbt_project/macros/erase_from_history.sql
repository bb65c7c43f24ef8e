{#
    Consent outranks history: delete the snapshot rows of participants who asked to be erased
    (pending.erasures, kept by the loader; it holds participant_ids, never an fnr).
#}
{% macro erase_from_history(relation) -%}
    delete from {{ relation }}
    where participant_id in (select erasures.participant_id from pending.erasures as erasures)
{%- endmacro %}
