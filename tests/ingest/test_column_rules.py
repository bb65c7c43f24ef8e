"""docs/sources.md, every column rule of every file, through the real ingest DAGs.

One delivery per file type: valid rows (boundary values included) plus one row per rule that breaks
exactly that rule. Thirty valid rows per bad row keep the delivery under the 5 % threshold, so the
bad rows are quarantined one by one and the valid rows load. Each delivery is applied once, by a
module-scoped fixture (one DAG run; employment needs a trial run first to enrol its participants);
then one test per rule looks for its row in ``quarantine.rows``.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest
from support.deliveries import SOURCE_OF
from support.ingest_kit import (
    PSEUDONYMISE,
    assert_applied,
    broken_fnr,
    checkpoint_row,
    connect,
    count,
    enrolment_row,
    extracted_at_of,
    job_row,
    landed,
    ledger,
    new_delivery_id,
    new_fnr,
    new_participant,
    only_violation,
    prom_row,
    quarantined,
    reconciles,
    run_ingest,
    spell_row,
    write_delivery,
)

from outcomes.contracts import load_contract
from outcomes.contracts.registry import source_names
from outcomes.ingest.loader import apply_delivery
from outcomes.ingest.service import loader_connection
from outcomes.settings import Settings
from outcomes.warehouse.connection import Warehouse

#: Valid rows per bad row: 1 bad in 31 rows is 3.2 %, under the 5 % that quarantines a delivery.
VALID_PER_BAD = 30
UNCHANGED: Any = object()  # the expected violation value is the raw field as written


@dataclass(frozen=True)
class Case:
    """One row of ``file`` breaking exactly one rule: ``rule`` on ``column``."""

    name: str
    file: str
    column: str
    rule: str
    #: Column overrides of a valid row; a callable gets the delivery's context (dict) and returns
    #: the value.
    overrides: dict[str, Any] = field(default_factory=dict)
    #: The violation's ``value``: the raw field unless given (None for an fnr: always redacted).
    value: Any = UNCHANGED

    @property
    def id(self) -> str:
        return f"{self.file.removesuffix('.csv')}:{self.name}"


def _extract_day(offset: int) -> Callable[[dict[str, Any]], str]:
    return lambda ctx: (ctx["extracted_at"].date() + dt.timedelta(days=offset)).isoformat()


def _fnr_prefix(ctx: dict[str, Any]) -> str:
    return new_fnr()[:10]  # ten digits: not an fnr at all


def _broken(ctx: dict[str, Any]) -> str:
    return broken_fnr()


def _first_participant(ctx: dict[str, Any]) -> str:
    return ctx["first_participant"]


def _stranger(ctx: dict[str, Any]) -> str:
    return new_participant()  # never enrolled


def _not_null(file: str, column: str, **overrides: Any) -> Case:
    return Case(f"{column}-not-null", file, column, "not_null", {column: "", **overrides})


def _type(file: str, column: str, raw: str, tag: str = "") -> Case:
    return Case(f"{column}-type{tag}", file, column, "type", {column: raw})


TRIAL = "enrolment.csv"
PROMS = "proms.csv"
SPELLS = "benefit_spells.csv"
CHECKPOINTS = "checkpoints.csv"
JOBS = "jobs.csv"

CASES: list[Case] = [
    # trial/enrolment.csv
    Case("participant_id-regex", TRIAL, "participant_id", "regex", {"participant_id": "qz-100"}),
    Case("participant_id-regex-digits", TRIAL, "participant_id", "regex", {"participant_id": "QZ-12"}),
    Case("participant_id-unique", TRIAL, "participant_id", "unique", {"participant_id": _first_participant}),
    _not_null(TRIAL, "participant_id"),
    Case("fnr-check-digits", TRIAL, "fnr", "fnr_check_digits", {"fnr": _broken}, value=None),
    Case("fnr-ten-digits", TRIAL, "fnr", "fnr_check_digits", {"fnr": _fnr_prefix}, value=None),
    Case("fnr-not-null", TRIAL, "fnr", "not_null", {"fnr": ""}),
    Case("study-enum", TRIAL, "study", "enum", {"study": "PHASE3"}),
    _not_null(TRIAL, "study"),
    Case("site-not-blank", TRIAL, "site", "not_blank", {"site": "   "}),
    _not_null(TRIAL, "site"),
    _type(TRIAL, "randomised_on", "2030-02-30"),
    _type(TRIAL, "randomised_on", "01.06.2030", "-dotted"),
    Case(
        "randomised_on-in-the-future",
        TRIAL,
        "randomised_on",
        "not_in_future",
        {"randomised_on": _extract_day(1)},
    ),
    _not_null(TRIAL, "randomised_on"),
    Case("arm-enum", TRIAL, "arm", "enum", {"arm": "ips"}),
    _not_null(TRIAL, "arm"),
    Case("sex-enum", TRIAL, "sex", "enum", {"sex": "X"}),
    _not_null(TRIAL, "sex"),
    _type(TRIAL, "birth_year", "1975.0"),
    Case("birth_year-before-1900", TRIAL, "birth_year", "range", {"birth_year": "1899"}),
    Case(
        "birth_year-under-16",
        TRIAL,
        "birth_year",
        "range",
        {"randomised_on": "2030-06-01", "birth_year": "2015"},
    ),
    _not_null(TRIAL, "birth_year"),
    Case(
        "intervention_ended_on-date-order",
        TRIAL,
        "intervention_ended_on",
        "date_order",
        {"intervention_ended_on": "2030-05-31"},
    ),
    _type(TRIAL, "intervention_ended_on", "2030-13-01"),
    Case(
        "followup_ended_on-date-order",
        TRIAL,
        "followup_ended_on",
        "date_order",
        {"followup_ended_on": "2030-05-31", "followup_end_reason": "LOST"},
    ),
    Case(
        "followup_end_reason-enum",
        TRIAL,
        "followup_end_reason",
        "enum",
        {"followup_ended_on": "2030-12-01", "followup_end_reason": "MOVED"},
    ),
    Case(
        "followup_end_reason-required-when-ended",
        TRIAL,
        "followup_end_reason",
        "required_iff",
        {"followup_ended_on": "2030-12-01", "followup_end_reason": ""},
    ),
    Case(
        "followup_end_reason-only-when-ended",
        TRIAL,
        "followup_end_reason",
        "required_iff",
        {"followup_ended_on": "", "followup_end_reason": "COMPLETED"},
    ),
    _type(TRIAL, "erase", "yes"),
    _type(TRIAL, "erase", "TRUE", "-upper-case"),
    _not_null(TRIAL, "erase"),
    # registry/proms.csv
    _not_null(PROMS, "form_id"),
    Case("form_id-not-blank", PROMS, "form_id", "not_blank", {"form_id": " "}),
    Case("fnr-check-digits", PROMS, "fnr", "fnr_check_digits", {"fnr": _broken}, value=None),
    Case("fnr-letters", PROMS, "fnr", "fnr_check_digits", {"fnr": "1703171234X"}, value=None),
    Case("fnr-not-null", PROMS, "fnr", "not_null", {"fnr": ""}),
    _type(PROMS, "answered_on", "2030/12/01"),
    _not_null(PROMS, "answered_on"),
    Case("item-code", PROMS, "item", "item_code", {"item": "odi_11"}),
    Case("item-code-case", PROMS, "item", "item_code", {"item": "ODI_01"}),
    _not_null(PROMS, "item"),
    _type(PROMS, "value", "2.5"),
    *[
        Case(f"value-{item}-{raw}", PROMS, "value", "item_range", {"item": item, "value": raw})
        for item, raw in [
            ("odi_01", "-1"),
            ("odi_10", "6"),
            ("nrs_pain_intensity", "-1"),
            ("nrs_pain_bother", "11"),
            ("hscl_01", "0"),
            ("hscl_10", "5"),
            ("hscl_11", "0"),
            ("hscl_25", "5"),
            ("eq5d_mobility", "0"),
            ("eq5d_anxiety", "4"),
            ("eq5d_vas", "-1"),
            ("eq5d_vas", "101"),
        ]
    ],
    _type(PROMS, "updated_at", "2030-12-01T10:00:00", "-no-offset"),
    _type(PROMS, "updated_at", "2030-12-01 10:00:00+01:00", "-no-T"),
    _not_null(PROMS, "updated_at"),
    _type(PROMS, "is_deleted", "False"),
    _not_null(PROMS, "is_deleted"),
    # welfare/benefit_spells.csv
    _not_null(SPELLS, "spell_id"),
    Case("spell_id-not-blank", SPELLS, "spell_id", "not_blank", {"spell_id": "  "}),
    Case("fnr-check-digits", SPELLS, "fnr", "fnr_check_digits", {"fnr": _broken}, value=None),
    Case("fnr-not-null", SPELLS, "fnr", "not_null", {"fnr": ""}),
    Case("benefit-enum", SPELLS, "benefit", "enum", {"benefit": "BARNETRYGD"}),
    _not_null(SPELLS, "benefit"),
    _type(SPELLS, "grade_pct", "50%"),
    Case("grade_pct-zero", SPELLS, "grade_pct", "range", {"grade_pct": "0"}),
    Case("grade_pct-over-100", SPELLS, "grade_pct", "range", {"grade_pct": "101"}),
    _not_null(SPELLS, "grade_pct"),
    _type(SPELLS, "from_date", "2030-1-1"),
    _not_null(SPELLS, "from_date"),
    _type(SPELLS, "to_date", "tomorrow"),
    Case("to_date-before-from_date", SPELLS, "to_date", "date_order", {"to_date": "2029-12-31"}),
    _type(SPELLS, "registered_at", "2030-01-02T08:00:00", "-no-offset"),
    _not_null(SPELLS, "registered_at"),
    Case("status-enum", SPELLS, "status", "enum", {"status": "DELETED"}),
    _not_null(SPELLS, "status"),
    # employment/checkpoints.csv
    Case(
        "participant-not-enrolled",
        CHECKPOINTS,
        "participant_id",
        "enrolled_participant",
        {"participant_id": _stranger},
    ),
    _not_null(CHECKPOINTS, "participant_id"),
    Case("checkpoint_month-enum", CHECKPOINTS, "checkpoint_month", "enum", {"checkpoint_month": "9"}),
    _type(CHECKPOINTS, "checkpoint_month", "3.0"),
    _not_null(CHECKPOINTS, "checkpoint_month"),
    _type(CHECKPOINTS, "assessed_on", "2030-09-31"),
    _not_null(CHECKPOINTS, "assessed_on"),
    Case("status-enum", CHECKPOINTS, "status", "enum", {"status": "RETIRED"}),
    _not_null(CHECKPOINTS, "status", hours_per_week=""),
    Case("hours_per_week-zero", CHECKPOINTS, "hours_per_week", "range", {"hours_per_week": "0"}),
    Case("hours_per_week-negative", CHECKPOINTS, "hours_per_week", "range", {"hours_per_week": "-1"}),
    Case("hours_per_week-over-80", CHECKPOINTS, "hours_per_week", "range", {"hours_per_week": "80.5"}),
    _type(CHECKPOINTS, "hours_per_week", "20,5"),
    *[
        Case(
            f"hours_per_week-required-when-{status}",
            CHECKPOINTS,
            "hours_per_week",
            "required_iff",
            {"status": status, "hours_per_week": ""},
        )
        for status in ("COMPETITIVE", "SHELTERED")
    ],
    *[
        Case(
            f"hours_per_week-only-when-working-{status}",
            CHECKPOINTS,
            "hours_per_week",
            "required_iff",
            {"status": status, "hours_per_week": "10"},
        )
        for status in ("EDUCATION", "NOT_WORKING", "UNREACHABLE")
    ],
    _type(CHECKPOINTS, "recorded_at", "2030-09-01T12:00:00", "-no-offset"),
    _not_null(CHECKPOINTS, "recorded_at"),
    # employment/jobs.csv
    _not_null(JOBS, "job_id"),
    Case(
        "participant-not-enrolled",
        JOBS,
        "participant_id",
        "enrolled_participant",
        {"participant_id": _stranger},
    ),
    _not_null(JOBS, "participant_id"),
    _type(JOBS, "start_date", "2030-08"),
    _not_null(JOBS, "start_date"),
    _type(JOBS, "end_date", "2030-08-32"),
    Case("job_type-enum", JOBS, "job_type", "enum", {"job_type": "VOLUNTEER"}),
    _not_null(JOBS, "job_type"),
    Case("hours_per_week-zero", JOBS, "hours_per_week", "range", {"hours_per_week": "0"}),
    Case("hours_per_week-over-80", JOBS, "hours_per_week", "range", {"hours_per_week": "81"}),
    _type(JOBS, "hours_per_week", "full time"),
    _not_null(JOBS, "hours_per_week"),
    _type(JOBS, "recorded_at", "2030-08-02", "-a-date"),
    _not_null(JOBS, "recorded_at"),
    _type(JOBS, "is_deleted", "0"),
    _not_null(JOBS, "is_deleted"),
]


def _cases(source: str) -> list[Case]:
    return [c for c in CASES if SOURCE_OF[c.file] == source]


# --- valid rows, boundary values included ----------------------------------------------------


def _valid_enrolment(n: int, ctx: dict[str, Any]) -> list[dict[str, Any]]:
    boundaries = [
        {"birth_year": "1900"},
        {"randomised_on": "2030-06-01", "birth_year": "2014"},  # exactly 16 in the year randomised
        {"randomised_on": _extract_day(0)(ctx)},  # randomised on the extract day
        {
            "intervention_ended_on": "2030-06-01",
            "followup_ended_on": "2030-06-01",
            "followup_end_reason": "DIED",
        },
        {"followup_ended_on": "2032-06-01", "followup_end_reason": "COMPLETED"},
        {"followup_ended_on": "2031-01-01", "followup_end_reason": "WITHDREW"},
        {"followup_ended_on": "2030-07-01", "followup_end_reason": "LOST"},
        {"study": "PILOT", "arm": "TAU", "sex": "M", "site": "Tromsø"},
        {"participant_id": "QZQZQZ-123"},  # 6 letters, 3 digits
    ]
    rows = [enrolment_row(**b) for b in boundaries]
    return rows + [enrolment_row(arm=("IPS", "TAU")[i % 2]) for i in range(n - len(rows))]


def _valid_proms(n: int, ctx: dict[str, Any]) -> list[dict[str, Any]]:
    contract = load_contract()
    ranges = contract.file("registry", PROMS).item_ranges()
    boundaries = [
        {"item": item, "value": str(value)} for item, (lo, hi) in ranges.items() for value in (lo, hi)
    ]
    boundaries += [
        {"item": "eq5d_vas", "value": None},  # skipped item
        {"is_deleted": "true"},
        {"updated_at": "2030-12-01T09:00:00Z"},
    ]
    rows = [prom_row(**b) for b in boundaries]
    return rows + [prom_row() for _ in range(n - len(rows))]


def _valid_spells(n: int, ctx: dict[str, Any]) -> list[dict[str, Any]]:
    contract = load_contract()
    benefits = contract.file("welfare", SPELLS).column("benefit").rules[0].values  # type: ignore[attr-defined]
    boundaries: list[dict[str, Any]] = [{"benefit": b} for b in benefits]
    boundaries += [
        {"grade_pct": "1"},
        {"grade_pct": "100"},
        {"to_date": "2030-01-01"},  # one day: to_date = from_date
        {"status": "ANNULLED", "registered_at": "2030-02-01T08:00:00+02:00"},
    ]
    rows = [spell_row(**b) for b in boundaries]
    return rows + [spell_row() for _ in range(n - len(rows))]


def _valid_checkpoints(n: int, ctx: dict[str, Any]) -> list[dict[str, Any]]:
    people = ctx["enrolled"]
    boundaries: list[dict[str, Any]] = [{"checkpoint_month": m} for m in ("0", "3", "6", "12", "18", "24")]
    boundaries += [
        {"status": "SHELTERED", "hours_per_week": "80"},
        {"status": "COMPETITIVE", "hours_per_week": "0.5"},
        *[{"status": s, "hours_per_week": ""} for s in ("EDUCATION", "NOT_WORKING", "UNREACHABLE")],
    ]
    rows = [checkpoint_row(people[i % len(people)], **b) for i, b in enumerate(boundaries)]
    return rows + [checkpoint_row(people[i % len(people)]) for i in range(n - len(rows))]


def _valid_jobs(n: int, ctx: dict[str, Any]) -> list[dict[str, Any]]:
    people = ctx["enrolled"]
    boundaries: list[dict[str, Any]] = [
        {"hours_per_week": "80", "job_type": "COMPETITIVE"},
        {"hours_per_week": "0.1"},
        {"end_date": "2030-12-31", "is_deleted": "true"},
    ]
    rows = [job_row(people[i % len(people)], **b) for i, b in enumerate(boundaries)]
    return rows + [job_row(people[i % len(people)]) for i in range(n - len(rows))]


VALID = {
    TRIAL: _valid_enrolment,
    PROMS: _valid_proms,
    SPELLS: _valid_spells,
    CHECKPOINTS: _valid_checkpoints,
    JOBS: _valid_jobs,
}


def _base_row(file: str, ctx: dict[str, Any]) -> dict[str, Any]:
    if file == TRIAL:
        return enrolment_row()
    if file == PROMS:
        return prom_row()
    if file == SPELLS:
        return spell_row()
    person = ctx["enrolled"][0]
    return checkpoint_row(person) if file == CHECKPOINTS else job_row(person)


@dataclass
class Applied:
    """One applied rules delivery: where each case's row and the valid rows ended up."""

    source: str
    delivery_id: str
    lines: dict[str, tuple[str, int]]  # case id -> (file, physical line)
    written: dict[str, dict[str, Any]]  # case id -> the row as written
    valid: dict[str, int]  # file -> valid rows written


