"""Write deliveries in the contract format for tests: rows (or raw bytes) in, a folder with a true
manifest out. The one writer of deliveries in the tests: the ingest and contract suites' helpers
(``tests/support/ingest_kit.py``, ``tests/contracts/conftest.py``) call it with their defaults."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from outcomes.contracts import load_contract
from outcomes.contracts.fnr import synthetic_fnr
from outcomes.contracts.registry import sources

MODES = {spec.name: spec.mode for spec in sources()}
#: Each contract file's source (``proms.csv`` -> ``registry``), from the contract.
SOURCE_OF = {name: spec.name for spec in sources() for name in spec.files}


def fnr(n: int) -> str:
    """The n-th synthetic test fnr (month + 80): distinct for distinct n."""
    born = dt.date(1970, 1, 1) + dt.timedelta(days=n % 9000)
    return synthetic_fnr(born, n // 9000)


def contract_header(file: str) -> tuple[str, ...]:
    """The contract's columns of ``file``, in contract order."""
    return load_contract().file(SOURCE_OF[file], file).column_names


def csv_bytes(
    header: Sequence[str], rows: Sequence[Mapping[str, Any]], *, line_end: str = "\n", quote_all: bool = False
) -> bytes:
    """RFC 4180 bytes of ``rows`` under ``header``; a missing key or None is an empty field;
    ``quote_all`` quotes every field (valid, but not a plain file)."""
    out = io.StringIO()
    writer = csv.writer(
        out, lineterminator=line_end, quoting=csv.QUOTE_ALL if quote_all else csv.QUOTE_MINIMAL
    )
    writer.writerow(header)
    for row in rows:
        writer.writerow(["" if row.get(c) is None else str(row[c]) for c in header])
    return out.getvalue().encode("utf-8")


def data_rows(data: bytes) -> int:
    """The data rows a source would count in ``data`` (records after the header), best effort."""
    text = data.decode("utf-8", errors="replace").lstrip("\ufeff")
    try:
        return max(sum(1 for _ in csv.reader(io.StringIO(text, newline=""))) - 1, 0)
    except csv.Error:
        return max(text.count("\n") - 1, 0)


def extracted_at_of(delivery_id: str) -> str:
    """The extract time a delivery id stands for, as a manifest writes it."""
    return dt.datetime.strptime(delivery_id[:13], "%Y%m%dT%H%M").strftime("%Y-%m-%dT%H:%M:00Z")


def manifest_doc(
    source: str, delivery_id: str, files: Mapping[str, bytes], *, extracted_at: str | None = None
) -> dict[str, Any]:
    """A manifest that tells the truth about ``files`` (name -> bytes)."""
    return {
        "source": source,
        "delivery_id": delivery_id,
        "extracted_at": extracted_at or extracted_at_of(delivery_id),
        "mode": MODES.get(source, "incremental"),
        "files": [
            {"name": name, "rows": data_rows(data), "sha256": hashlib.sha256(data).hexdigest()}
            for name, data in files.items()
        ],
    }


def write_delivery(
    root: Path,
    source: str,
    delivery_id: str,
    files: Mapping[str, Sequence[Mapping[str, Any]] | bytes],
    *,
    extracted_at: str | None = None,
    mode: str | None = None,
    header: Mapping[str, Sequence[str]] | None = None,
    line_end: str = "\n",
    edit_manifest: Callable[[dict[str, Any]], None] | None = None,
    manifest: bool = True,
) -> Path:
    """``root/source/delivery_id/`` with the CSVs and, last, a manifest that tells the truth.

    ``files`` maps a file name to rows or to raw bytes; ``header`` overrides a file's header (the
    contract's by default); ``mode`` and ``extracted_at`` the manifest's (the source's mode, the
    delivery id's time); ``edit_manifest`` changes the true manifest before it is written, and
    ``manifest=False`` leaves it out (an incomplete delivery).
    """
    folder = root / source / delivery_id
    folder.mkdir(parents=True, exist_ok=True)
    written: dict[str, bytes] = {}
    for name, content in files.items():
        if isinstance(content, bytes):
            data = content
        else:
            columns = header[name] if header and name in header else contract_header(name)
            data = csv_bytes(columns, content, line_end=line_end)
        (folder / name).write_bytes(data)
        written[name] = data
    if manifest:
        doc = manifest_doc(source, delivery_id, written, extracted_at=extracted_at)
        if mode is not None:
            doc["mode"] = mode
        if edit_manifest is not None:
            edit_manifest(doc)
        (folder / "_manifest.json").write_text(json.dumps(doc, indent=1), encoding="utf-8")
    return folder


def enrolment_row(participant_id: str, person: int, **overrides: Any) -> dict[str, Any]:
    row = {
        "participant_id": participant_id,
        "fnr": fnr(person),
        "study": "RCT",
        "site": "Oslo",
        "randomised_on": "2025-01-15",
        "arm": "IPS",
        "sex": "F",
        "birth_year": 1980,
        "intervention_ended_on": None,
        "followup_ended_on": None,
        "followup_end_reason": None,
        "erase": "false",
    }
    return {**row, **overrides}


def prom_rows(
    form_id: str, person: int, answered_on: str = "2025-01-14", **overrides: Any
) -> list[dict[str, Any]]:
    base = {
        "form_id": form_id,
        "fnr": fnr(person),
        "answered_on": answered_on,
        "updated_at": f"{answered_on}T10:00:00Z",
        "is_deleted": "false",
    }
    items = [("odi_01", 2), ("nrs_pain_intensity", 6), ("eq5d_mobility", 2), ("eq5d_vas", 55)]
    return [{**base, "item": item, "value": value, **overrides} for item, value in items]


def spell_row(spell_id: str, person: int, **overrides: Any) -> dict[str, Any]:
    row = {
        "spell_id": spell_id,
        "fnr": fnr(person),
        "benefit": "SYKEPENGER",
        "grade_pct": 100,
        "from_date": "2024-10-01",
        "to_date": None,
        "registered_at": "2024-10-02T08:00:00Z",
        "status": "ACTIVE",
    }
    return {**row, **overrides}


def apply_directly(
    warehouse: Any,
    root: Path,
    source: str,
    delivery_id: str,
    files: dict[str, Any],
    pseudonymise: Callable[[str], str],
) -> None:
    """Write a delivery under ``root`` and apply it with the loader, as the loader's role, without
    a DAG run (for tests of the build); it must load."""
    import psycopg

    from outcomes.ingest.loader import apply_delivery

    with psycopg.connect(warehouse.url(), autocommit=True) as conn:
        conn.execute("set role outcomes_loader")
        outcome = apply_delivery(
            conn, write_delivery(root, source, delivery_id, files), pseudonymise=pseudonymise
        )
    assert outcome.status == "loaded", outcome
