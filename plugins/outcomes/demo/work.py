"""Employment follow-up (``employment/jobs.csv`` and ``checkpoints.csv``).

First the truth: the jobs a participant holds after randomisation (:func:`plan_jobs`), placed so
the cohort plan's outcome holds (first competitive job within 12 months for the planned slots,
exactly the pilot's 0/1/3 of 8 by 3/6/12 months, nothing competitive before a loss to follow-up).
Then what the follow-up team records, with the noise of real follow-up:

- job rows: entered days to weeks after the start (sometimes late), closed by a new version
  after the end; some corrected later (hours, or a start date moved by a few days, never across
  a 3/6/12/18/24-month horizon), a few double entries deleted later (``is_deleted = true``);
- checkpoints at 0, 3, 6, 12, 18, 24 months (pilot 0-12) up to the end of follow-up: mostly
  agreeing with the job rows, some missed (no row), some ``UNREACHABLE``, some late entries,
  an occasional disagreement (a job missed, or a job that ended weeks ago still reported), and
  a few corrected later. Disagreements never move the date of first competitive employment.

Every version is stamped no earlier than the participant's first trial delivery, so an
employment delivery never names a participant the trial has not delivered yet.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from outcomes.demo.cohort import (
    EMPLOYED_BY_12,
    IPS,
    NOT_EMPLOYED_BY_12,
    PILOT,
    Participant,
)
from outcomes.demo.dates import MINUTES_PER_DAY, add_months, date_text, optional_date_text, timestamp_text
from outcomes.demo.timing import Window, increasing, randint, stamp

COMPETITIVE, SHELTERED = "COMPETITIVE", "SHELTERED"
NOT_WORKING, EDUCATION, UNREACHABLE = "NOT_WORKING", "EDUCATION", "UNREACHABLE"

#: Hours per week are kept as half-hours (integers) and written from this table: 17.5, 20, ...
HOURS_TEXT = tuple(f"{h / 2:g}" for h in range(161))
_COMPETITIVE_HALVES = (10, 15, 20, 30, 35, 40, 45, 50, 60, 75, 80)
_COMPETITIVE_WEIGHTS = (1, 1, 2, 2, 2, 3, 1, 2, 2, 2, 1)
_SHELTERED_HALVES = (10, 20, 30, 40, 50)
_SHELTERED_WEIGHTS = (1, 2, 2, 2, 1)
_HORIZON_MONTHS = (3, 6, 12, 18, 24)

Versions = list[tuple[int, tuple[str, ...]]]


@dataclass(slots=True)
class Job:
    """A job as it really was (not as recorded): end None = still held when follow-up ended."""

    start: int
    end: int | None
    competitive: bool
    halves: int


def plan_jobs(p: Participant, rng: random.Random) -> list[Job]:
    """The participant's jobs after randomisation, consistent with their outcome plan."""
    limit = p.followup_ended_on if p.followup_ended_on is not None else add_months(p.randomised_on, 25)
    jobs: list[Job] = []
    first = _first_competitive_start(p, rng)
    if first is not None and first <= limit:
        _competitive_chain(jobs, first, limit, rng)
    sheltered = _sheltered(p, first, limit, rng)
    if sheltered is not None:
        jobs.append(sheltered)
    jobs.sort(key=lambda job: job.start)
    return jobs


def first_competitive(jobs: list[Job]) -> Job | None:
    """The earliest competitive job, if any."""
    return next((job for job in jobs if job.competitive), None)


def _between(lo: int, hi: int, rng: random.Random, shape: tuple[float, float] = (1.0, 1.0)) -> int:
    return lo + int((hi - lo) * rng.betavariate(*shape))


def _first_competitive_start(p: Participant, rng: random.Random) -> int | None:
    r = p.randomised_on
    if p.pilot_role is not None:
        if p.pilot_role == 0:
            return _between(add_months(r, 3) + 5, add_months(r, 6) - 5, rng)
        if p.pilot_role in (1, 2):
            return _between(add_months(r, 6) + 5, add_months(r, 12) - 5, rng)
        return None
    if p.outcome == EMPLOYED_BY_12:
        return _between(r + 14, add_months(r, 12), rng, (1.3, 2.2) if p.arm == IPS else (2.0, 1.5))
    if p.outcome == NOT_EMPLOYED_BY_12 and rng.random() < (0.25 if p.arm == IPS else 0.18):
        lo, hi = add_months(r, 12) + 1, add_months(r, 24)
        if p.followup_ended_on is not None:
            hi = min(hi, p.followup_ended_on)
        return _between(lo, hi, rng) if lo <= hi else None
    return None