def _apply(settings: Settings, landing: Path, source: str, ctx: dict[str, Any], delivery_id: str) -> Applied:
    files: dict[str, list[dict[str, Any]]] = {}
    lines: dict[str, tuple[str, int]] = {}
    written: dict[str, dict[str, Any]] = {}
    valid: dict[str, int] = {}
    cases = _cases(source)
    for file in dict.fromkeys(c.file for c in cases):
        bad = [c for c in cases if c.file == file]
        rows = VALID[file](VALID_PER_BAD * len(bad), ctx)
        valid[file] = len(rows)
        if file == TRIAL:
            ctx["first_participant"] = rows[0]["participant_id"]
        for case in bad:
            row = _base_row(file, ctx)
            row.update({k: v(ctx) if callable(v) else v for k, v in case.overrides.items()})
            lines[case.id] = (file, len(rows) + 2)  # the header is line 1
            written[case.id] = row
            rows.append(row)
        files[file] = rows
    bad_rows, total = len(lines), sum(len(r) for r in files.values())
    assert bad_rows / total <= load_contract().defaults.quarantine_threshold
    write_delivery(landing, source, files, delivery_id=delivery_id)
    assert_applied(run_ingest(settings, source, landing))
    return Applied(source, delivery_id, lines, written, valid)


