{#
    A dense grid's business rule: every randomised participant has exactly `n` rows in `model`
    (25 months, 5 employment horizons, 4 questionnaire time points), none missing. The
    participants are dim_participants of the same build, or the model `participants` names. A row
    of someone else is the `relationships` test's to find.
#}
{% test rows_per_participant(model, n, participants=none) %}

    select cohort.participant_id, count(grid.participant_id) as n_rows
    from {{ participants or ref('dim_participants') }} as cohort
    left join {{ model }} as grid
        on cohort.participant_id = grid.participant_id
    group by cohort.participant_id
    having count(grid.participant_id) <> {{ n }}

{% endtest %}
