{#
    The combined work-participation state of a month (docs/definitions.md, "Welfare benefits"), as `when`
    branches of a case expression. A competitive job with no benefit is WORKING; with a graded
    benefit (grade under 100 %) WORKING_WITH_BENEFIT; a job next to a full benefit is classified
    by the benefit (the benefit register is the stronger evidence of not working).
#}
{% macro work_participation_state(is_employed, benefit, grade) -%}
    when {{ is_employed }} and {{ benefit }} is null then 'WORKING'
    when {{ is_employed }} and {{ grade }} < 100 then 'WORKING_WITH_BENEFIT'
    when {{ benefit }} = 'SYKEPENGER' then 'SICK_LEAVE'
    when {{ benefit }} = 'AAP' then 'WORK_ASSESSMENT'
    when {{ benefit }} = 'UFORETRYGD' and {{ grade }} >= 100 then 'DISABILITY_FULL'
    when {{ benefit }} = 'UFORETRYGD' then 'DISABILITY_PARTIAL'
    when {{ benefit }} = 'DAGPENGER' then 'UNEMPLOYED'
    when {{ benefit }} is not null then 'OTHER_BENEFIT'
    else 'NO_BENEFIT_NO_WORK'
{%- endmacro %}
