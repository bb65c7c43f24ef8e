with

chosen_forms as (

    select * from {{ ref('int_prom_forms_chosen') }}

),

scored_forms as (

    select * from {{ ref('int_prom_forms_scored') }}

),

final as (

    select
        chosen_forms.participant_id,
        chosen_forms.timepoint_months,
        chosen_forms.target_date,
        chosen_forms.form_id,
        chosen_forms.answered_on,
        chosen_forms.days_from_target,
        scored_forms.odi_pct,
        scored_forms.nrs_pain_intensity,
        scored_forms.nrs_pain_bother,
        scored_forms.hscl25_total,
        scored_forms.hscl25_anxiety,
        scored_forms.hscl25_depression,
        scored_forms.is_hscl25_case,
        scored_forms.eq5d_index,
        scored_forms.eq5d_value_set,
        scored_forms.eq5d_vas

    from chosen_forms
    left join scored_forms
        on
            chosen_forms.participant_id = scored_forms.participant_id
            and chosen_forms.form_id = scored_forms.form_id

)

select * from final