def _competitive_chain(jobs: list[Job], start: int, limit: int, rng: random.Random) -> None:
    """One to three competitive jobs from ``start``; ends after ``limit`` are never recorded."""
    for _ in range(3):
        halves = rng.choices(_COMPETITIVE_HALVES, _COMPETITIVE_WEIGHTS)[0]
        end: int | None = start + int(rng.triangular(30, 600, 180)) if rng.random() < 0.55 else None
        if end is not None and end >= limit:
            end = None
        jobs.append(Job(start, end, True, halves))
        if end is None or rng.random() >= 0.4:
            return
        start = end + randint(rng, 14, 150)
        if start > limit:
            return


def _sheltered(p: Participant, first: int | None, limit: int, rng: random.Random) -> Job | None:
    """Work training, more common in TAU, finished before any competitive job starts."""
    if rng.random() >= (0.08 if p.arm == IPS else 0.25):
        return None
    start = p.randomised_on + randint(rng, 20, 300)
    end: int | None = start + randint(rng, 60, 180)
    if first is not None and end is not None and end >= first - 7:
        if start >= first - 30:
            return None
        end = first - 7
    if start > limit:
        return None
    if end is not None and end >= limit:
        end = None
    halves = rng.choices(_SHELTERED_HALVES, _SHELTERED_WEIGHTS)[0]
    return Job(start, end, False, halves)


def _entry_lag(rng: random.Random) -> int:
    x = rng.random()
    return randint(rng, 0, 7) if x < 0.6 else randint(rng, 8, 30) if x < 0.9 else randint(rng, 31, 55)


def _horizon_side(day: int, horizons: tuple[int, ...]) -> tuple[bool, ...]:
    return tuple(day <= h for h in horizons)


def _wrong_start(job: Job, entered: int, p: Participant, rng: random.Random) -> int | None:
    """A mistyped start date on the same side of every outcome horizon, or None if there is none."""
    r = p.randomised_on
    horizons = tuple(add_months(r, m) for m in _HORIZON_MONTHS)
    side = _horizon_side(job.start, horizons)
    delta = randint(rng, 1, 10)
    for wrong in (job.start - delta, job.start + delta):
        in_order = r <= wrong <= entered and (job.end is None or wrong <= job.end)
        if in_order and _horizon_side(wrong, horizons) == side:
            return wrong
    return None


