"""An independent reference for fct_prom_scores, straight from the landing zone's CSV files.

Written from docs/definitions.md and docs/sources.md without looking at the SQL: latest item version per
(form_id, item) as of the cutoff, withdrawn forms out, registry rows linked through the enrolment's
fnr (in memory only, as the test's own fixture data), each form scored, then the nearest form per
time point and window. The dbt models must agree with it on every row.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

from outcomes.transform.seeds import eq5d_value_set

TIMEPOINTS = {0: (60, 14), 6: (45, 45), 12: (45, 45), 24: (45, 45)}


def _round(value: Decimal, places: int) -> Decimal:
    return value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


def add_months(day: dt.date, months: int) -> dt.date:
    """PostgreSQL's date + interval 'n months': the same day, clipped to the month's end."""
    month0 = day.month - 1 + months
    year, month = day.year + month0 // 12, month0 % 12 + 1
    for clip in range(day.day, 0, -1):
        try:
            return dt.date(year, month, clip)
        except ValueError:
            continue
    raise AssertionError("unreachable")


def _deliveries(landing: Path, source: str, cutoff: dt.datetime) -> list[Path]:
    found = []
    for folder in sorted((landing / source).iterdir()):
        manifest = folder / "_manifest.json"
        if not manifest.exists():
            continue
        extracted = dt.datetime.fromisoformat(json.loads(manifest.read_text())["extracted_at"])
        if extracted < cutoff:
            found.append(folder)
    return found


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8-sig") as handle:
        return list(csv.DictReader(handle))


@dataclass
class Participant:
    participant_id: str
    randomised_on: dt.date
    followup_ended_on: dt.date | None


def score(items: dict[str, int | None]) -> dict[str, Any]:
    """The scores of one form from its items (item code -> value, None = skipped)."""
    answered = {k: v for k, v in items.items() if v is not None}
    odi = [v for k, v in answered.items() if k.startswith("odi_")]
    hscl = {int(k[5:]): v for k, v in answered.items() if k.startswith("hscl_")}
    anxiety = [v for n, v in hscl.items() if n <= 10]
    depression = [v for n, v in hscl.items() if n >= 11]

    def mean(values: list[int], needed: int) -> Decimal | None:
        return _round(Decimal(sum(values)) / len(values), 2) if len(values) >= needed else None

    # the coefficients are the seed's (its values are pinned to Dolan's published states in
    # tests/transform/test_seeds.py); the formula is written here again, from the docs
    value_set = eq5d_value_set()
    eq5d = None
    if all(f"eq5d_{d}" in answered for d in value_set.decrements):
        levels = {d: answered[f"eq5d_{d}"] for d in value_set.decrements}
        worst = max(levels.values())
        index = Decimal(1) - (value_set.constant if worst >= value_set.constant_level else 0)
        index -= value_set.n3 if worst >= value_set.n3_level else 0
        for dimension, level in levels.items():
            if level > 1:
                index -= value_set.decrements[dimension][level - 2]
        eq5d = _round(index, 3)
    return {
        "odi_pct": _round(Decimal(100 * sum(odi)) / (5 * len(odi)), 1) if len(odi) >= 8 else None,
        "nrs_pain_intensity": answered.get("nrs_pain_intensity"),
        "nrs_pain_bother": answered.get("nrs_pain_bother"),
        "hscl25_total": mean(list(hscl.values()), 20),
        "hscl25_anxiety": mean(anxiety, 8),
        "hscl25_depression": mean(depression, 12),
        # total >= 1.75 on the exact mean: 4 * sum >= 7 * n
        "is_hscl25_case": (4 * sum(hscl.values()) >= 7 * len(hscl)) if len(hscl) >= 20 else None,
        "eq5d_index": eq5d,
        "eq5d_value_set": "UK_TTO_1997" if eq5d is not None else None,
        "eq5d_vas": answered.get("eq5d_vas"),
    }


def expected_prom_scores(landing: Path, as_of: dt.date) -> dict[tuple[str, int], dict[str, Any]]:
    """(participant_id, timepoint_months) -> the row fct_prom_scores must have, as of ``as_of``."""
    cutoff = dt.datetime.combine(as_of + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)

    # The trial is delivered in full: the latest extract is the truth; erased participants are gone.
    latest_trial = _deliveries(landing, "trial", cutoff)[-1]
    by_fnr: dict[str, Participant] = {}
    for row in _rows(latest_trial / "enrolment.csv"):
        if row["erase"] == "true":
            continue
        by_fnr[row["fnr"]] = Participant(
            row["participant_id"],
            dt.date.fromisoformat(row["randomised_on"]),
            dt.date.fromisoformat(row["followup_ended_on"]) if row["followup_ended_on"] else None,
        )

    # Latest version per (form_id, item): updated_at, then the later delivery, then the later line.
    latest: dict[tuple[str, str], tuple[tuple[dt.datetime, str, int], dict[str, str]]] = {}
    for folder in _deliveries(landing, "registry", cutoff):
        for line, row in enumerate(_rows(folder / "proms.csv")):
            updated = dt.datetime.fromisoformat(row["updated_at"].replace("Z", "+00:00"))
            if updated >= cutoff or dt.date.fromisoformat(row["answered_on"]) > as_of:
                continue
            key, version = (row["form_id"], row["item"]), (updated, folder.name, line)
            if key not in latest or version > latest[key][0]:
                latest[key] = (version, row)
    withdrawn = {form for (form, _), (_, row) in latest.items() if row["is_deleted"] == "true"}

    forms: dict[str, dict[str, Any]] = {}
    for (form_id, item), ((updated, _, _), row) in sorted(latest.items()):
        participant = by_fnr.get(row["fnr"])
        if form_id in withdrawn or participant is None:
            continue
        form = forms.setdefault(form_id, {"participant": participant, "items": {}, "stamps": []})
        form["items"][item] = int(row["value"]) if row["value"] else None
        form["stamps"].append((updated, item, dt.date.fromisoformat(row["answered_on"])))
    for form in forms.values():
        # the form's date: that of its most recently updated item (then the first item code)
        newest = max(stamp[0] for stamp in form["stamps"])
        form["answered_on"] = min((s for s in form["stamps"] if s[0] == newest), key=lambda s: s[1])[2]
        form["updated_at"] = newest

    expected: dict[tuple[str, int], dict[str, Any]] = {}
    for participant in by_fnr.values():
        own = [(form_id, f) for form_id, f in forms.items() if f["participant"] is participant]
        for timepoint, (before, after) in TIMEPOINTS.items():
            target = add_months(participant.randomised_on, timepoint)
            ended = participant.followup_ended_on
            candidates = [
                (abs((f["answered_on"] - target).days), form_id, f)
                for form_id, f in own
                if target - dt.timedelta(days=before) <= f["answered_on"] <= target + dt.timedelta(days=after)
                and (ended is None or f["answered_on"] <= ended)
            ]
            expected_row: dict[str, Any] = {"target_date": target, "form_id": None, "answered_on": None}
            expected_row.update(dict.fromkeys(score({}), None))
            if candidates:
                # nearest; ties: the later updated_at, then the larger form_id
                _, form_id, chosen = min(
                    candidates, key=lambda c: (c[0], -c[2]["updated_at"].timestamp(), _desc(c[1]))
                )
                expected_row.update(
                    form_id=form_id, answered_on=chosen["answered_on"], **score(chosen["items"])
                )
            expected[(participant.participant_id, timepoint)] = expected_row
    return expected


def _desc(text: str) -> tuple[int, ...]:
    return (*(-ord(c) for c in text), 1)
