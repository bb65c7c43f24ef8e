"""The checker: one synthetic delivery per rule of docs/sources.md, each breaking exactly that rule."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from support.deliveries import SOURCE_OF

from outcomes.contracts import (
    DeliveryReport,
    RowChecker,
    RowInvalid,
    Violation,
    check_delivery,
    load_contract,
)
from outcomes.contracts.fnr import is_synthetic, synthetic_fnr

ENROLLED = frozenset({"IPS-101", "IPS-102", "IPS-103"})
FNR = synthetic_fnr(dt.date(1975, 2, 3), 7)
BAD_FNR = FNR[:10] + str((int(FNR[10]) + 1) % 10)  # synthetic, last check digit wrong

DeliveryWriter = Callable[..., Path]  # the write_delivery fixture (see conftest.py)
CsvBytes = Callable[..., bytes]  # the to_csv fixture
RowFactory = Callable[..., dict[str, str]]
RowsFactory = Callable[..., list[dict[str, str]]]


def _check(folder: Path, **kwargs: Any) -> DeliveryReport:
    kwargs.setdefault("enrolled_participant_ids", ENROLLED)
    return check_delivery(folder, **kwargs)


def _only(violations: list[Violation]) -> Violation:
    assert len(violations) == 1, [v.message for v in violations]
    return violations[0]


def _rules(report: DeliveryReport) -> list[str]:
    return [v.rule for v in report.file_errors]


# --- valid deliveries ---------------------------------------------------------------------


@pytest.mark.parametrize("file", sorted(SOURCE_OF))
def test_valid_delivery_passes(file: str, write_delivery: DeliveryWriter, valid_rows: RowsFactory) -> None:
    folder = write_delivery(SOURCE_OF[file], {file: valid_rows(file, 10)})
    report = _check(folder)
    assert report.ok, [v.message for v in report.file_errors + report.row_violations]
    assert report.rows_checked == {file: 10}
    assert report.bad_rows == {file: 0}
    assert report.quarantine_share == 0.0
    assert report.manifest is not None and report.manifest.delivery_id == "20261121T0200Z"


def test_valid_employment_delivery_with_both_files(
    write_delivery: DeliveryWriter, valid_rows: RowsFactory
) -> None:
    folder = write_delivery(
        "employment",
        {"checkpoints.csv": valid_rows("checkpoints.csv"), "jobs.csv": valid_rows("jobs.csv")},
    )
    report = _check(folder)
    assert report.ok
    assert report.rows_checked == {"checkpoints.csv": 3, "jobs.csv": 3}


@pytest.mark.parametrize(
    ("file", "overrides"),
    [
        # boundaries and NULLs that the contract allows
        ("enrolment.csv", {"birth_year": "2010"}),
        ("enrolment.csv", {"birth_year": "1900"}),
        ("enrolment.csv", {"randomised_on": "2026-11-21"}),
        ("enrolment.csv", {"intervention_ended_on": "2026-03-01"}),
        ("enrolment.csv", {"followup_ended_on": "2026-03-01", "followup_end_reason": "COMPLETED"}),
        ("enrolment.csv", {"study": "PILOT", "sex": "M", "arm": "TAU", "erase": "true"}),
        ("proms.csv", {"item": "odi_10", "value": "0"}),
        ("proms.csv", {"item": "eq5d_vas", "value": "100"}),
        ("proms.csv", {"item": "hscl_25", "value": "4"}),
        ("proms.csv", {"item": "eq5d_anxiety", "value": "3"}),
        ("proms.csv", {"item": "odi_01", "value": ""}),
        ("proms.csv", {"updated_at": "2026-02-28T09:00:00.123456Z", "is_deleted": "true"}),
        ("benefit_spells.csv", {"grade_pct": "1", "to_date": "2025-01-01"}),
        ("benefit_spells.csv", {"status": "ANNULLED", "benefit": "SOSIALHJELP"}),
        ("checkpoints.csv", {"status": "SHELTERED", "hours_per_week": "80"}),
        ("checkpoints.csv", {"status": "UNREACHABLE", "hours_per_week": ""}),
        ("checkpoints.csv", {"checkpoint_month": "24", "hours_per_week": "0.5"}),
        ("jobs.csv", {"end_date": "2026-04-01", "job_type": "SHELTERED", "hours_per_week": "80"}),
    ],
)
def test_allowed_values_pass(
    file: str,
    overrides: dict[str, str],
    write_delivery: DeliveryWriter,
    valid_rows: RowsFactory,
) -> None:
    rows = valid_rows(file)
    rows[1].update(overrides)
    report = _check(write_delivery(SOURCE_OF[file], {file: rows}))
    assert report.ok, [v.message for v in report.row_violations]


def test_header_in_any_order(write_delivery: DeliveryWriter, valid_rows: RowsFactory) -> None:
    columns = load_contract().file("registry", "proms.csv").column_names
    folder = write_delivery(
        "registry",
        {"proms.csv": valid_rows("proms.csv")},
        header={"proms.csv": list(reversed(columns))},
    )
    assert _check(folder).ok


def test_bom_and_crlf_are_accepted(write_delivery: DeliveryWriter, valid_rows: RowsFactory) -> None:
    rows = valid_rows("enrolment.csv", 3)
    rows[2]["sex"] = "X"
    folder = write_delivery("trial", {"enrolment.csv": rows}, line_end="\r\n")
    data = (folder / "enrolment.csv").read_bytes()
    assert b"\r\n" in data
    folder = write_delivery("trial", {"enrolment.csv": b"\xef\xbb\xbf" + data}, delivery_id="20261122T0200Z")
    report = _check(folder)
    assert report.file_errors == []
    v = _only(report.row_violations)
    assert (v.rule, v.line, v.column, v.value) == ("enum", 4, "sex", "X")


# --- row rules ----------------------------------------------------------------------------

ROW_CASES: list[tuple[str, dict[str, str], str, str]] = [
    # trial / enrolment.csv
    ("enrolment.csv", {"participant_id": "ips-102"}, "regex", "participant_id"),
    ("enrolment.csv", {"participant_id": "IPS-12"}, "regex", "participant_id"),
    ("enrolment.csv", {"participant_id": "IPS-102\n"}, "regex", "participant_id"),
    ("enrolment.csv", {"fnr": BAD_FNR}, "fnr_check_digits", "fnr"),
    ("enrolment.csv", {"fnr": "1234"}, "fnr_check_digits", "fnr"),
    ("enrolment.csv", {"fnr": ""}, "not_null", "fnr"),
    ("enrolment.csv", {"study": "FULL"}, "enum", "study"),
    ("enrolment.csv", {"site": ""}, "not_null", "site"),
    ("enrolment.csv", {"site": "   "}, "not_blank", "site"),
    ("enrolment.csv", {"randomised_on": "2026-11-22"}, "not_in_future", "randomised_on"),
    ("enrolment.csv", {"randomised_on": "2026-02-30"}, "type", "randomised_on"),
    ("enrolment.csv", {"randomised_on": "01.03.2026"}, "type", "randomised_on"),
    ("enrolment.csv", {"randomised_on": "20260301"}, "type", "randomised_on"),
    ("enrolment.csv", {"randomised_on": ""}, "not_null", "randomised_on"),
    ("enrolment.csv", {"arm": "CONTROL"}, "enum", "arm"),
    ("enrolment.csv", {"sex": "K"}, "enum", "sex"),
    ("enrolment.csv", {"birth_year": "2011"}, "range", "birth_year"),
    ("enrolment.csv", {"birth_year": "1899"}, "range", "birth_year"),
    ("enrolment.csv", {"birth_year": "19.5"}, "type", "birth_year"),
    ("enrolment.csv", {"intervention_ended_on": "2026-02-28"}, "date_order", "intervention_ended_on"),
    (
        "enrolment.csv",
        {"followup_ended_on": "2026-02-28", "followup_end_reason": "LOST"},
        "date_order",
        "followup_ended_on",
    ),
    (
        "enrolment.csv",
        {"followup_ended_on": "2026-09-01", "followup_end_reason": "MOVED"},
        "enum",
        "followup_end_reason",
    ),
    (
        "enrolment.csv",
        {"followup_ended_on": "2026-09-01", "followup_end_reason": ""},
        "required_iff",
        "followup_end_reason",
    ),
    ("enrolment.csv", {"followup_end_reason": "DIED"}, "required_iff", "followup_end_reason"),
    ("enrolment.csv", {"erase": "yes"}, "type", "erase"),
    ("enrolment.csv", {"erase": "True"}, "type", "erase"),
    ("enrolment.csv", {"erase": ""}, "not_null", "erase"),
    # registry / proms.csv
    ("proms.csv", {"form_id": ""}, "not_null", "form_id"),
    ("proms.csv", {"form_id": " "}, "not_blank", "form_id"),
    ("proms.csv", {"fnr": BAD_FNR}, "fnr_check_digits", "fnr"),
    ("proms.csv", {"answered_on": "2026-2-28"}, "type", "answered_on"),
    ("proms.csv", {"answered_on": ""}, "not_null", "answered_on"),
    ("proms.csv", {"item": "odi_11", "value": "3"}, "item_code", "item"),
    ("proms.csv", {"item": "ODI_01", "value": "3"}, "item_code", "item"),
    ("proms.csv", {"item": "", "value": "3"}, "not_null", "item"),
    ("proms.csv", {"item": "odi_03", "value": "7"}, "item_range", "value"),
    ("proms.csv", {"item": "odi_03", "value": "-1"}, "item_range", "value"),
    ("proms.csv", {"item": "nrs_pain_bother", "value": "11"}, "item_range", "value"),
    ("proms.csv", {"item": "hscl_01", "value": "0"}, "item_range", "value"),
    ("proms.csv", {"item": "hscl_25", "value": "5"}, "item_range", "value"),
    ("proms.csv", {"item": "eq5d_mobility", "value": "4"}, "item_range", "value"),
    ("proms.csv", {"item": "eq5d_vas", "value": "101"}, "item_range", "value"),
    ("proms.csv", {"item": "odi_01", "value": "3.5"}, "type", "value"),
    ("proms.csv", {"updated_at": "2026-02-28T10:00:00"}, "type", "updated_at"),
    ("proms.csv", {"updated_at": "2026-02-28"}, "type", "updated_at"),
    ("proms.csv", {"updated_at": ""}, "not_null", "updated_at"),
    ("proms.csv", {"is_deleted": "TRUE"}, "type", "is_deleted"),
    # welfare / benefit_spells.csv
    ("benefit_spells.csv", {"spell_id": ""}, "not_null", "spell_id"),
    ("benefit_spells.csv", {"spell_id": "\t"}, "not_blank", "spell_id"),
    ("benefit_spells.csv", {"fnr": BAD_FNR}, "fnr_check_digits", "fnr"),
    ("benefit_spells.csv", {"benefit": "NAV"}, "enum", "benefit"),
    ("benefit_spells.csv", {"grade_pct": "0"}, "range", "grade_pct"),
    ("benefit_spells.csv", {"grade_pct": "101"}, "range", "grade_pct"),
    ("benefit_spells.csv", {"grade_pct": "50%"}, "type", "grade_pct"),
    ("benefit_spells.csv", {"grade_pct": ""}, "not_null", "grade_pct"),
    ("benefit_spells.csv", {"from_date": "2025-13-01"}, "type", "from_date"),
    ("benefit_spells.csv", {"to_date": "2024-12-31"}, "date_order", "to_date"),
    ("benefit_spells.csv", {"registered_at": "yesterday"}, "type", "registered_at"),
    ("benefit_spells.csv", {"status": "DELETED"}, "enum", "status"),
    # employment / checkpoints.csv
    ("checkpoints.csv", {"participant_id": "IPS-999"}, "enrolled_participant", "participant_id"),
    ("checkpoints.csv", {"checkpoint_month": "9"}, "enum", "checkpoint_month"),
    ("checkpoints.csv", {"checkpoint_month": "three"}, "type", "checkpoint_month"),
    ("checkpoints.csv", {"assessed_on": "2026/06/01"}, "type", "assessed_on"),
    ("checkpoints.csv", {"status": "RETIRED"}, "enum", "status"),
    ("checkpoints.csv", {"hours_per_week": "0"}, "range", "hours_per_week"),
    ("checkpoints.csv", {"hours_per_week": "80.01"}, "range", "hours_per_week"),
    ("checkpoints.csv", {"hours_per_week": "1,5"}, "type", "hours_per_week"),
    ("checkpoints.csv", {"hours_per_week": ""}, "required_iff", "hours_per_week"),
    (
        "checkpoints.csv",
        {"status": "NOT_WORKING", "hours_per_week": "10"},
        "required_iff",
        "hours_per_week",
    ),
    ("checkpoints.csv", {"recorded_at": "2026-06-01 12:00:00Z"}, "type", "recorded_at"),
    # employment / jobs.csv
    ("jobs.csv", {"job_id": ""}, "not_null", "job_id"),
    ("jobs.csv", {"participant_id": "IPS-999"}, "enrolled_participant", "participant_id"),
    ("jobs.csv", {"start_date": ""}, "not_null", "start_date"),
    ("jobs.csv", {"end_date": "2026-05-32"}, "type", "end_date"),
    ("jobs.csv", {"job_type": "VOLUNTEER"}, "enum", "job_type"),
    ("jobs.csv", {"hours_per_week": "0"}, "range", "hours_per_week"),
    ("jobs.csv", {"hours_per_week": "81"}, "range", "hours_per_week"),
    ("jobs.csv", {"hours_per_week": ""}, "not_null", "hours_per_week"),
    ("jobs.csv", {"recorded_at": "2026-05-02T12:00"}, "type", "recorded_at"),
    ("jobs.csv", {"is_deleted": "1"}, "type", "is_deleted"),
]


@pytest.mark.parametrize(
    ("file", "overrides", "rule", "column"),
    ROW_CASES,
    ids=[f"{f}:{c}:{r}:{i}" for i, (f, _, r, c) in enumerate(ROW_CASES)],
)
def test_row_rule(
    file: str,
    overrides: dict[str, str],
    rule: str,
    column: str,
    write_delivery: DeliveryWriter,
    valid_rows: RowsFactory,
) -> None:
    rows = valid_rows(file, 3)
    rows[1].update(overrides)  # the second data row: physical line 3
    report = _check(write_delivery(SOURCE_OF[file], {file: rows}))
    assert report.file_errors == []
    v = _only(report.row_violations)
    assert (v.rule, v.line, v.column, v.file) == (rule, 3, column, file)
    assert (v.source, v.delivery_id) == (SOURCE_OF[file], "20261121T0200Z")
    assert f"{SOURCE_OF[file]}/20261121T0200Z {file} line 3, column {column}:" in v.message
    assert v.message.endswith(f"(rule: {rule})")
    assert report.bad_rows == {file: 1}
    assert report.quarantine_share == pytest.approx(1 / 3)
    assert not report.ok
    given = overrides.get(column, rows[1][column])
    if column in {"fnr", "participant_id"} and given:  # whom the row is about: never echoed
        assert v.value is None and f"value redacted ({len(given)} characters)" in v.message
        assert given not in v.message
    else:
        assert v.value == overrides.get(column, rows[1][column])


def test_item_range_message(write_delivery: DeliveryWriter, valid_rows: RowsFactory) -> None:
    rows = valid_rows("proms.csv", 20)
    rows[15].update(item="odi_03", value="7")
    report = _check(write_delivery("registry", {"proms.csv": rows}))
    v = _only(report.row_violations)
    assert v.message == (
        "registry/20261121T0200Z proms.csv line 17, column value: "
        "'7' is outside 0..5 for item odi_03 (rule: item_range)"
    )


def test_birth_year_bound_follows_randomised_on(
    write_delivery: DeliveryWriter, valid_rows: RowsFactory
) -> None:
    rows = valid_rows("enrolment.csv", 2)
    rows[0].update(randomised_on="2020-06-01", birth_year="2004")  # 2020 - 16: allowed
    rows[1].update(randomised_on="2020-06-01", birth_year="2005")
    report = _check(write_delivery("trial", {"enrolment.csv": rows}))
    v = _only(report.row_violations)
    assert (v.rule, v.line, v.column) == ("range", 3, "birth_year")
    assert "1900..2004" in v.message and "year(randomised_on) - 16" in v.message


def test_participant_id_unique_in_enrolment(write_delivery: DeliveryWriter, valid_rows: RowsFactory) -> None:
    rows = valid_rows("enrolment.csv", 4)
    rows[2]["participant_id"] = rows[0]["participant_id"]
    report = _check(write_delivery("trial", {"enrolment.csv": rows}))
    v = _only(report.row_violations)
    assert (v.rule, v.line, v.column, v.value) == ("unique", 4, "participant_id", None)
    assert "first on line 2" in v.message and "IPS-101" not in v.message


def test_several_violations_in_one_row_count_one_bad_row(
    write_delivery: DeliveryWriter, valid_rows: RowsFactory
) -> None:
    rows = valid_rows("benefit_spells.csv", 4)
    rows[3].update(benefit="X", status="Y", grade_pct="0")
    report = _check(write_delivery("welfare", {"benefit_spells.csv": rows}))
    assert sorted(v.column or "" for v in report.row_violations) == ["benefit", "grade_pct", "status"]
    assert {v.line for v in report.row_violations} == {5}
    assert report.bad_rows == {"benefit_spells.csv": 1}
    assert report.quarantine_share == pytest.approx(0.25)


def test_line_numbers_count_physical_lines(write_delivery: DeliveryWriter, valid_rows: RowsFactory) -> None:
    rows = valid_rows("enrolment.csv", 3)
    rows[0]["site"] = "Oslo\nUllevål"  # a quoted field over two lines: row 1 is lines 2-3
    rows[1]["sex"] = "X"
    report = _check(write_delivery("trial", {"enrolment.csv": rows}))
    assert report.file_errors == []
    v = _only(report.row_violations)
    assert (v.rule, v.line) == ("enum", 4)


def test_extracted_at_defaults_to_manifest_and_can_be_overridden(
    write_delivery: DeliveryWriter, valid_rows: RowsFactory
) -> None:
    rows = valid_rows("enrolment.csv", 2)
    rows[1]["randomised_on"] = "2026-11-21"
    folder = write_delivery("trial", {"enrolment.csv": rows}, extracted_at="2026-11-21T23:30:00-01:00")
    # 23:30 at -01:00 is 00:30 UTC on 22 November: the 21st is not in the future
    assert _check(folder).ok
    report = _check(folder, extracted_at=dt.datetime(2026, 11, 20, 23, 0, tzinfo=dt.UTC))
    v = _only(report.row_violations)
    assert (v.rule, v.line, v.column) == ("not_in_future", 3, "randomised_on")
    assert "2026-11-20" in v.message


def test_enrolled_participant_rule_skipped_without_ids(
    write_delivery: DeliveryWriter, valid_rows: RowsFactory
) -> None:
    rows = valid_rows("jobs.csv", 2)
    rows[1]["participant_id"] = "XYZ-999"
    folder = write_delivery("employment", {"jobs.csv": rows})
    assert check_delivery(folder).ok
    assert not check_delivery(folder, enrolled_participant_ids={"IPS-101"}).ok


# --- whole-delivery checks ----------------------------------------------------------------


def test_delivery_id_pattern(write_delivery: DeliveryWriter, valid_rows: RowsFactory) -> None:
    folder = write_delivery("registry", {"proms.csv": valid_rows("proms.csv")}, delivery_id="latest")
    report = _check(folder)
    assert _rules(report) == ["delivery_id_pattern"]
    assert "'latest'" in report.file_errors[0].message


def test_unknown_source(write_delivery: DeliveryWriter, valid_rows: RowsFactory) -> None:
    folder = write_delivery("payroll", {"proms.csv": valid_rows("proms.csv")})
    report = _check(folder)
    assert _rules(report) == ["unknown_source"]
    assert report.rows_checked == {}


def test_manifest_missing(write_delivery: DeliveryWriter, valid_rows: RowsFactory) -> None:
    folder = write_delivery("registry", {"proms.csv": valid_rows("proms.csv")}, manifest=False)
    report = _check(folder)
    v = _only(report.file_errors)
    assert (v.rule, v.file) == ("manifest_missing", "_manifest.json")
    assert report.manifest is None
    assert report.rows_checked == {"proms.csv": 3}  # the files are still checked


def test_manifest_unparseable(write_delivery: DeliveryWriter, valid_rows: RowsFactory) -> None:
    folder = write_delivery("registry", {"proms.csv": valid_rows("proms.csv")})
    (folder / "_manifest.json").write_text('{"source": "registry",\n "files": [}', encoding="utf-8")
    v = _only(_check(folder).file_errors)
    assert (v.rule, v.file, v.line) == ("manifest_unparseable", "_manifest.json", 2)
    assert "line 2" in v.message


@pytest.mark.parametrize(
    ("edit", "key"),
    [
        (lambda m: m["files"][0].update(rows="3"), "files[0].rows"),
        (lambda m: m["files"][0].update(rows=-1), "files[0].rows"),
        (lambda m: m["files"][0].update(sha256="abc"), "files[0].sha256"),
        (lambda m: m["files"][0].update(name="../proms.csv"), "files[0].name"),
        (lambda m: m["files"][0].update(name="/etc/proms.csv"), "files[0].name"),
        (lambda m: m["files"][0].update(name="..\\proms.csv"), "files[0].name"),
        (lambda m: m["files"][0].pop("sha256"), "files[0].sha256"),
        (lambda m: m.pop("extracted_at"), "extracted_at"),
        (lambda m: m.update(extracted_at="2026-11-21T02:00:00"), "extracted_at"),
        (lambda m: m.update(mode="delta"), "mode"),
        (lambda m: m.update(files={}), "files"),
        (lambda m: m.update(comment="hello"), "comment"),
        (lambda m: m["files"].append(dict(m["files"][0])), "files[1].name"),
    ],
)
def test_manifest_schema(
    edit: Callable[[dict[str, Any]], None],
    key: str,
    write_delivery: DeliveryWriter,
    valid_rows: RowsFactory,
) -> None:
    folder = write_delivery("registry", {"proms.csv": valid_rows("proms.csv")}, edit_manifest=edit)
    report = _check(folder)
    v = _only(report.file_errors)
    assert (v.rule, v.file, v.column) == ("manifest_schema", "_manifest.json", key)
    assert report.manifest is None


@pytest.mark.parametrize(
    ("edit", "rule"),
    [
        (lambda m: m.update(source="welfare"), "manifest_source_mismatch"),
        (lambda m: m.update(delivery_id="20261121T0300Z"), "manifest_delivery_id_mismatch"),
        (lambda m: m.update(mode="full"), "manifest_mode_mismatch"),
    ],
)
def test_manifest_disagrees_with_folder(
    edit: Callable[[dict[str, Any]], None],
    rule: str,
    write_delivery: DeliveryWriter,
    valid_rows: RowsFactory,
) -> None:
    folder = write_delivery("registry", {"proms.csv": valid_rows("proms.csv")}, edit_manifest=edit)
    v = _only(_check(folder).file_errors)
    assert (v.rule, v.file) == (rule, "_manifest.json")


def test_file_listed_but_missing(write_delivery: DeliveryWriter, valid_rows: RowsFactory) -> None:
    folder = write_delivery(
        "employment",
        {"checkpoints.csv": valid_rows("checkpoints.csv"), "jobs.csv": valid_rows("jobs.csv")},
    )
    (folder / "jobs.csv").unlink()
    report = _check(folder)
    v = _only(report.file_errors)
    assert (v.rule, v.file, v.line) == ("file_missing", "jobs.csv", None)
    assert report.rows_checked == {"checkpoints.csv": 3}


def test_unlisted_csv(write_delivery: DeliveryWriter, valid_rows: RowsFactory) -> None:
    folder = write_delivery("registry", {"proms.csv": valid_rows("proms.csv")})
    (folder / "proms_extra.csv").write_bytes(b"a,b\n1,2\n")
    (folder / "README.txt").write_text("not a CSV: ignored")
    v = _only(_check(folder).file_errors)
    assert (v.rule, v.file) == ("unlisted_file", "proms_extra.csv")


def test_unexpected_file_in_manifest(write_delivery: DeliveryWriter, valid_rows: RowsFactory) -> None:
    folder = write_delivery(
        "registry", {"proms.csv": valid_rows("proms.csv"), "forms.csv": b"form_id\nF-1\n"}
    )
    v = _only(_check(folder).file_errors)
    assert (v.rule, v.file) == ("unexpected_file", "_manifest.json")
    assert "'forms.csv'" in v.message


def test_full_source_must_list_its_file(write_delivery: DeliveryWriter) -> None:
    folder = write_delivery("trial", {})
    v = _only(_check(folder).file_errors)
    assert v.rule == "required_file_not_listed"
    assert "enrolment.csv" in v.message


def test_incremental_source_may_omit_a_file(write_delivery: DeliveryWriter, valid_rows: RowsFactory) -> None:
    folder = write_delivery("employment", {"jobs.csv": valid_rows("jobs.csv")})
    assert _check(folder).ok


def test_sha256_mismatch(write_delivery: DeliveryWriter, valid_rows: RowsFactory) -> None:
    folder = write_delivery("trial", {"enrolment.csv": valid_rows("enrolment.csv")})
    path = folder / "enrolment.csv"
    path.write_bytes(path.read_bytes().replace(b"Oslo", b"Bodo", 1))  # same rows, other bytes
    report = _check(folder)
    v = _only(report.file_errors)
    assert (v.rule, v.file) == ("sha256_mismatch", "enrolment.csv")
    manifest_sha = json.loads((folder / "_manifest.json").read_text())["files"][0]["sha256"]
    assert manifest_sha in v.message
    assert report.row_violations == []


def test_row_count_mismatch(write_delivery: DeliveryWriter, valid_rows: RowsFactory) -> None:
    folder = write_delivery(
        "trial",
        {"enrolment.csv": valid_rows("enrolment.csv")},
        edit_manifest=lambda m: m["files"][0].update(rows=4),
    )
    v = _only(_check(folder).file_errors)
    assert (v.rule, v.file) == ("row_count_mismatch", "enrolment.csv")
    assert "has 3 data rows, the manifest says 4" in v.message


@pytest.mark.parametrize(
    ("header_edit", "rule", "column", "value"),
    [
        (lambda h: [c for c in h if c != "sex"], "header_missing_column", "sex", None),
        (lambda h: [*h, "notes"], "header_extra_column", "notes", "notes"),
        (
            lambda h: ["birth_yaer" if c == "birth_year" else c for c in h],
            "header_misspelt_column",
            "birth_year",
            "birth_yaer",
        ),
        (lambda h: [" arm" if c == "arm" else c for c in h], "header_misspelt_column", "arm", " arm"),
        (lambda h: [*h, "study"], "header_duplicate_column", "study", "study"),
    ],
)
def test_header(
    header_edit: Callable[[list[str]], list[str]],
    rule: str,
    column: str,
    value: str | None,
    write_delivery: DeliveryWriter,
    valid_rows: RowsFactory,
) -> None:
    header = header_edit(list(load_contract().file("trial", "enrolment.csv").column_names))
    rows = valid_rows("enrolment.csv")
    for row in rows:
        row["birth_yaer"] = row[" arm"] = row["notes"] = ""
    folder = write_delivery("trial", {"enrolment.csv": rows}, header={"enrolment.csv": header})
    report = _check(folder)
    v = _only(report.file_errors)
    assert (v.rule, v.file, v.line, v.column, v.value) == (rule, "enrolment.csv", 1, column, value)
    assert repr(column) in v.message
    assert report.row_violations == []  # rows of a file with a broken header are not checked
    assert report.rows_checked == {"enrolment.csv": 3}


def test_empty_file(write_delivery: DeliveryWriter) -> None:
    folder = write_delivery("registry", {"proms.csv": b""})
    v = _only(_check(folder).file_errors)
    assert (v.rule, v.file) == ("empty_file", "proms.csv")


def test_header_only_file_is_fine(write_delivery: DeliveryWriter) -> None:
    folder = write_delivery("registry", {"proms.csv": []})
    report = _check(folder)
    assert report.ok and report.rows_checked == {"proms.csv": 0}


def test_not_utf8(write_delivery: DeliveryWriter, valid_rows: RowsFactory, to_csv: CsvBytes) -> None:
    rows = valid_rows("enrolment.csv", 4)
    rows[2]["site"] = "Tromsø"
    header = load_contract().file("trial", "enrolment.csv").column_names
    data = to_csv(rows, header).replace("Tromsø".encode(), "Tromsø".encode("latin-1"))
    report = _check(write_delivery("trial", {"enrolment.csv": data}))  # manifest sha256 matches
    v = _only(report.file_errors)
    assert (v.rule, v.file, v.line) == ("not_utf8", "enrolment.csv", 4)
    assert "line 4" in v.message and "0xf8" in v.message


def test_not_utf8_also_reports_a_wrong_sha256(
    write_delivery: DeliveryWriter, valid_rows: RowsFactory
) -> None:
    folder = write_delivery("trial", {"enrolment.csv": valid_rows("enrolment.csv", 4)})
    path = folder / "enrolment.csv"
    path.write_bytes(path.read_bytes().replace(b"Oslo", b"Troms\xf8", 1))
    assert _rules(_check(folder)) == ["not_utf8", "sha256_mismatch"]


@pytest.mark.parametrize(
    ("record", "broken"),
    [
        ('a,"Ber""gen",c\n', False),
        ('a,"line one\nline two, and a comma",c\r\n', False),
        ('"",b,""', False),
        ('a,Ber"gen,c\n', True),
        ('a,"Ber"gen",c\n', True),
        ('a,"unclosed,c\n', True),
    ],
)
def test_the_quote_check_follows_rfc_4180(record: str, broken: bool) -> None:
    from outcomes.contracts.check import _quoting_problem

    lines = SimpleNamespace(record=record.splitlines(keepends=True))
    assert (_quoting_problem(lines) is not None) is broken  # type: ignore[arg-type]
    assert lines.record == []


def test_quoted_fields_by_rfc_4180_are_accepted(
    write_delivery: DeliveryWriter, valid_rows: RowsFactory, to_csv: CsvBytes
) -> None:
    """Quoting done right passes the quote check: a quoted field, an empty quoted field, CRLF."""
    header = load_contract().file("trial", "enrolment.csv").column_names
    lines = to_csv(valid_rows("enrolment.csv", 3), header).splitlines(keepends=True)
    lines[1] = lines[1].replace(b",Oslo,", b',"Oslo",').replace(b",,", b',"",', 1)
    lines[2] = lines[2].replace(b"\n", b"\r\n")
    report = _check(write_delivery("trial", {"enrolment.csv": b"".join(lines)}))
    assert report.file_errors == [], [v.message for v in report.file_errors]


@pytest.mark.parametrize(
    ("breakage", "line"),
    [
        # an opening quote never closed: the rest of the file is one field
        (lambda ls: [*ls[:2], ls[2].replace(b",Oslo,", b',"Oslo,'), *ls[3:]], 3),
        # text after a closing quote
        (lambda ls: [*ls[:2], ls[2].replace(b",Oslo,", b',"Os"lo,'), *ls[3:]], 3),
        # a field short
        (lambda ls: [*ls[:3], ls[3].replace(b",Oslo,", b",")], 4),
        # a blank line
        (lambda ls: [*ls[:2], b"\n", *ls[2:]], 3),
        # a bare carriage return inside an unquoted field
        (lambda ls: [*ls[:2], ls[2].replace(b",Oslo,", b",Os\rlo,"), *ls[3:]], 3),
        # a double quote inside a bare field (RFC 4180 quotes the field and doubles it)
        (lambda ls: [*ls[:3], ls[3].replace(b",Oslo,", b',Os"lo,'), *ls[4:]], 4),
        # ... also in the header
        (lambda ls: [ls[0].replace(b"site", b'si"te'), *ls[1:]], 1),
    ],
    ids=[
        "unterminated-quote",
        "text-after-quote",
        "field-count",
        "blank-line",
        "bare-cr",
        "bare-quote",
        "header-quote",
    ],
)
def test_not_parseable_csv(
    breakage: Callable[[list[bytes]], list[bytes]],
    line: int,
    write_delivery: DeliveryWriter,
    valid_rows: RowsFactory,
    to_csv: CsvBytes,
) -> None:
    header = load_contract().file("trial", "enrolment.csv").column_names
    lines = to_csv(valid_rows("enrolment.csv", 3), header).splitlines(keepends=True)
    data = b"".join(breakage(lines))
    report = _check(write_delivery("trial", {"enrolment.csv": data}))
    rules = _rules(report)
    assert "csv_parse" in rules, [v.message for v in report.file_errors]
    v = next(v for v in report.file_errors if v.rule == "csv_parse")
    assert (v.file, v.line) == ("enrolment.csv", line)
    assert f"line {line}" in v.message
    assert set(rules) <= {"csv_parse", "row_count_mismatch"}


def test_path_as_string(write_delivery: DeliveryWriter, valid_rows: RowsFactory) -> None:
    folder = write_delivery("registry", {"proms.csv": valid_rows("proms.csv")})
    assert check_delivery(str(folder)).ok


def test_object_storage_path(tmp_path: Path, write_delivery: DeliveryWriter, valid_rows: RowsFactory) -> None:
    """The checker reads through the path interface only, so an fsspec path works too."""
    upath = pytest.importorskip("upath")
    rows = valid_rows("proms.csv", 5)
    rows[3].update(item="odi_03", value="7")
    local = write_delivery("registry", {"proms.csv": rows})
    remote = upath.UPath(f"memory://landing-{tmp_path.name}/registry/20261121T0200Z")
    try:
        for name in ("proms.csv", "_manifest.json"):
            (remote / name).write_bytes((local / name).read_bytes())
        report = _check(remote)
        assert report.file_errors == []
        v = _only(report.row_violations)
        assert (v.source, v.delivery_id, v.rule, v.line) == ("registry", "20261121T0200Z", "item_range", 5)
    finally:
        remote.fs.rm(remote.path, recursive=True)


# --- privacy ------------------------------------------------------------------------------


def _all_text(report: DeliveryReport) -> str:
    return repr(report) + "".join(
        repr(dataclasses.astuple(v)) for v in report.file_errors + report.row_violations
    )


def test_fnr_is_redacted(write_delivery: DeliveryWriter, valid_rows: RowsFactory) -> None:
    assert is_synthetic(BAD_FNR)
    rows = valid_rows("proms.csv", 3)
    rows[1]["fnr"] = BAD_FNR
    report = _check(write_delivery("registry", {"proms.csv": rows}))
    v = _only(report.row_violations)
    assert v.value is None
    assert "value redacted (11 characters)" in v.message
    assert BAD_FNR not in _all_text(report)
    assert BAD_FNR[:6] not in v.message


def test_fnr_like_values_in_other_columns_are_redacted(
    write_delivery: DeliveryWriter, valid_rows: RowsFactory
) -> None:
    rows = valid_rows("checkpoints.csv", 3)
    rows[0]["participant_id"] = FNR  # a data-entry slip: the fnr in the pseudonymous ID column
    rows[1]["hours_per_week"] = FNR
    header = [*load_contract().file("employment", "checkpoints.csv").column_names, FNR]
    folder = write_delivery("employment", {"checkpoints.csv": rows}, header={"checkpoints.csv": header})
    report = _check(folder)
    assert report.file_errors and report.file_errors[0].value is None
    rows_report = _check(
        write_delivery("employment", {"checkpoints.csv": rows}, delivery_id="20261122T0200Z")
    )
    assert [v.rule for v in rows_report.row_violations] == ["enrolled_participant", "range"]
    assert all(v.value is None for v in rows_report.row_violations)
    for r in (report, rows_report):
        assert FNR not in _all_text(r)


def test_no_fnr_anywhere_in_a_broken_delivery(
    write_delivery: DeliveryWriter, valid_rows: RowsFactory
) -> None:
    rows = valid_rows("enrolment.csv", 6)
    fnrs = [r["fnr"] for r in rows]
    for r in rows:
        r.update(sex="?", birth_year="2020", fnr=r["fnr"][:10] + str((int(r["fnr"][10]) + 1) % 10))
    folder = write_delivery(
        "trial", {"enrolment.csv": rows}, edit_manifest=lambda m: m["files"][0].update(rows=99)
    )
    report = _check(folder)
    assert report.file_errors and report.row_violations
    text = _all_text(report)
    for value in fnrs + [r["fnr"] for r in rows]:
        assert value not in text


# --- RowChecker -----------------------------------------------------------------------------


def test_row_checker_parse_types(valid_row: RowFactory) -> None:
    contract = load_contract()
    enrolment = RowChecker(contract, "trial", "enrolment.csv", extracted_at=dt.date(2026, 11, 21))
    row = valid_row("enrolment.csv") | {"followup_ended_on": "2026-09-01", "followup_end_reason": "LOST"}
    values = enrolment.parse(row)
    assert values["randomised_on"] == dt.date(2026, 3, 1)
    assert values["birth_year"] == 1980
    assert values["erase"] is False
    assert values["intervention_ended_on"] is None
    assert values["followup_ended_on"] == dt.date(2026, 9, 1)
    assert values["fnr"] == row["fnr"]  # typed values keep the fnr: the loader pseudonymises it
    assert list(values) == list(contract.file("trial", "enrolment.csv").column_names)

    proms = RowChecker(contract, "registry", "proms.csv").parse(valid_row("proms.csv"))
    assert proms["value"] == 3
    assert proms["updated_at"] == dt.datetime(2026, 2, 28, 9, 0, tzinfo=dt.UTC)
    assert proms["updated_at"].utcoffset() == dt.timedelta(hours=1)
    checkpoint = RowChecker(None, "employment", "checkpoints.csv").parse(valid_row("checkpoints.csv"))
    assert checkpoint["hours_per_week"] == Decimal("20.5")
    assert checkpoint["recorded_at"].tzinfo is not None


def test_row_checker_check_and_parse(valid_row: RowFactory) -> None:
    checker = RowChecker(load_contract(), "registry", "proms.csv", delivery_id="20261121T0200Z")
    row = valid_row("proms.csv") | {"value": "x"}
    values, violations = checker.check_and_parse(row, 9)
    assert values["value"] is None and values["item"] == "odi_01"
    assert [(v.rule, v.line, v.column) for v in violations] == [("type", 9, "value")]
    assert checker.check(valid_row("proms.csv"), 2) == []
    with pytest.raises(RowInvalid) as excinfo:
        checker.parse(row)
    assert excinfo.value.violations[0].rule == "type"
    assert isinstance(excinfo.value, ValueError)


def test_row_checker_repeated_invalid_fnr(valid_row: RowFactory) -> None:
    checker = RowChecker(load_contract(), "welfare", "benefit_spells.csv")
    row = valid_row("benefit_spells.csv") | {"fnr": BAD_FNR}
    assert [v.rule for v in checker.check(row, 2)] == ["fnr_check_digits"]
    assert [v.rule for v in checker.check(row, 3)] == ["fnr_check_digits"]
    assert checker.check(valid_row("benefit_spells.csv"), 4) == []


def test_row_checker_unique_only_when_tracking(valid_row: RowFactory) -> None:
    row = valid_row("enrolment.csv")
    plain = RowChecker(load_contract(), "trial", "enrolment.csv")
    assert plain.check(row, 2) == plain.check(row, 3) == []
    tracking = RowChecker(load_contract(), "trial", "enrolment.csv", track_unique=True)
    assert tracking.check(row, 2) == []
    assert [v.rule for v in tracking.check(row, 3)] == ["unique"]


def test_row_checker_rejects_naive_extracted_at() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        RowChecker(None, "trial", "enrolment.csv", extracted_at=dt.datetime(2026, 11, 21))


def test_row_checker_unknown_file() -> None:
    with pytest.raises(KeyError, match="no file"):
        RowChecker(None, "trial", "proms.csv")


def test_a_symlink_in_the_delivery_is_refused_before_anything_is_read(
    tmp_path: Path, write_delivery: DeliveryWriter, valid_rows: RowsFactory
) -> None:
    folder = write_delivery("registry", {"proms.csv": valid_rows("proms.csv")})
    outside = tmp_path / "outside.json"
    (folder / "_manifest.json").replace(outside)
    (folder / "_manifest.json").symlink_to(outside)
    report = _check(folder)
    v = _only(report.file_errors)
    assert (v.rule, v.file) == ("symlink", "_manifest.json")
    assert "refused unread" in v.message
    assert report.manifest is None and report.rows_checked == {}  # not even the manifest was read


def test_a_file_whose_header_is_a_data_row_names_no_participant(
    write_delivery: DeliveryWriter, valid_rows: RowsFactory
) -> None:
    """The header line lost: the first data row is read as the header. Its participant ID (and
    the job IDs made from it) is never named in a problem, as a column or as a value."""
    from support.deliveries import contract_header, csv_bytes

    rows = valid_rows("enrolment.csv", 3)
    header = contract_header("enrolment.csv")
    data = csv_bytes(header, rows).split(b"\n", 1)[1]  # no header line
    report = _check(write_delivery("trial", {"enrolment.csv": data}))
    assert report.file_errors and {v.rule for v in report.file_errors} & {"header_extra_column"}
    text = _all_text(report)
    assert rows[0]["participant_id"] not in text and "a redacted name" in text
    assert rows[0]["site"] in text  # a name that says nobody is still shown, to help


def test_a_value_holding_a_participant_id_is_redacted_in_any_column(
    write_delivery: DeliveryWriter, valid_rows: RowsFactory
) -> None:
    rows = valid_rows("jobs.csv", 3)
    participant = rows[1]["participant_id"]
    rows[1]["job_type"] = f"{participant}-J1"  # a slip: an ID made from it where a type belongs
    report = _check(write_delivery("employment", {"jobs.csv": rows}))
    v = _only(report.row_violations)
    assert v.column == "job_type" and v.value is None and "value redacted" in v.message
    assert participant not in _all_text(report)
