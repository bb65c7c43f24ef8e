"""Who is in the synthetic trials: calendar, arms, outcome plan, identities.

The published shape (docs/definitions.md) is hit exactly at the default size and proportionally at any
other, without holding a list of participants:

- RCT participant ``g`` (0 .. N-1) is randomised in order of ``g`` over two years ending 14 months
  before ``until``. Arms come from a Bresenham split of a seeded permutation of ``g``: exactly
  ``round(N * 38 / 58)`` IPS, the rest TAU, spread evenly over time. Its rank within the arm then
  goes through a second seeded permutation to a *slot* ``q``; slots ``0 .. L-1`` are lost or
  withdrawn before 12 months, the next ``E`` are employed within 12 months, the rest are not.
  ``L`` and ``E`` per arm reproduce 2 lost per arm and 19/36 vs 7/18 at N = 58.
- The pilot's eight have fixed roles (one employed between 3 and 6 months, two between 6 and
  12, one stopping IPS after a few weeks), assigned by a seeded permutation.

Everything else about a person is drawn from their own ``random.Random`` seeded by a string
(``f"{seed}:RCT:{g}"``), so one person's draws never depend on another's. The only state carried
from person to person is the fnr allocator (next free serial per birth date), bounded by the
number of distinct birth dates, not by the number of people.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass
from math import gcd

from outcomes.contracts.fnr import synthetic_capacity, synthetic_fnr
from outcomes.demo.dates import MINUTES_PER_DAY, add_months, full_years, weekday, year_of
from outcomes.demo.timing import randint

IPS, TAU = "IPS", "TAU"
PILOT, RCT = "PILOT", "RCT"
PILOT_SIZE = 8

# Outcome plan of a participant.
LOST_BEFORE_12 = "LOST_BEFORE_12"
EMPLOYED_BY_12 = "EMPLOYED_BY_12"
NOT_EMPLOYED_BY_12 = "NOT_EMPLOYED_BY_12"

#: Sites in the order participants are assigned to them, a cycle of ten (OUS takes four).
SITE_CYCLE = ("OUS", "HUS", "OUS", "STO", "OUS", "UNN", "HUS", "OUS", "SUS", "STO")
PILOT_SITE = "OUS"

#: Published shape of the IPS in Pain RCT: 38 + 20 randomised, 19/36 vs 7/18 employed (docs/definitions.md).
IPS_SHARE = 38 / 58
EMPLOYED_SHARE = {IPS: 19 / 36, TAU: 7 / 18}


@dataclass(frozen=True, slots=True)
class Calendar:
    """The study calendar relative to ``until`` (days as ordinals)."""

    until: int
    pilot_start: int
    rct_start: int
    rct_end: int
    clinic_start: int

    @classmethod
    def for_until(cls, until: int) -> Calendar:
        """Pilot ~5 years before until; RCT recruitment over 2 years ending 14 months before."""
        rct_end = add_months(until, -14)
        return cls(
            until=until,
            pilot_start=add_months(until, -62),
            rct_start=add_months(rct_end, -24),
            rct_end=rct_end,
            clinic_start=add_months(until, -72),
        )


def lost_slots(n_arm: int) -> int:
    """How many of an arm are lost or withdraw before 12 months: about 3 %, 2 of 20 or 38."""
    return min(round(0.03 * n_arm) + 1, n_arm // 10)


def _multiplier(n: int, rng: random.Random) -> int:
    """A multiplier coprime with ``n``: ``x -> (a x + c) mod n`` is then a permutation."""
    if n <= 2:
        return 1
    a = rng.randrange(2, n)
    while gcd(a, n) != 1:
        a += 1
    return a


@dataclass(frozen=True, slots=True)
class _Permutation:
    n: int
    a: int
    c: int

    @classmethod
    def seeded(cls, n: int, rng: random.Random) -> _Permutation:
        return cls(n, _multiplier(n, rng), rng.randrange(n) if n else 0)

    def __call__(self, x: int) -> int:
        return (self.a * x + self.c) % self.n


@dataclass(frozen=True, slots=True)
class Assignment:
    """Arm and outcome plan of one RCT participant."""

    arm: str
    slot: int
    arm_size: int
    outcome: str


class CohortPlan:
    """Arms and outcome slots of the RCT, and roles in the pilot; O(1) memory in N."""

    def __init__(self, participants: int, seed: int) -> None:
        rng = random.Random(f"{seed}:plan")  # noqa: S311 - synthetic data, not cryptography
        self.participants = participants
        self.n_ips = round(participants * IPS_SHARE)
        self.sizes = {IPS: self.n_ips, TAU: participants - self.n_ips}
        self._allocation = _Permutation.seeded(participants, rng)
        self._slots = {arm: _Permutation.seeded(n, rng) for arm, n in self.sizes.items()}
        self.lost = {arm: lost_slots(n) for arm, n in self.sizes.items()}
        self.employed = {
            arm: round((n - self.lost[arm]) * EMPLOYED_SHARE[arm]) for arm, n in self.sizes.items()
        }
        roles = list(range(PILOT_SIZE))
        rng.shuffle(roles)
        #: pilot index -> role: 0 employed by 6 months, 1-2 employed by 12, 3 stops IPS early.
        self.pilot_roles = {index: role for role, index in enumerate(roles)}

    def assign(self, g: int) -> Assignment:
        """Arm and outcome plan of RCT participant ``g``."""
        n, n_ips = self.participants, self.n_ips
        p = self._allocation(g)
        if (p + 1) * n_ips // n > p * n_ips // n:
            arm, rank = IPS, p * n_ips // n
        else:
            arm, rank = TAU, p - p * n_ips // n
        size = self.sizes[arm]
        slot = self._slots[arm](rank)
        if slot < self.lost[arm]:
            outcome = LOST_BEFORE_12
        elif slot < self.lost[arm] + self.employed[arm]:
            outcome = EMPLOYED_BY_12
        else:
            outcome = NOT_EMPLOYED_BY_12
        return Assignment(arm, slot, size, outcome)


def site_of(g: int, participants: int) -> tuple[str, str]:
    """Site and participant_id of RCT participant ``g``: ``OUS-001``, numbered per site."""
    block, position = divmod(g, len(SITE_CYCLE))
    site = SITE_CYCLE[position]
    per_block = SITE_CYCLE.count(site)
    number = block * per_block + SITE_CYCLE[:position].count(site) + 1
    full_blocks, rest = divmod(participants, len(SITE_CYCLE))
    site_total = full_blocks * per_block + SITE_CYCLE[:rest].count(site)
    width = max(3, len(str(site_total)))
    return site, f"{site}-{number:0{width}d}"


class FnrAllocator:
    """Distinct synthetic fnrs: the next free serial per birth date (bounded by the dates used)."""

    def __init__(self) -> None:
        self._next: dict[int, int] = {}

    def allocate(self, birth: int, earliest: int, latest: int) -> tuple[str, int]:
        """A fresh fnr for someone born on ``birth``, or the nearest day in [earliest, latest]
        that still has numbers left; returns the fnr and the birth day used."""
        for distance in range(latest - earliest + 1):
            for day in (birth + distance, birth - distance) if distance else (birth,):
                if earliest <= day <= latest:
                    serial = self._next.get(day, 0)
                    date = dt.date.fromordinal(day)
                    capacity = synthetic_capacity(date)
                    if serial < capacity:
                        self._next[day] = serial + 1
                        return synthetic_fnr(date, _spread(serial, day, capacity)), day
        raise RuntimeError("no synthetic fnr left for any birth date in range")


def _spread(serial: int, day: int, capacity: int) -> int:
    """Position ``serial`` of a fixed permutation of 0 .. capacity-1, so that the individual
    numbers of one birth date are not handed out in ascending order from 000."""
    a = next(m for m in (389, 397, 401, 409) if capacity % m)
    return (serial * a + day) % capacity


def draw_birth(rng: random.Random, on: int, youngest: int, oldest: int, mode: float) -> tuple[int, int, int]:
    """A birth day for someone aged ``youngest .. oldest`` on day ``on`` (triangular around
    ``mode``); returns the day and the allowed birth-day range (earliest, latest)."""
    earliest = add_months(on, -12 * (oldest + 1)) + 1
    latest = add_months(on, -12 * youngest)
    age = rng.triangular(youngest, oldest + 1, mode)
    birth = min(latest, max(earliest, on - int(age * 365.2425)))
    return birth, earliest, latest


@dataclass(slots=True)
class Participant:
    """One randomised participant, as the trial and the outcome generators need them."""

    number: int
    participant_id: str
    fnr: str
    study: str
    site: str
    arm: str
    sex: str
    birth_year: int
    randomised_on: int
    enrolled_at: int
    outcome: str
    intervention_ended_on: int | None = None
    intervention_recorded_at: int | None = None
    followup_ended_on: int | None = None
    followup_end_reason: str | None = None
    followup_recorded_at: int | None = None
    died_on: int | None = None
    pilot_role: int | None = None
    slot: int | None = None

    @property
    def data_end(self) -> int | None:
        """Last day with outcome data (followup_ended_on), None while follow-up goes on."""
        return self.followup_ended_on


def _weekday_on_or_after(day: int) -> int:
    wd = weekday(day)
    return day + (7 - wd if wd >= 5 else 0)


def _identity(rng: random.Random, fnrs: FnrAllocator, randomised_on: int) -> tuple[str, str, int]:
    """Sex, fnr and birth year of a participant aged 18-65 at randomisation."""
    sex = "F" if rng.random() < 0.6 else "M"
    birth, earliest, latest = draw_birth(rng, randomised_on, 18, 65, 44)
    fnr, birth = fnrs.allocate(birth, earliest, latest)
    assert 18 <= full_years(birth, randomised_on) <= 65
    return sex, fnr, year_of(birth)


def _enrolment_time(rng: random.Random, randomised_on: int) -> int:
    return randomised_on * MINUTES_PER_DAY + randint(rng, 8 * 60, 15 * 60)


def make_rct_participant(
    g: int, plan: CohortPlan, cal: Calendar, fnrs: FnrAllocator, rng: random.Random
) -> Participant:
    """RCT participant ``g`` with its randomisation date, arm, identity and follow-up end."""
    span = cal.rct_end - cal.rct_start
    n = plan.participants
    randomised = cal.rct_start + int((g + rng.random()) * span / n)
    randomised = min(_weekday_on_or_after(randomised), cal.rct_end)
    assignment = plan.assign(g)
    site, participant_id = site_of(g, n)
    sex, fnr, birth_year = _identity(rng, fnrs, randomised)
    p = Participant(
        number=PILOT_SIZE + g,
        participant_id=participant_id,
        fnr=fnr,
        study=RCT,
        site=site,
        arm=assignment.arm,
        sex=sex,
        birth_year=birth_year,
        randomised_on=randomised,
        enrolled_at=_enrolment_time(rng, randomised),
        outcome=assignment.outcome,
        slot=assignment.slot,
    )
    _plan_followup_end(p, assignment, rng)
    _plan_ips_stop(p, assignment, rng)
    return p


def make_pilot_participant(
    index: int, plan: CohortPlan, cal: Calendar, fnrs: FnrAllocator, rng: random.Random
) -> Participant:
    """Pilot participant ``index`` (0-7): all IPS, followed up for 12 months."""
    randomised = _weekday_on_or_after(cal.pilot_start + 21 * index + randint(rng, 0, 6))
    role = plan.pilot_roles[index]
    sex, fnr, birth_year = _identity(rng, fnrs, randomised)
    p = Participant(
        number=index,
        participant_id=f"PILOT-{index + 1:03d}",
        fnr=fnr,
        study=PILOT,
        site=PILOT_SITE,
        arm=IPS,
        sex=sex,
        birth_year=birth_year,
        randomised_on=randomised,
        enrolled_at=_enrolment_time(rng, randomised),
        outcome=EMPLOYED_BY_12 if role <= 2 else NOT_EMPLOYED_BY_12,
        pilot_role=role,
    )
    _end_followup(p, add_months(randomised, 12) + randint(rng, 0, 14), "COMPLETED", randint(rng, 0, 10), rng)
    if role == 3:
        stopped = randomised + randint(rng, 14, 35)
        p.intervention_ended_on = stopped
        p.intervention_recorded_at = _recorded(stopped, randint(rng, 0, 10), rng)
    return p


def _recorded(day: int, lag_days: int, rng: random.Random) -> int:
    return (day + lag_days) * MINUTES_PER_DAY + randint(rng, 8 * 60, 16 * 60)


def _end_followup(p: Participant, day: int, reason: str, lag_days: int, rng: random.Random) -> None:
    p.followup_ended_on = day
    p.followup_end_reason = reason
    p.followup_recorded_at = _recorded(day, lag_days, rng)
    if reason == "DIED":
        p.died_on = day


def _plan_followup_end(p: Participant, a: Assignment, rng: random.Random) -> None:
    """Lost/withdrawn before 12 months for the planned slots; a few events between 12 and 24
    months (the last slot of each arm always: lost in IPS, died in TAU); COMPLETED at 24 months."""
    r = p.randomised_on
    if a.outcome == LOST_BEFORE_12:
        day = r + randint(rng, 35, 320)
        if a.slot <= 1:
            reason = ("LOST", "WITHDREW")[a.slot]
        else:
            x = rng.random()
            reason = "LOST" if x < 0.65 else "WITHDREW" if x < 0.95 else "DIED"
        _end_followup(p, day, reason, randint(rng, 7, 40) if reason == "LOST" else randint(rng, 0, 14), rng)
        return
    x = rng.random()
    late = add_months(r, 12) + randint(rng, 10, 330)
    if a.slot == a.arm_size - 1 and a.arm_size > 2:
        _end_followup(p, late, "LOST" if a.arm == IPS else "DIED", randint(rng, 7, 40), rng)
    elif x < 0.03:
        _end_followup(p, late, "LOST", randint(rng, 7, 40), rng)
    elif x < 0.04:
        _end_followup(p, late, "WITHDREW", randint(rng, 0, 10), rng)
    elif x < 0.045:
        _end_followup(p, late, "DIED", randint(rng, 3, 60), rng)
    else:
        _end_followup(p, add_months(r, 24) + randint(rng, 0, 21), "COMPLETED", randint(rng, 0, 14), rng)


def _plan_ips_stop(p: Participant, a: Assignment, rng: random.Random) -> None:
    """About one IPS participant in ten stops IPS; a withdrawal ends IPS the same day."""
    if p.arm != IPS:
        return
    if p.followup_end_reason == "WITHDREW" and p.followup_ended_on is not None:
        p.intervention_ended_on = p.followup_ended_on
        p.intervention_recorded_at = p.followup_recorded_at
    elif rng.random() < 0.10 or a.slot == a.arm_size - 2:
        stop = p.randomised_on + randint(rng, 14, 300)
        if p.followup_ended_on is None or stop <= p.followup_ended_on:
            p.intervention_ended_on = stop
            p.intervention_recorded_at = _recorded(stop, randint(rng, 0, 14), rng)
