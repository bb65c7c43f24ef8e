{#
    The timeline's business rule: exactly 25 months (0..24) for every randomised participant.
#}
{% test twenty_five_months_per_participant(model) %}

    select participant_id, count(*) as n_months, min(month_index) as first_month, max(month_index) as last_month
    from {{ model }}
    group by participant_id
    having count(*) <> 25 or min(month_index) <> 0 or max(month_index) <> 24

{% endtest %}
