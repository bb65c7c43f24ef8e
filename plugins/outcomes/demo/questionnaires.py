"""Pain-registry questionnaires (``registry/proms.csv``): item-level forms, corrections, withdrawals.

A person has a latent severity (standard normal); each form shifts it by the improvement since
baseline (more in IPS, more once employed) plus form-level noise, and each of the 43 items is drawn
around its own mean for that severity. To keep the hot loop cheap (most rows of the whole demo
are registry items) an item draw is one ``getrandbits(16)``: the high byte decides whether the
item is skipped (the form's skip rate), the low byte picks one of 256 normal quantiles from a
precomputed table of value strings for the item's scale and (discretised) mean.

Versions: most forms are written once. Some are corrected later (1-3 items get a new value under a
later ``updated_at``; the first version carried the wrong one); a few are double submissions that
the registry withdraws later (every item of the duplicate again with ``is_deleted = true``).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from statistics import NormalDist

from outcomes.demo.cohort import IPS, PILOT, Calendar, Participant
from outcomes.demo.dates import add_months, date_text, timestamp_text
from outcomes.demo.timing import Window, randint, stamp

#: Versions of forms: (updated_at, CSV lines, number of lines).
FormVersions = list[tuple[int, str, int]]

_QUANTILES = tuple(NormalDist().inv_cdf((i + 0.5) / 256) for i in range(256))
_VALUE_TEXT = tuple(str(v) for v in range(101))


class _Scale:
    """Value range of an instrument's items, with lazily built tables of 256 quantile draws."""

    __slots__ = ("_tables", "hi", "lo", "origin", "sd", "step")

    def __init__(self, lo: int, hi: int, sd: float, step: float) -> None:
        self.lo, self.hi, self.sd, self.step = lo, hi, sd, step
        self.origin = lo - 2.0
        self._tables: list[tuple[str, ...] | None] = [None] * (int((hi - lo + 4) / step) + 1)

    def table(self, mean: float) -> tuple[str, ...]:
        """The 256 value strings of an item whose mean is ``mean`` (discretised to ``step``)."""
        tables = self._tables
        b = min(len(tables) - 1, max(0, int((mean - self.origin) / self.step)))
        found = tables[b]
        if found is None:
            centre = self.origin + (b + 0.5) * self.step
            lo, hi, sd = self.lo, self.hi, self.sd
            found = tables[b] = tuple(
                _VALUE_TEXT[min(hi, max(lo, int(centre + sd * z + 0.5)))] for z in _QUANTILES
            )
        return found


_ODI = _Scale(0, 5, 0.8, 0.05)
_NRS = _Scale(0, 10, 1.1, 0.1)
_HSCL = _Scale(1, 4, 0.55, 0.05)
_EQ5D = _Scale(1, 3, 0.45, 0.05)
_VAS = _Scale(0, 100, 8.0, 1.0)

#: (item code, scale, mean at severity 0, change of the mean per unit of severity)
ITEMS: tuple[tuple[str, _Scale, float, float], ...] = (
    *(
        (f"odi_{i + 1:02d}", _ODI, 1.9 + offset, 0.6)
        for i, offset in enumerate((0.3, -0.8, 0.6, 0.0, 0.2, 0.4, 0.0, 0.1, 0.2, 0.0))
    ),
    ("nrs_pain_intensity", _NRS, 6.2, 1.3),
    ("nrs_pain_bother", _NRS, 6.5, 1.4),
    *((f"hscl_{i + 1:02d}", _HSCL, 1.9 + ((i * 37) % 7 - 3) * 0.08, 0.4) for i in range(25)),
    ("eq5d_mobility", _EQ5D, 1.8, 0.3),
    ("eq5d_selfcare", _EQ5D, 1.25, 0.25),
    ("eq5d_activities", _EQ5D, 2.0, 0.3),
    ("eq5d_pain", _EQ5D, 2.35, 0.25),
    ("eq5d_anxiety", _EQ5D, 1.7, 0.35),
    ("eq5d_vas", _VAS, 48.0, -14.0),
)
ITEM_CODES = tuple(code for code, *_ in ITEMS)
_CODE_FIELDS = tuple(f"{code}," for code in ITEM_CODES)
_ALL_ITEMS = range(len(ITEMS))

