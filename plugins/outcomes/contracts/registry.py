"""The source registry: which sources there are, and each one's facts, read from ``sources.yaml``.

The sources, their order, mode, key (fnr or participant_id), schedule, deadline, freshness interval
and description are declared once, in the contracts (``sources.yaml``), and everything else (the
ingest DAGs and their Assets, the loader, the gate's freshness, ``outcomes status``, the ledger, the
dashboard, the in-process runner) reads them from here. Add or change a source there, not here.

Cheap to import (standard library; PyYAML when first read), so DAG files and the CLI can use it.
"""

from __future__ import annotations

from outcomes.contracts.spec import SourceSpec, load_contract

__all__ = [
    "describe_schedule",
    "fnr_keyed_sources",
    "ingest_dag_id",
    "source",
    "source_names",
    "sources",
]

_WEEKDAYS = ("Sundays", "Mondays", "Tuesdays", "Wednesdays", "Thursdays", "Fridays", "Saturdays")


def sources() -> tuple[SourceSpec, ...]:
    """Every source, in the contract's order (the order every listing shows them in)."""
    return tuple(load_contract().sources.values())


def source_names() -> tuple[str, ...]:
    """The source names, in the contract's order."""
    return tuple(load_contract().sources)


def source(name: str) -> SourceSpec:
    """One source's facts; ``ValueError`` naming the known sources when ``name`` is not one."""
    known = load_contract().sources
    try:
        return known[name]
    except KeyError:
        raise ValueError(f"unknown source {name!r}: one of {', '.join(known)}") from None


def fnr_keyed_sources() -> tuple[str, ...]:
    """The sources whose rows name a person by fnr: pseudonymised at the door, held in ``pending``
    until the person is enrolled."""
    return tuple(spec.name for spec in sources() if spec.keyed_by == "fnr")


def ingest_dag_id(name: str) -> str:
    """The id of the DAG that ingests ``name``."""
    return f"ingest_{name}"


def describe_schedule(cron: str) -> str:
    """A daily or weekly cron expression in words, as the docs write it: ``0 1 * * *`` is
    ``daily 01:00``, ``0 3 * * 1`` is ``Mondays 03:00``. Other shapes come back as written."""
    fields = cron.split()
    if len(fields) == 5 and fields[0].isdigit() and fields[1].isdigit() and fields[2:4] == ["*", "*"]:
        at = f"{int(fields[1]):02d}:{int(fields[0]):02d}"
        if fields[4] == "*":
            return f"daily {at}"
        if fields[4].isdigit() and int(fields[4]) <= 7:
            return f"{_WEEKDAYS[int(fields[4]) % 7]} {at}"
    return cron
