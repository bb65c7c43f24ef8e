"""Welfare-benefit spells (``welfare/benefit_spells.csv``): trajectories and their versions.

A participant enters the trial on long-term sick leave, work assessment allowance (AAP),
unemployment benefit, partial disability benefit or social assistance, and the trajectory runs
on from there as Norwegian rules roughly make it: sick leave lasts at most 52 weeks and then
becomes AAP; AAP lasts about three years and may end in disability benefit (uføretrygd, 50-100 %);
unemployment benefit lasts up to two years. A competitive job changes the course: full sick leave
turns into graded sick leave (20-80 %) for a while and ends, AAP is reduced and ends, unemployment
benefit and social assistance stop; after a job ends some return to unemployment benefit or AAP.
Work training (sheltered work) of the unemployed comes with TILTAKSPENGER.

Versions: a spell is registered days after it starts with no ``to_date`` while it is still
running, and closed by a new version once it has ended; a few have the wrong grade or end date
first and are corrected later; a few people get a spurious spell that is ANNULLED later. Nothing
in a version is dated after its ``registered_at``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from outcomes.demo.dates import MINUTES_PER_DAY, date_text, optional_date_text, timestamp_text
from outcomes.demo.timing import Window, increasing, randint, stamp
from outcomes.demo.work import Job

SYKEPENGER, AAP, UFORETRYGD = "SYKEPENGER", "AAP", "UFORETRYGD"
DAGPENGER, TILTAKSPENGER, KVP, SOSIALHJELP = "DAGPENGER", "TILTAKSPENGER", "KVP", "SOSIALHJELP"

_GRADE_TEXT = tuple(str(g) for g in range(101))
_SPELL_ID_MULTIPLIER = 3_141_592_653  # coprime with 10: a bijection of 0 .. 10**10 - 1
_SPELL_ID_MODULUS = 10**10
_MAX_SPELLS = 64
#: Spell number used for the spurious spell that gets ANNULLED (trajectories stay far below it).
ANNULLED_SLOT = _MAX_SPELLS - 1

Versions = list[tuple[int, tuple[str, ...]]]


@dataclass(frozen=True, slots=True)
class Spell:
    """A benefit spell as it really was: ``end`` None = still running at the horizon."""

    benefit: str
    grade: int
    start: int
    end: int | None


def spell_id(person_number: int, k: int) -> str:
    """The welfare administration's id of a person's ``k``-th spell: a scrambled, unique number."""
    x = person_number * _MAX_SPELLS + k + 7_919
    return f"NAV{x * _SPELL_ID_MULTIPLIER % _SPELL_ID_MODULUS:010d}"


class _Trajectory:
    """Builds the spells of one person forward in time, around their competitive jobs."""

    def __init__(self, jobs: list[Job], horizon: int, rng: random.Random) -> None:
        self.jobs = [job for job in jobs if job.competitive]
        self.horizon = horizon
        self.rng = rng
        self.spells: list[Spell] = []

    def add(self, benefit: str, grade: int, start: int, end: int | None) -> None:
        if start > self.horizon or (end is not None and end < start):
            return
        if end is not None and end > self.horizon:
            end = None
        self.spells.append(Spell(benefit, grade, start, end))

    def next_job(self, day: int) -> Job | None:
        """The first competitive job starting after ``day``."""
        return next((job for job in self.jobs if job.start > day), None)

    def sick_leave(self, start: int) -> None:
        rng, last = self.rng, start + 363
        job = self.next_job(start)
        if job is not None and job.start <= last:
            self.add(SYKEPENGER, 100, start, job.start - 1)
            graded_end = min(job.start + randint(rng, 28, 150), last)
            if job.end is not None:
                graded_end = min(graded_end, job.end)
            self.add(SYKEPENGER, rng.choice((20, 40, 50, 60, 80)), job.start, graded_end)
            self.after_job(job)
        else:
            self.add(SYKEPENGER, 100, start, last)
            self.work_assessment(last + 1)

    def work_assessment(self, start: int) -> None:
        rng, last = self.rng, start + 3 * 365
        job = self.next_job(start - 1)
        if job is not None and job.start <= last:
            self.add(AAP, 100, start, job.start - 1)
            reduced_end = job.start + randint(rng, 60, 180)
            if job.end is not None:
                reduced_end = min(reduced_end, job.end)
            self.add(AAP, rng.choice((40, 50, 60)), job.start, reduced_end)
            self.after_job(job)
        elif rng.random() < 0.45:
            disability = start + randint(rng, 300, 1000)
            self.add(AAP, 100, start, disability - 1)
            self.add(UFORETRYGD, rng.choice((50, 60, 70, 80, 100, 100)), disability, None)
        else:
            self.add(AAP, 100, start, last)
            if rng.random() < 0.6:
                self.add(UFORETRYGD, rng.choice((50, 100, 100)), last + 1, None)
            else:
                self.social_assistance(last + 1)

    def unemployment(self, start: int) -> None:
        rng, last = self.rng, start + 727
        job = self.next_job(start - 1)
        if job is not None and job.start <= last:
            self.add(DAGPENGER, 100, start, job.start - 1)
            self.after_job(job)
            return
        self.add(DAGPENGER, 100, start, last)
        x = rng.random()
        if x < 0.5:
            self.social_assistance(last + 1)
        elif x < 0.8:
            self.qualification(last + 1)

    def qualification(self, start: int) -> None:
        last = start + 364
        job = self.next_job(start - 1)
        if job is not None and job.start <= last:
            self.add(KVP, 100, start, job.start - 1)
            self.after_job(job)
        else:
            self.add(KVP, 100, start, last)
            self.social_assistance(last + 1)

    def social_assistance(self, start: int) -> None:
        job = self.next_job(start - 1)
        if job is not None:
            self.add(SOSIALHJELP, 100, start, job.start - 1)
            self.after_job(job)
        else:
            self.add(SOSIALHJELP, 100, start, None)

    def partial_disability(self, start: int, randomised: int) -> None:
        rng = self.rng
        grade = rng.choice((40, 50, 60))
        if not self.jobs and rng.random() < 0.3:
            raised = randomised + randint(rng, 100, 600)
            self.add(UFORETRYGD, grade, start, raised - 1)
            self.add(UFORETRYGD, 100, raised, None)
        else:
            self.add(UFORETRYGD, grade, start, None)

    def after_job(self, job: Job) -> None:
        """After the last of a run of jobs: some claim unemployment benefit or AAP again."""
        end = job.end
        while end is not None:
            following = self.next_job(end)
            if following is None or following.start > end + 60:
                break
            end = following.end
        if end is None:
            return
        x = self.rng.random()
        if x < 0.45:
            following = self.next_job(end)
            stop = end + randint(self.rng, 60, 300)
            if following is not None:
                stop = min(stop, following.start - 1)
            self.add(DAGPENGER, 100, end + 1, stop)
            if following is not None:
                self.after_job(following)
        elif x < 0.65:
            self.work_assessment(end + 14)


def participant_spells(
    randomised: int, jobs: list[Job], horizon: int, died_on: int | None, rng: random.Random
) -> list[Spell]:
    """A participant's benefit spells from before randomisation up to ``horizon``."""
    t = _Trajectory(jobs, horizon if died_on is None else min(horizon, died_on), rng)
    x = rng.random()
    unemployed = False
    if x < 0.50:
        t.sick_leave(randomised - randint(rng, 60, 330))
    elif x < 0.80:
        start = randomised - randint(rng, 30, 720)
        t.add(SYKEPENGER, 100, start - 364, start - 1)
        t.work_assessment(start)
    elif x < 0.88:
        unemployed = True
        t.unemployment(randomised - randint(rng, 30, 330))
    elif x < 0.94:
        t.partial_disability(randomised - randint(rng, 200, 2000), randomised)
    elif x < 0.97:
        unemployed = True
        t.qualification(randomised - randint(rng, 30, 300))
    else:
        unemployed = True
        t.social_assistance(randomised - randint(rng, 30, 300))
    if unemployed:
        for job in jobs:
            if not job.competitive:
                t.add(TILTAKSPENGER, 100, job.start, job.end if job.end is not None else job.start + 90)
    return _until_death(t.spells, died_on)