_SEVERITY_MIN, _SEVERITY_STEP = -5.0, 0.02
_BY_SEVERITY: list[tuple[tuple[str, ...], ...] | None] = [None] * 501

_FORM_ID_MODULUS = 10**10
_FORM_ID_MULTIPLIER = 7_177_162_611  # coprime with 10: a bijection of 0 .. 10**10 - 1
_ID_OFFSET = 104_729
#: Person numbers of non-trial clinic patients start here (participants are numbered from 0).
NON_TRIAL_BASE = 10**8

#: Improvement of severity (SD units) by month since randomisation, and per arm.
_MONTH_FACTOR = {0: 0.0, 6: 0.7, 12: 1.0, 24: 1.1}
_ARM_IMPROVEMENT = {IPS: 0.45, "TAU": 0.30}
_MISSING = {0: 0.05, 6: 0.08, 12: 0.10, 24: 0.15}


def form_id(person_number: int, slot: int) -> str:
    """The registry's id of a person's ``slot``-th form (0-7): a scrambled, unique number."""
    x = person_number * 8 + slot + _ID_OFFSET
    return f"F{x * _FORM_ID_MULTIPLIER % _FORM_ID_MODULUS:010d}"


def _skip_threshold(rng: random.Random) -> int:
    """A form's skip rate in 1/256: mostly ~1 %, sometimes ~5 %, rarely a third (unscorable)."""
    x = rng.random()
    return 3 if x < 0.80 else 13 if x < 0.96 else 90


def _form_tables(severity: float) -> tuple[tuple[str, ...], ...]:
    """The value tables of all 43 items at ``severity`` (discretised to 0.02 SD, cached)."""
    b = min(len(_BY_SEVERITY) - 1, max(0, round((severity - _SEVERITY_MIN) / _SEVERITY_STEP)))
    found = _BY_SEVERITY[b]
    if found is None:
        level = _SEVERITY_MIN + b * _SEVERITY_STEP
        found = _BY_SEVERITY[b] = tuple(scale.table(base + slope * level) for _, scale, base, slope in ITEMS)
    return found


def draw_values(severity: float, rng: random.Random) -> list[str]:
    """The 43 item values ("" = skipped) of one form at ``severity``: one 16-bit draw per item."""
    skip = _skip_threshold(rng)
    bits = rng.getrandbits
    return ["" if (r := bits(16)) >> 8 < skip else table[r & 255] for table in _form_tables(severity)]