class _Deliveries(dict[str, Applied]):
    """Source -> its applied rules delivery, applied on first use (one DAG run each)."""

    def __init__(self, settings: Settings, landing: Path) -> None:
        super().__init__()
        self.settings = settings
        self.landing = landing

    def __missing__(self, source: str) -> Applied:
        ctx: dict[str, Any] = {}
        if source == "employment":  # its participants must be enrolled first
            people = [enrolment_row() for _ in range(5)]
            write_delivery(self.landing, "trial", {TRIAL: people})
            assert_applied(run_ingest(self.settings, "trial", self.landing))
            ctx["enrolled"] = [p["participant_id"] for p in people]
        delivery_id = new_delivery_id()
        ctx["extracted_at"] = extracted_at_of(delivery_id)
        self[source] = _apply(self.settings, self.landing, source, ctx, delivery_id)
        return self[source]


@pytest.fixture(scope="module")
def applied(
    airflow_ready: Settings, warehouse: Warehouse, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Applied]:
    """The rules deliveries of the four sources, each applied once for the whole module."""
    return _Deliveries(airflow_ready, tmp_path_factory.mktemp("rules") / "landing")


@pytest.fixture(scope="module")
def admin(warehouse: Warehouse) -> Iterator[psycopg.Connection]:
    with connect(warehouse) as conn:
        yield conn


