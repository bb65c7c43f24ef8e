"""
### Build the outcomes marts

Runs the dbt project (`dbt_project/`) with astronomer-cosmos, rendered from the parsed manifest:
staging, intermediate and marts models with their dbt data tests, then the nightly dbt
snapshots into `history`, then the dbt docs (Airflow UI: Browse, *dbt docs*), then emits the
Asset `marts`.

Runs when every source's ingest DAG emitted its Asset, or nightly at 05:00 UTC, after the last
source (employment, 04:00) has landed (override with
`OUTCOMES_SCHEDULE_BUILD`). Trigger it with `{"as_of": "YYYY-MM-DD"}` to rebuild the world as
known at the end of that day (UTC): the same raw rows and as-of date give the same marts.

Runbook: a failed model or test fails its task (and the run) and alerts; nothing downstream runs.
Read the task log for the dbt error; `outcomes dbt build --vars '{"as_of": "..."}'` reproduces
it from a shell. `OUTCOMES_DBT_EXECUTION=local|watcher` picks how Cosmos runs dbt (docs/operations.md).
"""

from __future__ import annotations

from airflow.sdk import DAG

from outcomes.transform.dag import build_outcomes_dag

dag: DAG | None = build_outcomes_dag(doc_md=__doc__)
