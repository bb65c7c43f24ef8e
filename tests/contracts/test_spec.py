"""sources.yaml is a faithful copy of docs/sources.md, and the loader rejects malformed contracts."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from outcomes.contracts import ContractError, load_contract
from outcomes.contracts.spec import (
    DateOrderRule,
    EnumRule,
    ItemCodeRule,
    ItemRangeRule,
    NamedRule,
    NotInFutureRule,
    RangeRule,
    RegexRule,
    RequiredIffRule,
    default_contract_path,
)

# (name, type, nullable) per file, transcribed from docs/sources.md.
EXPECTED_COLUMNS = {
    ("trial", "enrolment.csv"): [
        ("participant_id", "text", False),
        ("fnr", "text", False),
        ("study", "text", False),
        ("site", "text", False),
        ("randomised_on", "date", False),
        ("arm", "text", False),
        ("sex", "text", False),
        ("birth_year", "int", False),
        ("intervention_ended_on", "date", True),
        ("followup_ended_on", "date", True),
        ("followup_end_reason", "text", True),
        ("erase", "bool", False),
    ],
    ("registry", "proms.csv"): [
        ("form_id", "text", False),
        ("fnr", "text", False),
        ("answered_on", "date", False),
        ("item", "text", False),
        ("value", "int", True),
        ("updated_at", "timestamp", False),
        ("is_deleted", "bool", False),
    ],
    ("welfare", "benefit_spells.csv"): [
        ("spell_id", "text", False),
        ("fnr", "text", False),
        ("benefit", "text", False),
        ("grade_pct", "int", False),
        ("from_date", "date", False),
        ("to_date", "date", True),
        ("registered_at", "timestamp", False),
        ("status", "text", False),
    ],
    ("employment", "checkpoints.csv"): [
        ("participant_id", "text", False),
        ("checkpoint_month", "int", False),
        ("assessed_on", "date", False),
        ("status", "text", False),
        ("hours_per_week", "decimal", True),
        ("recorded_at", "timestamp", False),
    ],
    ("employment", "jobs.csv"): [
        ("job_id", "text", False),
        ("participant_id", "text", False),
        ("start_date", "date", False),
        ("end_date", "date", True),
        ("job_type", "text", False),
        ("hours_per_week", "decimal", False),
        ("recorded_at", "timestamp", False),
        ("is_deleted", "bool", False),
    ],
}


def test_load_contract_is_cached() -> None:
    assert load_contract() is load_contract()
    assert load_contract(default_contract_path()) is load_contract()


def test_sources_and_modes() -> None:
    contract = load_contract()
    assert {s: spec.mode for s, spec in contract.sources.items()} == {
        "trial": "full",
        "registry": "incremental",
        "welfare": "incremental",
        "employment": "incremental",
    }
    assert set(contract.delivery.modes) == {"full", "incremental"}


@pytest.mark.parametrize(("source", "file"), sorted(EXPECTED_COLUMNS))
def test_columns_match_contracts_md(source: str, file: str) -> None:
    spec = load_contract().sources[source].files[file]
    assert [(c.name, c.type, c.nullable) for c in spec.columns] == EXPECTED_COLUMNS[source, file]


def test_files_per_source() -> None:
    contract = load_contract()
    files = {s: sorted(spec.files) for s, spec in contract.sources.items()}
    assert files == {
        "trial": ["enrolment.csv"],
        "registry": ["proms.csv"],
        "welfare": ["benefit_spells.csv"],
        "employment": ["checkpoints.csv", "jobs.csv"],
    }


def test_defaults() -> None:
    defaults = load_contract().defaults
    assert defaults.quarantine_threshold == pytest.approx(0.05)
    assert defaults.pending_retention_days == 120


@pytest.mark.parametrize(
    ("delivery_id", "ok"),
    [
        ("20261121T0200Z", True),
        ("20261121T0200Z-2", True),
        ("20261121T0200", False),
        ("2026-11-21T0200Z", False),
        ("20261121T0200Z-", False),
        ("20261121T0200Z\n", False),
    ],
)
def test_delivery_id_pattern(delivery_id: str, ok: bool) -> None:
    pattern = load_contract().delivery.delivery_id_pattern
    assert (re.fullmatch(pattern, delivery_id) is not None) is ok


def test_manifest_schema() -> None:
    manifest = load_contract().delivery.manifest
    assert manifest.name == "_manifest.json"
    assert [f.name for f in manifest.fields] == [
        "source",
        "delivery_id",
        "extracted_at",
        "mode",
        "files",
    ]
    assert [f.name for f in manifest.file_fields] == ["name", "rows", "sha256"]
    mode = next(f for f in manifest.fields if f.name == "mode")
    assert mode.enum == ("full", "incremental")


def test_item_codes_and_ranges() -> None:
    proms = load_contract().file("registry", "proms.csv")
    ranges = proms.item_ranges()
    assert len(ranges) == 10 + 2 + 25 + 5 + 1
    assert {ranges[f"odi_{i:02d}"] for i in range(1, 11)} == {(0, 5)}
    assert ranges["nrs_pain_intensity"] == ranges["nrs_pain_bother"] == (0, 10)
    assert {ranges[f"hscl_{i:02d}"] for i in range(1, 26)} == {(1, 4)}
    eq5d = ["eq5d_mobility", "eq5d_selfcare", "eq5d_activities", "eq5d_pain", "eq5d_anxiety"]
    assert {ranges[c] for c in eq5d} == {(1, 3)}
    assert ranges["eq5d_vas"] == (0, 100)
    hscl = [it for it in proms.items if it.instrument.startswith("Hopkins")]
    assert [(it.subscale, len(it.codes)) for it in hscl] == [("anxiety", 10), ("depression", 15)]


def test_column_rules() -> None:
    contract = load_contract()
    enrolment = contract.file("trial", "enrolment.csv")
    pid = enrolment.column("participant_id")
    assert RegexRule(r"^[A-Z]{2,6}-\d{3,6}$") in pid.rules
    assert pid.has_rule("unique")
    assert enrolment.column("fnr").rules == (NamedRule("fnr_check_digits"),)
    assert enrolment.column("study").rules == (EnumRule(("PILOT", "RCT")),)
    assert enrolment.column("randomised_on").rules == (NotInFutureRule(),)
    (birth,) = enrolment.column("birth_year").rules
    assert isinstance(birth, RangeRule)
    assert birth.describe() == "1900..year(randomised_on) - 16"
    assert enrolment.column("followup_ended_on").rules == (DateOrderRule(">=", "randomised_on"),)
    reason = enrolment.column("followup_end_reason").rules
    assert RequiredIffRule("followup_ended_on") in reason
    assert EnumRule(("COMPLETED", "LOST", "WITHDREW", "DIED")) in reason

    proms = contract.file("registry", "proms.csv")
    assert proms.column("item").rules == (ItemCodeRule("items"),)
    assert proms.column("value").rules == (ItemRangeRule("items", "item"),)

    hours = contract.file("employment", "checkpoints.csv").column("hours_per_week")
    rng, iff = hours.rules
    assert isinstance(rng, RangeRule) and rng.exclusive_min and not rng.exclusive_max
    assert rng.describe() == "0 < value <= 80"
    assert iff == RequiredIffRule("status", ("COMPETITIVE", "SHELTERED"))
    months = contract.file("employment", "checkpoints.csv").column("checkpoint_month")
    assert months.rules == (EnumRule((0, 3, 6, 12, 18, 24)),)
    welfare = contract.file("welfare", "benefit_spells.csv")
    assert welfare.column("to_date").rules == (DateOrderRule(">=", "from_date"),)
    assert contract.file("trial", "enrolment.csv").required


def _write_variant(tmp_path: Path, old: str, new: str) -> Path:
    text = default_contract_path().read_text(encoding="utf-8")
    assert old in text
    path = tmp_path / "sources.yaml"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("old", "new", "complaint"),
    [
        ("rules: [fnr_check_digits]", "rules: [fnr_checksum]", "unknown named rule"),
        ('date_order: ">= randomised_on"', 'date_order: ">= randomized_on"', "unknown column"),
        ("type: bool", "type: boolean", "unknown type"),
        ("mode: full", "mode: snapshot", "unknown mode"),
        ("- enum: [PILOT, RCT]", "- oneof: [PILOT, RCT]", "unknown rule kind"),
    ],
)
def test_malformed_contract_is_rejected(tmp_path: Path, old: str, new: str, complaint: str) -> None:
    with pytest.raises(ContractError, match=complaint):
        load_contract(_write_variant(tmp_path, old, new))
