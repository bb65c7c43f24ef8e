"""Every count a study's part of the dashboard prints, as one disclosure-control grid
(``outcomes.dashboard.disclosure``): what is printed, what those numbers imply, how they add up.

Per arm, the page prints and relates (docs/reliability.md lists the same):

- randomised = known at each horizon + not known (employment table; "analysed" in the CONSORT
  flow is the same count); known = employed + not employed; employed within a horizon = employed
  within the one before + newly employed; known at a horizon = known at the next + no longer known;
- randomised = stopped the intervention + did not; = lost by 12 (24) months + not lost; lost by 24
  months = lost by 12 + lost between;
- observed in month m = the sum of its work-participation states; randomised = observed + not;
- randomised = employed within a horizon + not employed or not known (the intention-to-treat
  rate's rest); observed in a month = in a state + everyone else;
- randomised = scored on a questionnaire at a time point + not scored;
- the baseline table (Table 1): randomised = with a value of a characteristic + without; with a
  value = the sum of its categories; with a value = a category + everyone else (a baseline
  score's "with a value" is the questionnaire table's scored at month 0: the same count);
- the lock's known and employed (when the page compares a lock) against the same randomised, and
  today's against the lock's (those known or employed since the lock);
- the Kaplan-Meier curve starts from the randomised rounded to its group of 5, so a reader knows
  the randomised to within that group.

The costs put the trial's primary outcome (employment within 12 months, complete case) last in
line to be withheld, then the other horizons, then the randomised, then the rest.
"""

from __future__ import annotations

from typing import Any

from outcomes.dashboard.data import HORIZONS, DashboardData
from outcomes.dashboard.disclosure import Grid, Protection, protect
from outcomes.dashboard.stats import roundmid_range, whole_month
from outcomes.transform.seeds import work_participation_states

PRIMARY_HORIZON = 12
BASELINE_SCORE = "baseline_"  # adsl_participants' prefix of a baseline score
MONTHS = range(25)
COST = {"primary": 1000.0, "horizon": 100.0, "randomised": 50.0, "flow": 10.0, "observed": 3.0, "detail": 1.0}


def key(arm: str, name: str, *index: Any) -> str:
    return "|".join([arm, name, *(str(i) for i in index)])


def study_protection(
    data: DashboardData, study: str, arms: list[str], public_randomised: bool | None = None
) -> Protection:
    """The study's grid, protected: which of its printed numbers the page shows.
    ``public_randomised`` (default: ``OUTCOMES_DASHBOARD_PUBLIC_RANDOMISED``): every reader is
    taken to know the number randomised per arm, so it is printed always.

    Should no protection exist with the time-to-employment curve on the page (what it tells to
    within 5 can pin a small count in a tiny arm), the page leaves the curve out and protects the
    rest; a page that cannot be protected even so is refused (``ValueError``)."""
    if public_randomised is None:
        from outcomes.settings import setting

        public_randomised = setting("OUTCOMES_DASHBOARD_PUBLIC_RANDOMISED") == "yes"
    try:
        return protect(_grid(data, study, arms, public_randomised, curve=True))
    except ValueError:
        shown = protect(_grid(data, study, arms, public_randomised, curve=False))
        return Protection(shown.grid, shown.withheld, curve=False)


def _grid(data: DashboardData, study: str, arms: list[str], public_randomised: bool, curve: bool) -> Grid:
    grid = Grid()
    for arm in arms:
        randomised = _arm(grid, data, study, arm, curve)
        if randomised is not None and public_randomised:
            grid.make_public(randomised)
    return grid


def _of(rows: list[dict[str, Any]], study: str, arm: str) -> list[dict[str, Any]]:
    return [r for r in rows if r["study"] == study and r["arm"] == arm]


