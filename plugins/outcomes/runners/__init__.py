"""The ways to run the project's DAGs: in-process (``dag.test()``: ``outcomes run``, ``demo`` and the
tests), the nightly job in that process (``pipeline``), ``airflow standalone`` in the background
(``make up``), and the Airflow settings they all start from (``airflow_env``); one in-process run at a
time per warehouse (``runlock``), the fault points the fault tests kill a run at (``faults``), and the
secret settings read from Airflow's secrets backend (``secrets_backend``)."""
