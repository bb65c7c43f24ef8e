{#
    One row per participant and questionnaire time point (0, 6, 12, 24): the form answered
    nearest to the target date within the time point's window; ties go to the later
    updated_at (then the form_id, so a rebuild is bit for bit). form_id is NULL when no form is in
    the window. Forms answered after follow-up ended are not outcome data (docs/sources.md) and are
    never chosen.
#}
with

participants as (

    select * from {{ ref('int_participants_observed') }}

),

timepoints as (

    select * from {{ ref('int_prom_timepoints') }}

),

forms as (

    select * from {{ ref('int_prom_forms_scored') }}

),

targets as (

    select
        participants.participant_id,
        participants.followup_ended_on,
        timepoints.timepoint_months,
        {{ months_after('participants.randomised_on', 'timepoints.timepoint_months') }} as target_date,
        timepoints.window_days_before,
        timepoints.window_days_after

    from participants
    cross join timepoints

),

windows as (

    select
        participant_id,
        followup_ended_on,
        timepoint_months,
        target_date,
        target_date - window_days_before as window_start_date,
        target_date + window_days_after as window_end_date

    from targets

),

candidates as (

    select
        windows.participant_id,
        windows.timepoint_months,
        forms.form_id,
        forms.answered_on,
        row_number() over (
            partition by windows.participant_id, windows.timepoint_months
            order by
                abs(forms.answered_on - windows.target_date),
                forms.updated_at desc,
                forms.form_id desc
        ) as nearness_rank

    from windows
    inner join forms
        on
            windows.participant_id = forms.participant_id
            and forms.answered_on between windows.window_start_date and windows.window_end_date
            and (windows.followup_ended_on is null or windows.followup_ended_on >= forms.answered_on)

),

final as (

    select
        windows.participant_id,
        windows.timepoint_months,
        windows.target_date,
        windows.window_start_date,
        windows.window_end_date,
        candidates.form_id,
        candidates.answered_on,
        candidates.answered_on - windows.target_date as days_from_target

    from windows
    left join candidates
        on
            windows.participant_id = candidates.participant_id
            and windows.timepoint_months = candidates.timepoint_months
            and candidates.nearness_rank = 1

)

select * from final
