{#
    The planner's cost of a random page read as on solid-state storage with the table in memory
    (PostgreSQL's default, 4, is a spinning disk's): with it, and with `months` not materialised,
    the joins of the month-grained models merge along their unique indexes instead of hashing
    millions of rows through 4 MB of work_mem in batches on disk (at 100,000 participants
    11.5 s -> 5.5 s, bench/README.md). Set for this model's transaction only: project-wide it
    turned the parallel plan of int_prom_forms_scored's fingerprints into a serial one twice as slow.
#}
{{ config(pre_hook=["set local random_page_cost = 1.1"]) }}

with

-- read twice (the jobs on each checkpoint, and the join of everything): not materialized, so
-- each read is a scan of the model's table in the order of its unique index, and the joins of
-- the month-grained models can merge instead of sorting a materialised copy twice
months as not materialized (

    select * from {{ ref('int_participant_months_spined') }}

),

benefit_days as (

    select * from {{ ref('int_benefit_days_by_month') }}

),

benefit_states as (

    select * from {{ ref('int_benefit_states_on_checkpoints') }}

),

jobs as (

    select * from {{ ref('stg_employment__jobs') }}

),

first_employment as (

    select
        participant_id,
        min(first_employment_date) as first_employment_date
    from {{ ref('fct_employment_outcomes') }}
    group by participant_id

),

jobs_on_checkpoints as (

    -- point prevalence: competitive jobs active on the checkpoint date
    select
        months.participant_id,
        months.month_index,
        sum(jobs.hours_per_week) as employed_hours_per_week

    from months
    inner join jobs
        on
            months.participant_id = jobs.participant_id
            and jobs.job_type = 'COMPETITIVE'
            and months.checkpoint_date >= jobs.start_date
            and (jobs.end_date is null or months.checkpoint_date <= jobs.end_date)
    group by months.participant_id, months.month_index

),

joined as (

    select
        months.participant_id,
        months.month_index,
        months.checkpoint_date,
        months.period_start_date,
        months.is_observed,
        jobs_on_checkpoints.employed_hours_per_week is not null as is_employed_on_checkpoint,
        first_employment.first_employment_date <= months.checkpoint_date as has_employment_evidence,
        jobs_on_checkpoints.employed_hours_per_week,
        benefit_states.benefit_on_checkpoint,
        benefit_states.benefit_grade_pct,
        benefit_days.days_sykepenger,
        benefit_days.days_aap,
        benefit_days.days_uforetrygd,
        benefit_days.days_dagpenger,
        benefit_days.days_other_benefit

    from months
    left join jobs_on_checkpoints
        on
            months.participant_id = jobs_on_checkpoints.participant_id
            and months.month_index = jobs_on_checkpoints.month_index
    left join benefit_states
        on
            months.participant_id = benefit_states.participant_id
            and months.month_index = benefit_states.month_index
    left join benefit_days
        on
            months.participant_id = benefit_days.participant_id
            and months.month_index = benefit_days.month_index
    left join first_employment
        on months.participant_id = first_employment.participant_id

),

final as (

    -- a month that observation does not reach is unknown: NULL, never 0 or false
    select
        participant_id,
        month_index,
        checkpoint_date,
        period_start_date,
        is_observed,
        case when is_observed then is_employed_on_checkpoint end as is_employed,
        case when is_observed then coalesce(has_employment_evidence, false) end as has_been_employed,
        case when is_observed then employed_hours_per_week end as employed_hours_per_week,
        case when is_observed then benefit_on_checkpoint end as benefit_on_checkpoint,
        case when is_observed then benefit_grade_pct end as benefit_grade_pct,
        case when is_observed and month_index >= 1 then coalesce(days_sykepenger, 0) end as days_sykepenger,
        case when is_observed and month_index >= 1 then coalesce(days_aap, 0) end as days_aap,
        case when is_observed and month_index >= 1 then coalesce(days_uforetrygd, 0) end as days_uforetrygd,
        case when is_observed and month_index >= 1 then coalesce(days_dagpenger, 0) end as days_dagpenger,
        case when is_observed and month_index >= 1 then coalesce(days_other_benefit, 0) end as days_other_benefit,
        case
            when not is_observed then null
            {{ work_participation_state('is_employed_on_checkpoint', 'benefit_on_checkpoint', 'benefit_grade_pct') }}
        end as work_participation_state

    from joined

)

select * from final
