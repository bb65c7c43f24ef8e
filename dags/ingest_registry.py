"""`ingest_registry`: built from the source registry (its contract in `contracts/sources.yaml` holds the
schedule, deadline and description); the DAG's shape is `outcomes.ingest.dag`."""

from airflow.sdk import DAG

from outcomes.ingest.dag import build_ingest_dag

dag: DAG = build_ingest_dag("registry")