def job_versions(
    p: Participant, job: Job, number: int, rng: random.Random, window: Window, floor: int
) -> Versions:
    """Every recorded version of one job (and of a deleted double entry of it, if any)."""
    job_id = f"{p.participant_id}-J{number}"
    entered = stamp(job.start + _entry_lag(rng), rng, 8, 17)
    labelled: list[tuple[int, str]] = [(entered, "entered")]
    if job.end is not None and job.end > entered // MINUTES_PER_DAY:
        labelled.append((stamp(job.end + randint(rng, 0, 30), rng, 8, 17), "closed"))
    wrong_start: int | None = None
    wrong_halves: int | None = None
    if rng.random() < 0.08:
        wrong_start = _wrong_start(job, entered // MINUTES_PER_DAY, p, rng) if rng.random() < 0.5 else None
        if wrong_start is None:
            wrong_halves = max(10, min(80, job.halves + rng.choice((-10, -5, 5, 10))))
        labelled.append((window.correction(rng, entered, 1, 60), "fixed"))
    labelled.sort()
    stamps = increasing([ts for ts, _ in labelled], floor)
    versions: Versions = []
    fixed = False
    for ts, (_, label) in zip(stamps, labelled, strict=True):
        fixed = fixed or label == "fixed"
        start = job.start if fixed or wrong_start is None else wrong_start
        halves = job.halves if fixed or wrong_halves is None else wrong_halves
        row = _job_row(job_id, p, job, start, halves, ts, "false")
        if not versions or versions[-1][1][:6] != row[:6]:  # a clamped stamp can merge two versions
            versions.append((ts, row))
    if rng.random() < 0.03:
        versions.extend(_double_entry(p, job, number, stamps[0], rng, window))
    return versions


def _double_entry(
    p: Participant, job: Job, number: int, entered: int, rng: random.Random, window: Window
) -> Versions:
    created = entered + randint(rng, 60, 4 * MINUTES_PER_DAY)
    deleted = window.correction(rng, created, 1, 45)
    job_id = f"{p.participant_id}-J{number + 10}"
    return [
        (created, _job_row(job_id, p, job, job.start, job.halves, created, "false")),
        (deleted, _job_row(job_id, p, job, job.start, job.halves, deleted, "true")),
    ]


def _job_row(
    job_id: str, p: Participant, job: Job, start: int, halves: int, ts: int, deleted: str
) -> tuple[str, ...]:
    end = job.end if job.end is not None and job.end <= ts // MINUTES_PER_DAY else None
    kind = COMPETITIVE if job.competitive else SHELTERED
    return (
        job_id,
        p.participant_id,
        date_text(start),
        optional_date_text(end),
        kind,
        HOURS_TEXT[halves],
        timestamp_text(ts),
        deleted,
    )


def all_job_versions(
    p: Participant, jobs: list[Job], rng: random.Random, window: Window, floor: int
) -> Versions:
    """Versions of every job of ``p``, numbered J1, J2, ... by start."""
    versions: Versions = []
    for number, job in enumerate(jobs, start=1):
        versions.extend(job_versions(p, job, number, rng, window, floor))
    return versions


def _status_on(jobs: list[Job], day: int) -> tuple[str, int | None]:
    status, halves = NOT_WORKING, None
    for job in jobs:
        if job.start <= day and (job.end is None or day <= job.end):
            if job.competitive:
                return COMPETITIVE, job.halves
            status, halves = SHELTERED, job.halves
    return status, halves


def _disagree(status: str, halves: int | None, jobs: list[Job], day: int) -> tuple[str, int | None]:
    """A contact that contradicts the job rows without moving the first employment date."""
    if status == COMPETITIVE:
        return NOT_WORKING, None
    if status == NOT_WORKING:
        for job in jobs:
            if job.competitive and job.end is not None and day - 60 <= job.end < day:
                return COMPETITIVE, job.halves
    return status, halves


def _assessment_day(p: Participant, month: int, last: int, rng: random.Random) -> int:
    r, end = p.randomised_on, p.followup_ended_on
    if month == 0:
        return r
    if month == last and p.followup_end_reason == "COMPLETED" and end is not None:
        return end
    day = add_months(r, month) + int(rng.triangular(-10, 21, 2))
    return day if end is None else min(day, end)


def _recorded_day(day: int, rng: random.Random) -> int:
    x = rng.random()
    if x < 0.7:
        return day
    return day + (randint(rng, 1, 7) if x < 0.9 else randint(rng, 14, 60))


def checkpoint_versions(
    p: Participant, jobs: list[Job], rng: random.Random, window: Window, floor: int
) -> Versions:
    """Checkpoint rows (with their versions) up to the end of follow-up."""
    months = (0, 3, 6, 12) if p.study == PILOT else (0, 3, 6, 12, 18, 24)
    missed, unreachable = (0.0, 0.05) if p.study == PILOT else (0.05, 0.11)
    versions: Versions = []
    for month in months:
        if p.followup_ended_on is not None and add_months(p.randomised_on, month) > p.followup_ended_on:
            break
        day = _assessment_day(p, month, months[-1], rng)
        x = rng.random() if month else 1.0
        if x < missed:
            continue
        status, halves = _status_on(jobs, day)
        if x < unreachable:
            status, halves = UNREACHABLE, None
        elif x < unreachable + 0.03:
            status, halves = _disagree(status, halves, jobs, day)
        elif status == NOT_WORKING and rng.random() < 0.05:
            status = EDUCATION
        elif halves is not None and rng.random() < 0.15:
            halves = max(10, min(80, halves + rng.choice((-5, 5))))
        versions.extend(_checkpoint_entries(p, month, day, status, halves, rng, window, floor))
    return versions


def _checkpoint_entries(
    p: Participant,
    month: int,
    day: int,
    status: str,
    halves: int | None,
    rng: random.Random,
    window: Window,
    floor: int,
) -> Versions:
    recorded = stamp(_recorded_day(day, rng), rng, 8, 17)
    entries = [(status, halves)]
    if status != UNREACHABLE and rng.random() < 0.04:
        if halves is not None:
            entries.insert(0, (status, max(10, min(80, halves + rng.choice((-10, 10))))))
        else:
            entries.insert(0, (EDUCATION if status == NOT_WORKING else NOT_WORKING, None))
    stamps = [recorded] if len(entries) == 1 else [recorded, window.correction(rng, recorded, 1, 30)]
    month_s, day_s = str(month), date_text(day)
    return [
        (ts, (p.participant_id, month_s, day_s, s, "" if h is None else HOURS_TEXT[h], timestamp_text(ts)))
        for ts, (s, h) in zip(increasing(stamps, floor), entries, strict=True)
    ]