def clinic_patient_spells(first_form: int, horizon: int, rng: random.Random) -> list[Spell]:
    """Some clinic patients outside the trial are on sick leave, a few go on to AAP."""
    if rng.random() >= 0.4:
        return []
    t = _Trajectory([], horizon, rng)
    start = first_form - randint(rng, 30, 200)
    end = start + randint(rng, 14, 363)
    t.add(SYKEPENGER, rng.choice((100, 100, 100, 50)), start, end)
    if end - start > 300 and rng.random() < 0.5:
        t.add(AAP, 100, end + 1, None)
    return t.spells


def _until_death(spells: list[Spell], died_on: int | None) -> list[Spell]:
    if died_on is None:
        return spells
    kept = []
    for s in spells:
        if s.start <= died_on:
            end = died_on if s.end is None or s.end > died_on else s.end
            kept.append(Spell(s.benefit, s.grade, s.start, end))
    return kept


def spell_versions(sid: str, fnr: str, spell: Spell, rng: random.Random, window: Window) -> Versions:
    """Registration, closing and correction versions of one spell."""
    registered = stamp(spell.start + randint(rng, 0, 20), rng, 6, 20)
    labelled: list[tuple[int, str]] = [(registered, "registered")]
    if spell.end is not None and spell.end > registered // MINUTES_PER_DAY:
        labelled.append((stamp(spell.end + randint(rng, 1, 20), rng, 6, 20), "closed"))
    wrong_grade = wrong_end = None
    x = rng.random()
    if x < 0.04:
        wrong_grade = 100 if spell.grade != 100 else 50
        labelled.append((window.correction(rng, registered, 2, 40), "fixed"))
    elif x < 0.07 and spell.end is not None and spell.end - spell.start > 20:
        wrong_end = spell.end - randint(rng, 1, 15)
        labelled.append((window.correction(rng, labelled[-1][0], 2, 40), "fixed"))
    labelled.sort()
    versions: Versions = []
    fixed = False
    for ts, (_, label) in zip(increasing([ts for ts, _ in labelled]), labelled, strict=True):
        fixed = fixed or label == "fixed"
        grade = spell.grade if fixed or wrong_grade is None else wrong_grade
        end = spell.end if spell.end is not None and spell.end <= ts // MINUTES_PER_DAY else None
        if end is not None and wrong_end is not None and not fixed:
            end = wrong_end
        versions.append((ts, _spell_row(sid, fnr, spell, grade, end, ts, "ACTIVE")))
    return versions


def annulled_spell_versions(sid: str, fnr: str, around: int, rng: random.Random, window: Window) -> Versions:
    """A spell registered in error and ANNULLED later (same fields, new version)."""
    start = around + randint(rng, -200, 400)
    spell = Spell(rng.choice((SOSIALHJELP, DAGPENGER)), 100, start, start + randint(rng, 14, 60))
    assert spell.end is not None
    registered = stamp(spell.end + randint(rng, 1, 15), rng, 6, 20)
    annulled = window.correction(rng, registered, 3, 60)
    return [
        (registered, _spell_row(sid, fnr, spell, 100, spell.end, registered, "ACTIVE")),
        (annulled, _spell_row(sid, fnr, spell, 100, spell.end, annulled, "ANNULLED")),
    ]


def _spell_row(
    sid: str, fnr: str, spell: Spell, grade: int, end: int | None, ts: int, status: str
) -> tuple[str, ...]:
    return (
        sid,
        fnr,
        spell.benefit,
        _GRADE_TEXT[grade],
        date_text(spell.start),
        optional_date_text(end),
        timestamp_text(ts),
        status,
    )
