"""Deterministic synthetic source systems: ``trial``, ``registry``, ``welfare``, ``employment``.

:func:`generate_sources` writes, under ``out``, the delivery history of the four source systems of
``docs/sources.md`` as they would have delivered it up to ``until``: a backlog delivery per source at
``until - history_days``, then nightly (registry, employment), weekly on Mondays (welfare) and
weekly back from ``until`` (trial, mode ``full``) deliveries. See :mod:`outcomes.demo.deliveries`
for the schedule and the routing rule (a version goes to the first delivery extracted at or after
its version timestamp; later versions are not extracted yet).

The shape follows the IPS in Pain trial and its pilot (docs/definitions.md; :mod:`outcomes.demo.cohort`):
``participants`` randomised ~2:1 to IPS or TAU (38 + 20 by default) with 19/36 vs 7/18 employed
within 12 months among those with a 12-month outcome, plus the 8-person pilot; around them, about
1.5 clinic patients per participant who are not in the trial but fill in the registry's forms.

Determinism: every person draws from their own ``random.Random`` seeded by a string
(``"42:RCT:17"``, ``"42:CLINIC:17:1"``), people are generated in a fixed order, and nothing reads
the clock, the locale or hash order. Same arguments, same bytes.

Memory: people are generated one at a time and their rows written straight into the delivery
files (buffered, hashed and counted on the way, :class:`~outcomes.demo.deliveries.CsvSink`). What
survives from one person to the next is bounded by the number of delivery files and of distinct
dates, never by the number of participants, so a million participants stream in constant memory.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from outcomes.demo import benefits, questionnaires, work
from outcomes.demo.cohort import (
    IPS,
    PILOT,
    PILOT_SIZE,
    RCT,
    TAU,
    Calendar,
    CohortPlan,
    FnrAllocator,
    Participant,
    draw_birth,
    make_pilot_participant,
    make_rct_participant,
)
from outcomes.demo.dates import date_text, optional_date_text
from outcomes.demo.deliveries import (
    EMPLOYMENT,
    REGISTRY,
    SOURCES,
    TRIAL,
    WELFARE,
    SourceOutput,
    buffer_limit,
    delivery_days,
)
from outcomes.demo.timing import Window, randint

#: ``progress(done, total)`` is called after every this many participants (and at the end).
PROGRESS_EVERY = 2000
#: Welfare trajectories are drawn up to this many days after ``until`` (later versions are not
#: extracted anyway; this only bounds the work).
WELFARE_HORIZON_DAYS = 30


@dataclass(frozen=True)
class SourceCounts:
    """What was written for one source."""

    deliveries: int
    rows: int
    rows_by_file: dict[str, int]


@dataclass(frozen=True)
class GenerationSummary:
    """The outcome of :func:`generate_sources`: counts only (cheap at any size) and the paths."""

    out: Path
    seed: int
    until: dt.date
    history_days: int
    sources: dict[str, SourceCounts]
    participants: dict[str, dict[str, int]]
    non_trial_patients: int
    paths: tuple[Path, ...]

    @property
    def total_rows(self) -> int:
        """Data rows written over all sources and deliveries."""
        return sum(counts.rows for counts in self.sources.values())

    def describe(self) -> str:
        """A few plain lines for a console."""
        people = ", ".join(
            f"{study} " + " + ".join(f"{n} {arm}" for arm, n in arms.items())
            for study, arms in self.participants.items()
        )
        lines = [
            f"synthetic deliveries in {self.out} (seed {self.seed}, until {self.until.isoformat()}, "
            f"{self.history_days} nights of history)",
            f"  participants: {people}; clinic patients outside the trial: {self.non_trial_patients:,}",
        ]
        for source, counts in self.sources.items():
            files = ", ".join(f"{name} {rows:,}" for name, rows in counts.rows_by_file.items())
            lines.append(
                f"  {source:<10} {counts.deliveries:>3} deliveries, {counts.rows:>12,} rows ({files})"
            )
        return "\n".join(lines)


def generate_sources(
    out: Path,
    *,
    participants: int = 58,
    seed: int = 42,
    until: dt.date,
    history_days: int = 14,
    progress: Callable[[int, int], None] | None = None,
) -> GenerationSummary:
    """Write the synthetic delivery history of all four sources under ``out``; see the module doc.

    ``participants`` are randomised in the RCT (the 8-person pilot is always added); ``until`` is
    the last day of the history; ``progress(done, total)`` is called every few thousand
    participants. Existing deliveries with the same ids are overwritten.
    """
    if participants < 0:
        raise ValueError("participants must be >= 0")
    if history_days < 0:
        raise ValueError("history_days must be >= 0")
    if isinstance(until, dt.datetime):
        until = until.date()
    out = Path(out)
    last_day = until.toordinal()
    generator = _Generator(out, participants, seed, last_day, last_day - history_days)
    total = participants + PILOT_SIZE
    for index in range(PILOT_SIZE):
        generator.pilot(index)
    for g in range(participants):
        generator.rct(g)
        done = PILOT_SIZE + g + 1
        if progress is not None and done % PROGRESS_EVERY == 0:
            progress(done, total)
    summary = generator.finish(until, history_days)
    if progress is not None:
        progress(total, total)
    return summary


class _Generator:
    """Holds the open deliveries and the few bounded caches while people are generated."""

    def __init__(self, out: Path, participants: int, seed: int, until: int, start: int) -> None:
        self.out = out
        self.seed = seed
        self.cal = Calendar.for_until(until)
        self.plan = CohortPlan(participants, seed)
        self.fnrs = FnrAllocator()
        days = {spec.name: delivery_days(spec, start, until) for spec in SOURCES}
        n_files = sum(len(days[spec.name]) * len(spec.files) for spec in SOURCES)
        limit = buffer_limit(n_files)
        self.outputs = {spec.name: SourceOutput(spec, out, days[spec.name], limit) for spec in SOURCES}
        self.trial = self.outputs[TRIAL.name]
        self.registry = self.outputs[REGISTRY.name]
        self.welfare = self.outputs[WELFARE.name]
        self.employment = self.outputs[EMPLOYMENT.name]
        self.windows = {
            name: Window(output.backlog_extracted, output.last_extracted)
            for name, output in self.outputs.items()
        }
        self.counts: dict[str, dict[str, int]] = {PILOT: {IPS: 0}, RCT: {IPS: 0, TAU: 0}}
        self.non_trial = 0

    def _rng(self, *key: object) -> random.Random:
        return random.Random(":".join(str(part) for part in (self.seed, *key)))  # noqa: S311 - not crypto

    def pilot(self, index: int) -> None:
        rng = self._rng(PILOT, index)
        self.participant(make_pilot_participant(index, self.plan, self.cal, self.fnrs, rng), rng)

    def rct(self, g: int) -> None:
        rng = self._rng(RCT, g)
        self.participant(make_rct_participant(g, self.plan, self.cal, self.fnrs, rng), rng)

    def participant(self, p: Participant, rng: random.Random) -> None:
        """Every source's records of one participant, then their clinic neighbours."""
        self.counts[p.study][p.arm] += 1
        jobs = work.plan_jobs(p, rng)
        first = work.first_competitive(jobs)
        self._enrolment(p, self._birth_year_typo(p, rng))
        window = self.windows[REGISTRY.name]
        self._forms(questionnaires.participant_forms(p, None if first is None else first.start, rng, window))
        horizon = self.cal.until + WELFARE_HORIZON_DAYS
        spells = benefits.participant_spells(p.randomised_on, jobs, horizon, p.died_on, rng)
        annulled = p.died_on is None and (rng.random() < 0.02 or p.slot == 3)
        self._spells(p.number, p.fnr, spells, p.randomised_on if annulled else None, rng)
        self._employment(p, jobs, rng)
        self._clinic_patients(p.number)

    def _birth_year_typo(self, p: Participant, rng: random.Random) -> tuple[int, int] | None:
        """Some eCRF entries carry a mistyped birth year (one off, still valid), fixed later:
        the wrong year and when the fix was entered. Slot 2 of each RCT arm always has one, fixed
        within the recent history, so that the weekly full deliveries differ at any size."""
        window = self.windows[TRIAL.name]
        forced = window.recent(rng) if p.slot == 2 else None
        if forced is None and rng.random() >= 0.06:
            return None
        fixed_at = forced if forced is not None else window.correction(rng, p.enrolled_at, 3, 90)
        return p.birth_year + rng.choice((-1, 1)), fixed_at

    def _enrolment(self, p: Participant, typo: tuple[int, int] | None) -> None:
        """The participant's row, as known then, in every trial delivery after randomisation."""
        first = self.trial.index_for(p.enrolled_at)
        if first is None:
            return
        sinks = self.trial.sinks["enrolment.csv"]
        base = (p.participant_id, p.fnr, p.study, p.site, date_text(p.randomised_on), p.arm, p.sex)
        for i in range(first, len(sinks)):
            extracted = self.trial.extracted[i]
            birth_year = typo[0] if typo is not None and typo[1] > extracted else p.birth_year
            stopped = _known(p.intervention_ended_on, p.intervention_recorded_at, extracted)
            ended = _known(p.followup_ended_on, p.followup_recorded_at, extracted)
            reason = p.followup_end_reason if ended is not None and p.followup_end_reason else ""
            sinks[i].write_one(
                (
                    *base,
                    str(birth_year),
                    optional_date_text(stopped),
                    optional_date_text(ended),
                    reason,
                    "false",
                )
            )

    def _forms(self, versions: questionnaires.FormVersions) -> None:
        for ts, text, rows in versions:
            self.registry.route_lines("proms.csv", ts, text, rows)

    def _spells(
        self,
        number: int,
        fnr: str,
        spells: list[benefits.Spell],
        annulled_near: int | None,
        rng: random.Random,
    ) -> None:
        """The versions of a person's spells, plus a spell ANNULLED later if ``annulled_near``."""
        window = self.windows[WELFARE.name]
        for k, spell in enumerate(spells):
            for ts, row in benefits.spell_versions(benefits.spell_id(number, k), fnr, spell, rng, window):
                self.welfare.route_one("benefit_spells.csv", ts, row)
        if annulled_near is not None:
            sid = benefits.spell_id(number, benefits.ANNULLED_SLOT)
            for ts, row in benefits.annulled_spell_versions(sid, fnr, annulled_near, rng, window):
                self.welfare.route_one("benefit_spells.csv", ts, row)

    def _employment(self, p: Participant, jobs: list[work.Job], rng: random.Random) -> None:
        """Jobs and checkpoints, stamped no earlier than the participant's first trial delivery."""
        floor = self._employment_floor(p)
        if floor is None:
            return
        window = self.windows[EMPLOYMENT.name]
        for ts, row in work.all_job_versions(p, jobs, rng, window, floor):
            self.employment.route_one("jobs.csv", ts, row)
        for ts, row in work.checkpoint_versions(p, jobs, rng, window, floor):
            self.employment.route_one("checkpoints.csv", ts, row)

    def _employment_floor(self, p: Participant) -> int | None:
        """The earliest version stamp whose employment delivery comes after the participant's
        first trial delivery (0 when any will do), or None if no employment delivery does."""
        first = self.trial.index_for(p.enrolled_at)
        if first is None:
            return None
        i = self.employment.index_for(self.trial.extracted[first])
        if i is None:
            return None
        return self.employment.extracted[i - 1] + 1 if i > 0 else 0

    def _clinic_patients(self, k: int) -> None:
        """One or two clinic patients outside the trial per participant (1.5 on average)."""
        rng = self._rng("CLINIC", k, 0)
        count = 2 if rng.random() < 0.5 else 1
        for j in range(count):
            number = questionnaires.NON_TRIAL_BASE + 2 * k + j
            self._clinic_patient(number, rng if j == 0 else self._rng("CLINIC", k, j))

    def _clinic_patient(self, number: int, rng: random.Random) -> None:
        """A registry patient outside the trial: own fnr, 1-3 forms, maybe a sick-leave spell."""
        cal = self.cal
        first_form = randint(rng, cal.clinic_start, cal.until)
        birth, earliest, latest = draw_birth(rng, first_form, 18, 80, 46)
        fnr, _ = self.fnrs.allocate(birth, earliest, latest)
        self.non_trial += 1
        window = self.windows[REGISTRY.name]
        self._forms(questionnaires.clinic_patient_forms(number, fnr, first_form, cal, rng, window))
        spells = benefits.clinic_patient_spells(first_form, cal.until + WELFARE_HORIZON_DAYS, rng)
        annulled = bool(spells) and rng.random() < 0.02
        self._spells(number, fnr, spells, first_form if annulled else None, rng)

    def finish(self, until: dt.date, history_days: int) -> GenerationSummary:
        """Close every file, write the manifests (last), and summarise."""
        sources: dict[str, SourceCounts] = {}
        paths: list[Path] = []
        for name, output in self.outputs.items():
            entries = output.finish()
            by_file = {file: sum(e[i].rows for e in entries) for i, (file, _) in enumerate(output.spec.files)}
            sources[name] = SourceCounts(len(entries), sum(by_file.values()), by_file)
            paths.extend(output.directories)
        return GenerationSummary(
            out=self.out,
            seed=self.seed,
            until=until,
            history_days=history_days,
            sources=sources,
            participants={study: dict(arms) for study, arms in self.counts.items()},
            non_trial_patients=self.non_trial,
            paths=tuple(paths),
        )


def _known(day: int | None, recorded_at: int | None, extracted: int) -> int | None:
    """``day`` if it had been recorded by ``extracted``, else None."""
    if day is None or recorded_at is None or recorded_at > extracted:
        return None
    return day
