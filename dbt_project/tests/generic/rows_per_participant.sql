{#
    A dense grid's business rule: every participant in `model` has exactly `n` rows
    (e.g. 4 questionnaire time points, 5 employment horizons).
#}
{% test rows_per_participant(model, n) %}

    select participant_id, count(*) as n_rows
    from {{ model }}
    group by participant_id
    having count(*) <> {{ n }}

{% endtest %}
