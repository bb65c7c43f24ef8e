"""The synthetic source systems: contract-exact, deterministic, realistic, and privacy-safe.

Checked with the independent contract checker (``outcomes.contracts``) and with outcome numbers
computed here from the raw rows by docs/definitions.md's definitions, not by the generator's own code.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import json
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest

from outcomes.contracts import check_delivery
from outcomes.contracts.fnr import has_valid_check_digits, is_synthetic
from outcomes.contracts.registry import source_names
from outcomes.demo.sources import GenerationSummary, generate_sources

UNTIL = dt.date(2026, 11, 21)
SOURCES = source_names()
VERSION_COLUMN = {
    "enrolment.csv": None,
    "proms.csv": "updated_at",
    "benefit_spells.csv": "registered_at",
    "checkpoints.csv": "recorded_at",
    "jobs.csv": "recorded_at",
}


@pytest.fixture(scope="module")
def default(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, GenerationSummary]:
    out = tmp_path_factory.mktemp("default")
    return out, generate_sources(out, seed=42, until=UNTIL)


def deliveries(root: Path, source: str) -> list[Path]:
    return sorted(p for p in (root / source).iterdir() if p.is_dir())


def rows(delivery: Path, name: str) -> Iterator[dict[str, str]]:
    path = delivery / name
    if path.exists():
        with path.open(newline="", encoding="utf-8") as handle:
            yield from csv.DictReader(handle)


def all_rows(root: Path, source: str, name: str) -> Iterator[tuple[Path, dict[str, str]]]:
    for delivery in deliveries(root, source):
        for row in rows(delivery, name):
            yield delivery, row


def extracted_at(delivery: Path) -> dt.datetime:
    manifest = json.loads((delivery / "_manifest.json").read_text())
    return dt.datetime.fromisoformat(manifest["extracted_at"])


def tree_digest(root: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(root)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def add_months(day: dt.date, months: int) -> dt.date:
    """PostgreSQL interval arithmetic: 31 Jan + 1 month = 28/29 Feb."""
    month0 = day.month - 1 + months
    year, month = day.year + month0 // 12, month0 % 12 + 1
    for last in (31, 30, 29, 28):
        try:
            return dt.date(year, month, min(day.day, last))
        except ValueError:
            continue
    raise AssertionError("unreachable")


# --- the contract ---------------------------------------------------------------------------


def test_every_delivery_passes_the_contract_checker(default: tuple[Path, GenerationSummary]) -> None:
    root, _ = default
    enrolled: set[str] = set()
    timeline = sorted(
        ((extracted_at(d), source, d) for source in SOURCES for d in deliveries(root, source)),
        key=lambda item: (item[0], SOURCES.index(item[1])),
    )
    problems = []
    for _, source, delivery in timeline:
        if source == "trial":
            enrolled |= {row["participant_id"] for row in rows(delivery, "enrolment.csv")}
        report = check_delivery(
            delivery, enrolled_participant_ids=enrolled if source == "employment" else None
        )
        problems += [v.message for v in report.file_errors + report.row_violations]
        assert sum(report.rows_checked.values()) > 0 or source != "trial"
    assert problems == []


def test_several_deliveries_per_source_on_their_schedules(default: tuple[Path, GenerationSummary]) -> None:
    root, summary = default
    counts = {source: len(deliveries(root, source)) for source in SOURCES}
    assert counts["registry"] >= 14 and counts["employment"] >= 14  # nightly
    assert counts["welfare"] >= 3  # weekly
    assert counts["trial"] >= 2
    assert {s: c.deliveries for s, c in summary.sources.items()} == counts
    for source, hour in (("trial", 1), ("registry", 2), ("welfare", 3), ("employment", 4)):
        for delivery in deliveries(root, source):
            assert extracted_at(delivery).hour == hour
            assert extracted_at(delivery).date() <= UNTIL
    for delivery in deliveries(root, "welfare")[1:]:
        assert extracted_at(delivery).weekday() == 0  # Mondays


def test_nothing_is_dated_after_the_delivery_that_carries_it(default: tuple[Path, GenerationSummary]) -> None:
    root, _ = default
    for source in SOURCES:
        for delivery in deliveries(root, source):
            cutoff = extracted_at(delivery)
            for name, column in VERSION_COLUMN.items():
                for row in rows(delivery, name):
                    if column:
                        assert dt.datetime.fromisoformat(row[column]) <= cutoff, (delivery, name, row)
                    for key in ("randomised_on", "answered_on", "from_date", "assessed_on", "start_date"):
                        if row.get(key):
                            assert dt.date.fromisoformat(row[key]) <= cutoff.date(), (delivery, name, key)


# --- determinism ----------------------------------------------------------------------------


def test_same_seed_same_bytes_other_seed_other_bytes(
    default: tuple[Path, GenerationSummary], tmp_path: Path
) -> None:
    root, _ = default
    generate_sources(tmp_path / "again", seed=42, until=UNTIL)
    generate_sources(tmp_path / "other", seed=43, until=UNTIL)
    assert tree_digest(tmp_path / "again") == tree_digest(root)
    assert tree_digest(tmp_path / "other") != tree_digest(root)


# --- privacy --------------------------------------------------------------------------------


def test_every_fnr_is_synthetic_valid_and_one_per_person(default: tuple[Path, GenerationSummary]) -> None:
    root, _ = default
    fnr_of: dict[str, str] = {}
    for _, row in all_rows(root, "trial", "enrolment.csv"):
        assert fnr_of.setdefault(row["participant_id"], row["fnr"]) == row["fnr"]
    assert len(set(fnr_of.values())) == len(fnr_of)  # distinct people, distinct numbers
    every = set(fnr_of.values())
    every |= {row["fnr"] for _, row in all_rows(root, "registry", "proms.csv")}
    every |= {row["fnr"] for _, row in all_rows(root, "welfare", "benefit_spells.csv")}
    assert every and all(has_valid_check_digits(f) and is_synthetic(f) for f in every)


# --- shape of the trial ---------------------------------------------------------------------


def latest_enrolment(root: Path) -> dict[str, dict[str, str]]:
    last = deliveries(root, "trial")[-1]
    return {row["participant_id"]: row for row in rows(last, "enrolment.csv")}


def test_default_cohort_is_the_ips_in_pain_trial_plus_the_pilot(
    default: tuple[Path, GenerationSummary],
) -> None:
    root, summary = default
    cohort = Counter((row["study"], row["arm"]) for row in latest_enrolment(root).values())
    assert cohort == {("RCT", "IPS"): 38, ("RCT", "TAU"): 20, ("PILOT", "IPS"): 8}
    assert summary.participants == {"PILOT": {"IPS": 8}, "RCT": {"IPS": 38, "TAU": 20}}
    enrolled = latest_enrolment(root).values()
    assert all(row["erase"] == "false" for row in enrolled)
    assert any(row["intervention_ended_on"] for row in enrolled if row["study"] == "PILOT")
    reasons = Counter(row["followup_end_reason"] for row in enrolled)
    assert reasons["LOST"] + reasons["WITHDREW"] + reasons["DIED"] >= 2


def employment_within(root: Path, months: int) -> dict[tuple[str, str], tuple[int, int, int]]:
    """(study, arm) -> (employed, known, randomised) by docs/definitions.md's definition."""
    enrolment = latest_enrolment(root)
    latest_job: dict[str, tuple[str, dict[str, str]]] = {}
    for _, row in all_rows(root, "employment", "jobs.csv"):
        if row["job_id"] not in latest_job or row["recorded_at"] > latest_job[row["job_id"]][0]:
            latest_job[row["job_id"]] = (row["recorded_at"], row)
    latest_checkpoint: dict[tuple[str, str], tuple[str, dict[str, str]]] = {}
    for _, row in all_rows(root, "employment", "checkpoints.csv"):
        key = (row["participant_id"], row["checkpoint_month"])
        if key not in latest_checkpoint or row["recorded_at"] > latest_checkpoint[key][0]:
            latest_checkpoint[key] = (row["recorded_at"], row)
    starts: dict[str, list[dt.date]] = defaultdict(list)
    for _, job in latest_job.values():
        if job["is_deleted"] == "false" and job["job_type"] == "COMPETITIVE":
            starts[job["participant_id"]].append(dt.date.fromisoformat(job["start_date"]))
    for _, checkpoint in latest_checkpoint.values():
        if checkpoint["status"] == "COMPETITIVE":
            starts[checkpoint["participant_id"]].append(dt.date.fromisoformat(checkpoint["assessed_on"]))

    result: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0, 0])
    for pid, row in enrolment.items():
        r = dt.date.fromisoformat(row["randomised_on"])
        horizon = add_months(r, months)
        first = min((d for d in starts[pid] if d >= r), default=None)
        ended = dt.date.fromisoformat(row["followup_ended_on"]) if row["followup_ended_on"] else UNTIL
        observed_until = min(ended, UNTIL)
        cell = result[(row["study"], row["arm"])]
        cell[2] += 1
        if first is not None and first <= horizon:
            cell[0] += 1
            cell[1] += 1
        elif observed_until >= horizon:
            cell[1] += 1
    return {key: (v[0], v[1], v[2]) for key, v in result.items()}


