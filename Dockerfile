# The official Airflow image (same Airflow and Python as uv.lock) with the project installed.
FROM apache/airflow:3.3.2-python3.11

USER root
COPY --chown=airflow:root . /opt/outcomes
USER airflow
WORKDIR /opt/outcomes
# The lock, exported as pinned requirements, is what gets installed: the same versions as CI.
RUN pip install --no-cache-dir uv==0.13.8 \
 && uv export --frozen --no-dev --no-emit-project -o /tmp/requirements.txt \
 && pip install --no-cache-dir -r /tmp/requirements.txt \
 && pip install --no-cache-dir --no-deps -e /opt/outcomes
ENV OUTCOMES_PROJECT_DIR=/opt/outcomes \
    AIRFLOW__CORE__DAGS_FOLDER=/opt/outcomes/dags \
    AIRFLOW__CORE__PLUGINS_FOLDER=/opt/outcomes/plugins \
    AIRFLOW__CORE__LOAD_EXAMPLES=False
