{#
    Consent outranks history: delete the snapshot rows of participants whose erasure the build
    is carrying out (pending.erasure_queue: the loader queues each erased participant until a build
    has cleaned the locks and the history; the register itself keeps only tombstones).
#}
{% macro erase_from_history(relation) -%}
    delete from {{ relation }}
    where participant_id in (select erasures.participant_id from pending.erasure_queue as erasures)
{%- endmacro %}
