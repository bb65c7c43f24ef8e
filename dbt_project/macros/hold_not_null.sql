{#
  NOT NULL as a constraint of the built table, for the columns a model's YAML declares with
  `constraints: [{type: not_null}]` where dbt itself does not enforce them (a model without an
  enforced contract: staging and intermediate). A post-hook of every model (dbt_project.yml).

  A not_null data test is one more dbt node and one more scan of the table per column, every
  night. Here a new table is checked in one pass for all its columns, and an incremental model's
  table, whose columns are NOT NULL already (the ALTER then does nothing), only as rows are
  written. A NULL fails the model, with PostgreSQL's message naming the table and the column:
  `column "participant_id" of relation "stg_employment__jobs" contains null values` (an insert's
  refusal also quotes the row; dbt's failures and the alerts carry it redacted).
  Models with an enforced contract (the marts) carry their NOT NULL in their DDL already.
#}
{% macro hold_not_null() %}
  {%- if model.config.materialized not in ('table', 'incremental') or model.contract.enforced -%}
    {{ return('') }}
  {%- endif -%}
  {%- set columns = [] -%}
  {%- for name, column in model.columns.items() -%}
    {%- for constraint in column.constraints or [] -%}
      {%- if constraint.type == 'not_null' -%}
        {%- do columns.append(adapter.quote(name)) -%}
      {%- endif -%}
    {%- endfor -%}
  {%- endfor -%}
  {%- if columns -%}
    alter table {{ this }}
    {%- for column in columns %} alter column {{ column }} set not null{{ "," if not loop.last }}{% endfor %}
  {%- endif -%}
{% endmacro %}
