"""Write deliveries in the contract format for tests: rows in, a folder with a true manifest out."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
from pathlib import Path
from typing import Any

from outcomes.contracts import load_contract
from outcomes.contracts.fnr import synthetic_fnr
from outcomes.contracts.registry import sources

MODES = {spec.name: spec.mode for spec in sources()}


def fnr(n: int) -> str:
    """The n-th synthetic test fnr (month + 80): distinct for distinct n."""
    born = dt.date(1970, 1, 1) + dt.timedelta(days=n % 9000)
    return synthetic_fnr(born, n // 9000)


def csv_bytes(source: str, file: str, rows: list[dict[str, Any]]) -> bytes:
    columns = load_contract().sources[source].files[file].column_names
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow(["" if row.get(c) is None else row[c] for c in columns])
    return out.getvalue().encode()


def write_delivery(
    root: Path,
    source: str,
    delivery_id: str,
    files: dict[str, list[dict[str, Any]]],
    *,
    extracted_at: str | None = None,
) -> Path:
    """``root/source/delivery_id/`` with the CSVs and, last, a manifest that tells the truth."""
    folder = root / source / delivery_id
    folder.mkdir(parents=True)
    entries = []
    for name, rows in files.items():
        data = csv_bytes(source, name, rows)
        (folder / name).write_bytes(data)
        entries.append({"name": name, "rows": len(rows), "sha256": hashlib.sha256(data).hexdigest()})
    stamp = extracted_at or dt.datetime.strptime(delivery_id[:13], "%Y%m%dT%H%M").strftime(
        "%Y-%m-%dT%H:%M:00Z"
    )
    manifest = {
        "source": source,
        "delivery_id": delivery_id,
        "extracted_at": stamp,
        "mode": MODES[source],
        "files": entries,
    }
    (folder / "_manifest.json").write_text(json.dumps(manifest))
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