def test_pilot_reproduces_the_published_course(default: tuple[Path, GenerationSummary]) -> None:
    root, _ = default
    employed = {h: employment_within(root, h)[("PILOT", "IPS")] for h in (3, 6, 12)}
    assert employed == {3: (0, 8, 8), 6: (1, 8, 8), 12: (3, 8, 8)}


def test_rct_has_the_published_shape_at_12_months(default: tuple[Path, GenerationSummary]) -> None:
    root, _ = default
    rates = employment_within(root, 12)
    ips, tau = rates[("RCT", "IPS")], rates[("RCT", "TAU")]
    ips_rate, tau_rate = ips[0] / ips[1], tau[0] / tau[1]
    assert 0.40 <= ips_rate <= 0.65, ips
    assert 0.25 <= tau_rate <= 0.50, tau
    assert ips_rate > tau_rate
    assert ips[1] < ips[2] and tau[1] < tau[2]  # some without a 12-month outcome


def test_realistic_noise_and_history(default: tuple[Path, GenerationSummary]) -> None:
    root, _ = default
    enrolled_fnrs = {row["fnr"] for row in latest_enrolment(root).values()}
    proms = [row for _, row in all_rows(root, "registry", "proms.csv")]
    outside = sum(row["fnr"] not in enrolled_fnrs for row in proms)
    assert outside > len(proms) / 2  # most registry rows are about clinic patients outside the trial
    assert any(row["value"] == "" for row in proms)  # skipped items
    assert any(row["is_deleted"] == "true" for row in proms)  # withdrawn forms

    def corrected_across_deliveries(source: str, name: str, key: tuple[str, ...]) -> int:
        seen: dict[tuple[str, ...], set[str]] = defaultdict(set)
        for delivery, row in all_rows(root, source, name):
            seen[tuple(row[k] for k in key)].add(delivery.name)
        return sum(len(ids) > 1 for ids in seen.values())

    assert corrected_across_deliveries("registry", "proms.csv", ("form_id", "item")) > 0
    assert corrected_across_deliveries("welfare", "benefit_spells.csv", ("spell_id",)) > 0
    assert corrected_across_deliveries("employment", "jobs.csv", ("job_id",)) > 0

    spells = [row for _, row in all_rows(root, "welfare", "benefit_spells.csv")]
    benefits = Counter(row["benefit"] for row in spells)
    assert {"SYKEPENGER", "AAP", "UFORETRYGD"} <= set(benefits)
    assert any(row["status"] == "ANNULLED" for row in spells)
    assert any(row["to_date"] == "" for row in spells)  # ongoing
    assert any(row["benefit"] == "SYKEPENGER" and int(row["grade_pct"]) < 100 for row in spells)

    statuses = Counter(row["status"] for _, row in all_rows(root, "employment", "checkpoints.csv"))
    assert statuses["UNREACHABLE"] > 0 and statuses["COMPETITIVE"] > 0
    jobs = [row for _, row in all_rows(root, "employment", "jobs.csv")]
    assert {"COMPETITIVE", "SHELTERED"} <= {row["job_type"] for row in jobs}
    assert any(row["is_deleted"] == "true" for row in jobs)


