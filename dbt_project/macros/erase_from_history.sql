{#
    Consent outranks history: delete the snapshot rows of participants whose erasure the build
    is carrying out (pending.erasure_queue: the loader queues each erased participant until a build
    has cleaned the locks and the history; the register itself keeps only tombstones). Only those a
    build claimed (outcomes.warehouse.locks.apply_erasures, which counted the history's aggregates
    again without them): one queued while this build ran waits for the next build's recount.
#}
{% macro erase_from_history(relation) -%}
    delete from {{ relation }}
    where participant_id in (
        select erasures.participant_id from pending.erasure_queue as erasures
        where erasures.claimed_by is not null
    )
{%- endmacro %}