def _wrong(value: str, scale: _Scale) -> str:
    if value == "":
        return _VALUE_TEXT[(scale.lo + scale.hi) // 2]
    v = int(value)
    return _VALUE_TEXT[v + 1 if v < scale.hi else v - 1]


def form_versions(
    fid: str, fnr: str, day: int, severity: float, rng: random.Random, window: Window, duplicate_id: str
) -> FormVersions:
    """All versions of one submitted form: the original, maybe a correction, maybe a withdrawn
    duplicate submission (its creation and its withdrawal)."""
    values = draw_values(severity, rng)
    ts = stamp(day, rng)
    day_s = date_text(day)
    first = list(values)
    x = rng.random()
    corrected: list[int] = []
    if x < 0.03:
        corrected = sorted(rng.sample(range(len(ITEMS)), randint(rng, 1, 3)))
        for i in corrected:
            first[i] = _wrong(values[i], ITEMS[i][1])
    versions: FormVersions = [_lines(fid, fnr, day_s, _ALL_ITEMS, first, ts, "false")]
    if corrected:
        fix = window.correction(rng, ts, 1, 60)
        versions.append(_lines(fid, fnr, day_s, corrected, values, fix, "false"))
    elif x > 0.985:
        dup = ts + randint(rng, 2, 180)
        gone = window.correction(rng, dup, 1, 30)
        versions.append(_lines(duplicate_id, fnr, day_s, _ALL_ITEMS, values, dup, "false"))
        versions.append(_lines(duplicate_id, fnr, day_s, _ALL_ITEMS, values, gone, "true"))
    return versions


def _lines(
    fid: str, fnr: str, day_s: str, items: Sequence[int], values: Sequence[str], ts: int, deleted: str
) -> tuple[int, str, int]:
    """One version of (some items of) a form as CSV lines. Every field is digits, an item code,
    an ISO date or time or a boolean, so none needs quoting and plain joining is valid RFC 4180."""
    prefix = f"{fid},{fnr},{day_s},"
    suffix = f",{timestamp_text(ts)},{deleted}\n"
    text = "".join([f"{prefix}{_CODE_FIELDS[i]}{values[i]}{suffix}" for i in items])
    return ts, text, len(items)


def _baseline_day(r: int, rng: random.Random) -> int:
    """Baseline: often 1-30 days before randomisation, often the day before, some on or after."""
    x = rng.random()
    if x < 0.2:
        return r - 1
    if x < 0.75:
        return r - randint(rng, 2, 30)
    if x < 0.9:
        return r
    return r + randint(rng, 1, 10)


def participant_forms(
    p: Participant, first_job: int | None, rng: random.Random, window: Window
) -> FormVersions:
    """Forms at 0, 6, 12 (and 24 in the RCT) months, within their windows, none after follow-up."""
    latent = rng.gauss(0.0, 1.0)
    response = rng.gauss(0.0, 0.3)
    months = (0, 6, 12) if p.study == PILOT else (0, 6, 12, 24)
    r, end = p.randomised_on, p.followup_ended_on
    versions: FormVersions = []
    for slot, month in enumerate(months):
        missing = rng.random() < _MISSING[month]
        if month == 0:
            day = _baseline_day(r, rng)
        else:
            target = add_months(r, month)
            day = target + int(rng.triangular(-25, 40, 3))
            if end is not None and day > end:
                if target > end:
                    break
                day = end
        if missing or (end is not None and day > end):
            continue
        improvement = (_ARM_IMPROVEMENT[p.arm] + response) * _MONTH_FACTOR[month]
        if first_job is not None and first_job <= day:
            improvement += 0.35
        severity = latent - improvement + rng.gauss(0.0, 0.25)
        fid, dup = form_id(p.number, slot), form_id(p.number, slot + 4)
        versions.extend(form_versions(fid, p.fnr, day, severity, rng, window, dup))
        if month > 0:
            versions.extend(_stray_forms(p, fid, month, severity, window))
    return versions


def _stray_forms(p: Participant, fid: str, month: int, severity: float, window: Window) -> FormVersions:
    """What makes the time-point choice matter: now and then a second answer to a reminder a few
    days later (inside the window: the nearer one counts), or an extra form answered too late for
    the window (it must not count). Drawn from their own generator (seeded by the form id and fnr), so
    they do not shift any other draw of the demo."""
    rng = random.Random(f"{fid}:{p.fnr}")  # noqa: S311 - synthetic data, not cryptography
    x = rng.random()
    if x >= 0.10:
        return []
    target, end = add_months(p.randomised_on, month), p.followup_ended_on
    day = target + (rng.randint(-40, 40) if x < 0.06 else rng.choice((-1, 1)) * rng.randint(46, 75))
    if end is not None and day > end:
        return []
    return form_versions(f"{fid}R", p.fnr, day, severity + rng.gauss(0.0, 0.25), rng, window, f"{fid}D")


def clinic_patient_forms(
    number: int, fnr: str, first_day: int, cal: Calendar, rng: random.Random, window: Window
) -> FormVersions:
    """A non-trial clinic patient: a first form, then maybe 6- and 12-month follow-ups (1-3 forms)."""
    latent = rng.gauss(0.0, 1.0)
    versions: FormVersions = []
    for slot, (month, chance, gain) in enumerate(((0, 1.0, 0.0), (6, 0.95, 0.2), (12, 0.85, 0.3))):
        if rng.random() >= chance:
            break
        day = first_day if month == 0 else add_months(first_day, month) + int(rng.triangular(-20, 40, 3))
        if day > cal.until:
            break
        severity = latent - gain + rng.gauss(0.0, 0.3)
        fid, dup = form_id(number, slot), form_id(number, slot + 4)
        versions.extend(form_versions(fid, fnr, day, severity, rng, window, dup))
    return versions