def test_manifests_match_the_files(default: tuple[Path, GenerationSummary]) -> None:
    root, summary = default
    total = 0
    for source in SOURCES:
        for delivery in deliveries(root, source):
            manifest = json.loads((delivery / "_manifest.json").read_text())
            assert manifest["source"] == source and manifest["delivery_id"] == delivery.name
            for entry in manifest["files"]:
                data = (delivery / entry["name"]).read_bytes()
                assert hashlib.sha256(data).hexdigest() == entry["sha256"]
                assert data.count(b"\n") - 1 == entry["rows"]  # no embedded newlines in this data
                total += entry["rows"]
    assert total == summary.total_rows


@pytest.mark.slow
def test_a_larger_cohort_keeps_to_the_contract(tmp_path: Path) -> None:
    summary = generate_sources(tmp_path, participants=2_000, seed=7, until=UNTIL)
    assert sum(summary.participants["RCT"].values()) == 2_000
    enrolled: set[str] = set()
    for source in SOURCES:
        for delivery in deliveries(tmp_path, source):
            if source == "trial":
                enrolled |= {row["participant_id"] for row in rows(delivery, "enrolment.csv")}
    for source in SOURCES:
        for delivery in deliveries(tmp_path, source):
            report = check_delivery(
                delivery, enrolled_participant_ids=enrolled if source == "employment" else None
            )
            assert report.ok, [v.message for v in (report.file_errors + report.row_violations)[:5]]
    fnrs = [row["fnr"] for row in rows(deliveries(tmp_path, "trial")[-1], "enrolment.csv")]
    assert len(set(fnrs)) == len(fnrs) == 2_008