def _arm(grid: Grid, data: DashboardData, study: str, arm: str, curve: bool) -> str | None:
    """The arm's counts into ``grid``; returns the key of its number randomised."""
    rates = {r["horizon_months"]: r for r in _of(data.rates, study, arm)}
    consort = next(iter(_of(data.consort, study, arm)), None)
    n = consort["n_randomised"] if consort else next(iter(rates.values()), {}).get("n_randomised")
    if n is None:
        return None
    randomised = grid.printed(key(arm, "randomised"), n, COST["randomised"])
    _employment(grid, arm, randomised, rates)
    if consort is not None:
        _consort(grid, arm, randomised, consort)
    _months(grid, arm, randomised, _of(data.states, study, arm), _of(data.observed, study, arm))
    for r in _of(data.trajectories, study, arm):
        where = (r["measure"], r["timepoint_months"])
        scored = grid.printed(key(arm, "scored", *where), int(r["n"] or 0), COST["detail"])
        grid.remainder(randomised, [scored], key(arm, "not scored", *where))
    _baseline(grid, arm, randomised, _of(data.baseline, study, arm))
    if data.lock is not None:
        for r in _of(data.lock.rates, study, arm):
            h = r["horizon_months"]
            known = grid.printed(key(arm, "lock known", h), r["n_known"], COST["flow"])
            employed = grid.printed(key(arm, "lock employed", h), r["n_employed"], COST["flow"])
            grid.remainder(known, [employed], key(arm, "lock not employed", h))
            if r["n_randomised"] == n:
                grid.remainder(randomised, [known], key(arm, "lock not known", h))
            for name, then in (("known", known), ("employed", employed)):  # since the lock
                if key(arm, name, h) in grid.cells:
                    grid.remainder(key(arm, name, h), [then], key(arm, f"{name} since the lock", h))
    if curve:
        _curve(grid, arm, randomised, _of(data.survival, study, arm))
    return randomised


def baseline_keys(arm: str, characteristic: str) -> tuple[str, str]:
    """The cells of an arm's number with a value of a baseline characteristic and without one. A
    baseline score's are the questionnaire table's scored and not scored at month 0 (the same
    month-0 form of fct_prom_scores, so the same counts): the two tables cannot give each other away."""
    if characteristic.startswith(BASELINE_SCORE):
        measure = characteristic.removeprefix(BASELINE_SCORE)
        return key(arm, "scored", measure, 0), key(arm, "not scored", measure, 0)
    return key(arm, "baseline known", characteristic), key(arm, "baseline missing", characteristic)


def baseline_randomised_key(shown: Protection, arm: str) -> str:
    """The randomised count the baseline table prints (the arm's, unless differing)."""
    own = key(arm, "baseline randomised")
    return own if own in shown.grid.cells else key(arm, "randomised")


def _baseline(grid: Grid, arm: str, randomised: str, rows: list[dict[str, Any]]) -> None:
    total = randomised
    if rows and rows[0]["n_arm"] != grid.cells[randomised].value:
        total = grid.printed(key(arm, "baseline randomised"), rows[0]["n_arm"], COST["randomised"])
    characteristics: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        characteristics.setdefault(r["characteristic"], []).append(r)
    for characteristic, levels in characteristics.items():
        known, missing = baseline_keys(arm, characteristic)
        grid.printed(known, levels[0]["n_known"], COST["detail"])
        if missing not in grid.cells:  # (the questionnaire table's relation, for a score)
            grid.remainder(total, [known], missing)
        if levels[0]["category"] is None:
            continue  # a continuous characteristic: its n only
        parts = [
            grid.printed(key(arm, "baseline", characteristic, r["category"]), r["n"], COST["detail"])
            for r in levels
        ]
        grid.adds_up(known, parts)
        for r, part in zip(levels, parts if len(parts) > 2 else [], strict=False):  # everyone else
            # with a value (of two categories, that is the other one)
            grid.remainder(known, [part], key(arm, "baseline not", characteristic, r["category"]))