# --- the tests ------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_a_row_breaking_the_rule_is_quarantined_with_column_value_and_rule(
    case: Case, applied: dict[str, Applied], admin: psycopg.Connection
) -> None:
    source = SOURCE_OF[case.file]
    delivery = applied[source]
    file, line = delivery.lines[case.id]
    row = quarantined(admin, source, delivery.delivery_id).get((file, line))
    assert row is not None, f"{case.id}: line {line} of {file} was not quarantined"
    violation = only_violation(row)
    expected = case.value
    if expected is UNCHANGED:
        written = delivery.written[case.id].get(case.column)
        expected = "" if written is None else str(written)
    if expected and (case.column == "participant_id" or re.search(r"[A-Z]{2,6}-\d{3,6}", expected)):
        # whom the row is about: kept in the record, never in the violation or its message
        assert expected not in violation["message"] and "value redacted" in violation["message"]
        expected = None
    assert (violation["column"], violation["rule"], violation["value"]) == (case.column, case.rule, expected)
    assert f"rule: {case.rule}" in violation["message"] and case.column in violation["message"]
    assert "fnr" not in row["record"]  # the record is pseudonymised like any other row
    if delivery.written[case.id].get("fnr"):
        assert len(row["record"]["person_pseudonym"]) == 64
    elif "fnr" in delivery.written[case.id]:  # an empty fnr has no pseudonym: HMAC("") would link strangers
        assert row["record"]["person_pseudonym"] is None


