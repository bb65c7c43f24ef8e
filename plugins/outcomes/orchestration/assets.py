"""The project's Airflow Assets: what each DAG produces and the build DAG waits for."""

from __future__ import annotations

from airflow.sdk import Asset

from outcomes.contracts.registry import source_names


def raw_asset(source: str) -> Asset:
    """Emitted by ``ingest_<source>`` when a delivery changed the raw records of ``source``."""
    return Asset(name=f"raw_{source}", uri=f"x-outcomes://warehouse/raw/{source}", group="outcomes")


RAW_ASSETS = tuple(raw_asset(source) for source in source_names())
