"""Synthetic deliveries for the contract tests.

:class:`DeliveryWriter` writes ``<root>/<source>/<delivery_id>/`` with CSV files and a correct
``_manifest.json`` (sha256 and data-row counts computed from the bytes written), so a test breaks
exactly one rule by changing one value, one byte or one manifest key. Every fnr here comes from
``synthetic_fnr`` (month + 80): never a real-looking number.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from support import deliveries

from outcomes.contracts.fnr import synthetic_fnr

DELIVERY_ID = "20261121T0200Z"
EXTRACTED_AT = "2026-11-21T02:00:00Z"
BIRTH = dt.date(1980, 5, 17)


def fnr(serial: int = 0, birth: dt.date = BIRTH) -> str:
    """A synthetic fnr (valid check digits, month + 80)."""
    return synthetic_fnr(birth, serial)


def make_valid_row(file: str, i: int = 0) -> dict[str, str]:
    """A row of ``file`` that keeps every rule; ``i`` varies the keys."""
    if file == "enrolment.csv":
        return {
            "participant_id": f"IPS-{101 + i}",
            "fnr": fnr(i),
            "study": "RCT",
            "site": "Oslo",
            "randomised_on": "2026-03-01",
            "arm": "IPS" if i % 2 == 0 else "TAU",
            "sex": "F",
            "birth_year": "1980",
            "intervention_ended_on": "",
            "followup_ended_on": "",
            "followup_end_reason": "",
            "erase": "false",
        }
    if file == "proms.csv":
        return {
            "form_id": f"F-{i // 3}",
            "fnr": fnr(i // 3),
            "answered_on": "2026-02-28",
            "item": ("odi_01", "nrs_pain_intensity", "eq5d_vas")[i % 3],
            "value": ("3", "7", "65")[i % 3],
            "updated_at": "2026-02-28T10:00:00+01:00",
            "is_deleted": "false",
        }
    if file == "benefit_spells.csv":
        return {
            "spell_id": f"S-{i}",
            "fnr": fnr(i),
            "benefit": "AAP",
            "grade_pct": "100",
            "from_date": "2025-01-01",
            "to_date": "",
            "registered_at": "2025-01-02T08:00:00Z",
            "status": "ACTIVE",
        }
    if file == "checkpoints.csv":
        return {
            "participant_id": f"IPS-{101 + i % 3}",
            "checkpoint_month": "3",
            "assessed_on": "2026-06-01",
            "status": "COMPETITIVE",
            "hours_per_week": "20.5",
            "recorded_at": "2026-06-01T12:00:00Z",
        }
    if file == "jobs.csv":
        return {
            "job_id": f"J-{i}",
            "participant_id": f"IPS-{101 + i % 3}",
            "start_date": "2026-05-01",
            "end_date": "",
            "job_type": "COMPETITIVE",
            "hours_per_week": "37.5",
            "recorded_at": "2026-05-02T12:00:00Z",
            "is_deleted": "false",
        }
    raise KeyError(file)


def csv_bytes(
    rows: Sequence[Mapping[str, str]],
    header: Sequence[str],
    *,
    line_end: str = "\n",
) -> bytes:
    """RFC 4180 CSV of ``rows`` under ``header`` (missing keys written empty)."""
    return deliveries.csv_bytes(header, rows, line_end=line_end)


#: Data rows of a CSV file (records after the header), as a source would count them.
count_data_rows = deliveries.data_rows


class DeliveryWriter:
    """Writes synthetic deliveries under one landing root (with the one writer of the tests)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def __call__(
        self,
        source: str,
        files: Mapping[str, Sequence[Mapping[str, str]] | bytes],
        *,
        delivery_id: str = DELIVERY_ID,
        extracted_at: str = EXTRACTED_AT,
        mode: str | None = None,
        header: Mapping[str, Sequence[str]] | None = None,
        line_end: str = "\n",
        edit_manifest: Callable[[dict[str, Any]], None] | None = None,
        manifest: bool = True,
    ) -> Path:
        """Write the delivery and return its folder (see ``support.deliveries.write_delivery``)."""
        return deliveries.write_delivery(
            self.root,
            source,
            delivery_id,
            files,
            extracted_at=extracted_at,
            mode=mode,
            header=header,
            line_end=line_end,
            edit_manifest=edit_manifest,
            manifest=manifest,
        )


@pytest.fixture
def write_delivery(tmp_path: Path) -> DeliveryWriter:
    """A :class:`DeliveryWriter` rooted in the test's tmp_path."""
    return DeliveryWriter(tmp_path / "landing")


@pytest.fixture
def valid_row() -> Callable[..., dict[str, str]]:
    """``valid_row(file, i=0)``: a row of ``file`` that keeps every rule."""
    return make_valid_row


@pytest.fixture
def valid_rows() -> Callable[..., list[dict[str, str]]]:
    """``valid_rows(file, n=3)``: n valid rows of ``file`` with distinct keys."""
    return lambda file, n=3: [make_valid_row(file, i) for i in range(n)]


@pytest.fixture
def to_csv() -> Callable[..., bytes]:
    """``to_csv(rows, header, line_end="\\n")``: the bytes of an RFC 4180 CSV file."""
    return csv_bytes