@pytest.mark.slow
@pytest.mark.parametrize("source", source_names())
def test_the_valid_rows_of_the_delivery_load(
    source: str, applied: dict[str, Applied], admin: psycopg.Connection
) -> None:
    delivery = applied[source]
    entry = ledger(admin, source, delivery.delivery_id)
    assert entry is not None
    assert entry["status"] == "loaded"
    assert entry["rows_quarantined"] == len(delivery.lines)
    assert entry["rows_received"] == len(delivery.lines) + sum(delivery.valid.values())
    assert reconciles(entry)
    for file, n in delivery.valid.items():
        assert landed(admin, source, file, delivery.delivery_id) == n, file
    assert len(quarantined(admin, source, delivery.delivery_id)) == len(delivery.lines)
    if source in ("trial", "employment"):  # keyed by participant: straight into raw
        assert entry["rows_pending"] == 0
        for file, n in delivery.valid.items():
            assert count(admin, f"raw.{source}_{file.removesuffix('.csv')}", delivery.delivery_id) == n


# --- timestamps the checker accepts must not crash the load ----------------------------------


@pytest.mark.parametrize(
    "updated_at",
    [
        pytest.param("2030-12-01T10:00:00.5+01:00", id="fraction"),
        pytest.param("2030-12-01T1000Z", id="basic-time"),
        pytest.param(
            "2030-12-01T10:00:00,5+01:00",
            id="decimal-comma",
        ),
        pytest.param(
            "2030-12-01T10:00:00+18:00",
            id="offset-over-15h59",
        ),
    ],
)
def test_a_timestamp_the_checker_accepts_loads_or_is_quarantined(
    updated_at: str, settings: Settings, tmp_path: Path, admin: psycopg.Connection
) -> None:
    rows = [prom_row() for _ in range(19)] + [prom_row(updated_at=updated_at)]
    folder = write_delivery(tmp_path, "registry", {PROMS: rows})
    with loader_connection(settings) as conn:
        outcome = apply_delivery(conn, folder, pseudonymise=PSEUDONYMISE)
    assert outcome.status == "loaded"
    assert outcome.rows_loaded + outcome.rows_pending >= 19
    entry = ledger(admin, "registry", folder.name)
    assert entry is not None and reconciles(entry)
