"""What the DAGs are made of, declared once: the Assets, the default arguments every task gets,
and the notifier that turns a failure into an alert; and the ids of the DAGs and tasks other code
names (cheap to import: no Airflow here)."""

from __future__ import annotations

#: The DAG ids of the pipeline besides the ingest DAGs (``outcomes.contracts.registry.ingest_dag_id``).
MAINTENANCE_DAG_ID = "warehouse_maintenance"
BUILD_DAG_ID = "build_outcomes"
#: The build's quality gate task: its failure means the gate blocked the publish.
GATE_TASK_ID = "quality_gate"