def _curve(grid: Grid, arm: str, randomised: str, survival: list[dict[str, Any]]) -> None:
    """What the rounded time-to-employment curve and its at-risk table tell a reader who takes
    them for the other tables' counts: the number randomised (the curve starts from it), the
    employed within each horizon (the curve's rounded events by then), and the not known at each
    horizon (the rounded censorings before it: at risk = randomised - employed - censored), each to
    within its group of 5. The curve counts whole months of 30.44 days, the tables calendar months,
    so a reading is added only where it holds: where the table's count lies in the group read."""
    months = [(whole_month(float(r["months"])), bool(r["employed"])) for r in survival]
    readings = [(randomised, len(months))] if months else []
    for h in HORIZONS:
        employed = sum(1 for m, e in months if e and m <= h)
        censored = sum(1 for m, e in months if not e and m < h)
        readings += [(key(arm, "employed", h), employed), (key(arm, "not known", h), censored)]
    for cell, count in readings:
        if cell in grid.cells and months:
            low, high = roundmid_range(count)
            if low <= grid.cells[cell].value <= high:
                grid.knows(cell, low, high)


def _employment(grid: Grid, arm: str, randomised: str, rates: dict[int, dict[str, Any]]) -> None:
    n = grid.cells[randomised].value
    before: tuple[int, str, str] | None = None
    for h in HORIZONS:
        row = rates.get(h)
        if row is None:
            continue
        cost = COST["primary"] if h == PRIMARY_HORIZON else COST["horizon"]
        total = randomised
        if row["n_randomised"] != n:
            own = key(arm, "randomised", h)
            total = grid.printed(own, row["n_randomised"], COST["randomised"])
        known = grid.printed(key(arm, "known", h), row["n_known"], cost)
        employed = grid.printed(key(arm, "employed", h), row["n_employed"], cost)
        grid.remainder(total, [known], key(arm, "not known", h))
        grid.remainder(known, [employed], key(arm, "not employed", h))
        grid.remainder(total, [employed], key(arm, "not employed or not known", h))  # ITT's rest
        if before is not None:
            h0, known0, employed0 = before
            grid.remainder(employed, [employed0], key(arm, "newly employed", h0, h))
            grid.remainder(known0, [known], key(arm, "no longer known", h0, h))
        before = (h, known, employed)


def _consort(grid: Grid, arm: str, randomised: str, consort: dict[str, Any]) -> None:
    stopped = grid.printed(key(arm, "stopped"), consort["n_intervention_ended"], COST["flow"])
    grid.remainder(randomised, [stopped], key(arm, "did not stop"))
    lost = {}
    for h in (12, 24):
        lost[h] = grid.printed(key(arm, "lost", h), consort[f"n_lost_by_{h}m"], COST["flow"])
        grid.remainder(randomised, [lost[h]], key(arm, "not lost", h))
        analysed, known = consort[f"n_analysed_{h}m"], key(arm, "known", h)
        if not (known in grid.cells and grid.cells[known].value == analysed):  # else the same count
            own = grid.printed(key(arm, "analysed", h), analysed, COST["flow"])
            grid.remainder(randomised, [own], key(arm, "not analysed", h))
    grid.remainder(lost[24], [lost[12]], key(arm, "lost between", 12, 24))


def _months(
    grid: Grid, arm: str, randomised: str, states: list[dict[str, Any]], observed: list[dict[str, Any]]
) -> None:
    counts = {(r["month_index"], r["state"]): r["n"] for r in states}
    for r in observed:
        m = r["month_index"]
        total = grid.printed(key(arm, "observed", m), r["n"], COST["observed"])
        parts = [
            grid.printed(key(arm, "state", m, state), counts.get((m, state), 0), COST["detail"])
            for state, *_ in work_participation_states()
        ]
        grid.adds_up(total, parts)
        for state, part in zip(work_participation_states(), parts, strict=True):
            grid.remainder(total, [part], key(arm, "not in state", m, state[0]))  # everyone else
        grid.remainder(randomised, [total], key(arm, "not observed", m))


def randomised_key(shown: Protection, arm: str, horizon: int) -> str:
    """The randomised count the employment table prints at a horizon (the arm's, unless differing)."""
    own = key(arm, "randomised", horizon)
    return own if own in shown.grid.cells else key(arm, "randomised")
