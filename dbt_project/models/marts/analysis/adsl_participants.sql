{#
    The subject-level analysis dataset, one row per randomised participant (in the spirit of CDISC
    ADaM's ADSL): arm, site and baseline characteristics, the analysis flags and the outcome at each
    horizon, side by side, so that a statistician's model needs no join.
#}
{%- set horizons = [3, 6, 12, 18, 24] -%}
{%- set measures = var('secondary_outcomes') -%}

with

participants as (

    select * from {{ ref('dim_participants') }}

),

at_randomisation as (

    select
        participant_id,
        benefit_on_checkpoint,
        benefit_grade_pct
    from {{ ref('fct_participant_months') }}
    where month_index = 0

),

baseline as (

    select * from {{ ref('fct_prom_scores') }}
    where timepoint_months = 0

),

outcomes as (

    -- the horizons side by side: one row per participant
    select
        participant_id,
        max(first_employment_date) as first_employment_date,
    {%- for h in horizons %}
        bool_or(is_employed_within) filter (
            where horizon_months = {{ h }}
        ) as is_employed_within_{{ h }}m{{ "," if not loop.last }}
    {%- endfor %}

    from {{ ref('fct_employment_outcomes') }}
    group by participant_id

),

final as (

    select
        participants.participant_id,
        participants.study,
        participants.site,
        participants.arm,
        participants.sex,
        participants.age_at_randomisation,
        participants.randomised_on,
        at_randomisation.benefit_on_checkpoint as benefit_at_randomisation,
        at_randomisation.benefit_grade_pct as benefit_grade_at_randomisation,
        {% for measure in measures -%}
            baseline.{{ measure }}::numeric as baseline_{{ measure }},
        {% endfor -%}
        participants.intervention_ended_on,
        participants.followup_ended_on,
        participants.followup_end_reason,
        participants.observed_until,
        -- analysis flags: everyone here was randomised (intention to treat); complete case = the
        -- employment outcome at the horizon is known
        true as is_randomised,
        {% for h in horizons -%}
            outcomes.is_employed_within_{{ h }}m is not null as is_complete_case_{{ h }}m,
        {% endfor -%}
        {% for h in horizons -%}
            outcomes.is_employed_within_{{ h }}m,
        {% endfor -%}
        outcomes.first_employment_date

    from participants
    inner join at_randomisation
        on participants.participant_id = at_randomisation.participant_id
    inner join baseline
        on participants.participant_id = baseline.participant_id
    inner join outcomes
        on participants.participant_id = outcomes.participant_id

)

select * from final
