"""Disclosure control: no count of fewer than 5 people is shown, nor can one be worked out from the
numbers that are shown (docs/reliability.md, "Disclosure control").

A page's numbers form a :class:`Grid`: *cells* (counts of people) and *relations* (a total is the
sum of its parts). A cell is either printed on the page or only *implied* by it: "randomised 38"
and "known at 12 months 36" imply "not known at 12 months 2" without printing it. A small cell
(1 to 4 people: ``stats.is_small``) must not be recoverable, printed or implied.

:func:`protect` withholds every small printed cell (primary suppression, shown as ``<5``) and then
the cheapest set of further printed cells (complementary suppression, shown as ``×``) so that no
small cell can be recovered by adding and subtracting what is left. The cheapest set comes from a
mixed-integer programme (scipy's HiGHS): for every relation that holds a withheld or implied cell,
a second one of its cells must be withheld too. That rule is necessary, not sufficient, so the
result is then *attacked* (:func:`ranges`): for each small cell the smallest and largest whole
numbers it can be, given every number printed, every relation, what the reader knows from
elsewhere on the page (``Grid.knows``), and what the markers say (``<5`` is 1-4, ``×`` is 5 or
more; a zero is printed and never withheld; implied cells are 0 or more). A cell whose range is
one number is recovered; the programme then gets a cut (Fischetti and Salazar's: of the printed
cells around it, enough must go to widen its range) and is solved again, until no small cell can
be recovered.

``cost`` says what withholding a printed cell costs its reader: the pages give the trial's primary
outcome the highest cost, so it is the last thing withheld.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from outcomes.dashboard.stats import SMALL_CELL, SUPPRESSED, is_small

WITHHELD = "×"  # a printed cell withheld so that a smaller one cannot be worked out
_UNBOUNDED = 10**9


@dataclass
class Cell:
    key: str
    value: int
    printed: bool
    cost: float
    public: bool = False  # known to every reader from elsewhere (a trial registry): never withheld

    @property
    def small(self) -> bool:
        return is_small(self.value) and not self.public


@dataclass
class Grid:
    """The numbers of one page and how they add up."""

    cells: dict[str, Cell] = field(default_factory=dict)
    relations: list[tuple[str, tuple[str, ...]]] = field(default_factory=list)
    known: dict[str, tuple[int, int]] = field(default_factory=dict)  # what a reader learns elsewhere
    _of: dict[str, list[int]] = field(default_factory=dict, repr=False)  # cell -> its relations

    def relations_of(self, key: str) -> list[int]:
        return self._of.get(key, [])

    def printed(self, key: str, value: int, cost: float = 1.0) -> str:
        """A number printed on the page (again, if it is printed in several places)."""
        return self._add(key, value, printed=True, cost=cost)

    def implied(self, key: str, value: int) -> str:
        """A count the page does not print but implies (a total minus its printed parts)."""
        return self._add(key, value, printed=False, cost=0.0)

    def _add(self, key: str, value: int, *, printed: bool, cost: float) -> str:
        if value < 0:
            raise ValueError(f"a count of people cannot be negative: {key} = {value}")
        cell = self.cells.get(key)
        if cell is None:
            self.cells[key] = Cell(key, int(value), printed, cost)
        elif cell.value != value:
            raise ValueError(f"{key} is {cell.value} in one place and {value} in another")
        else:
            cell.printed = cell.printed or printed
            cell.cost = max(cell.cost, cost)
        return key

    def adds_up(self, total: str, parts: Sequence[str]) -> None:
        """``total`` is the sum of ``parts`` (checked against the values)."""
        got = sum(self.cells[p].value for p in parts)
        if got != self.cells[total].value:
            raise ValueError(f"{total} = {self.cells[total].value}, but its parts add up to {got}")
        for member in {total, *parts}:
            self._of.setdefault(member, []).append(len(self.relations))
        self.relations.append((total, tuple(parts)))

    def remainder(self, total: str, parts: Sequence[str], key: str) -> str | None:
        """Imply ``key`` = ``total`` - sum(``parts``), the group the printed numbers leave out; none
        when the parts are not a subset of the total (they are then not related on the page)."""
        rest = self.cells[total].value - sum(self.cells[p].value for p in parts)
        if rest < 0:
            return None
        self.implied(key, rest)
        self.adds_up(total, [*parts, key])
        return key

    def make_public(self, key: str) -> None:
        """Every reader knows ``key`` from elsewhere: it is printed always, and the attack knows it."""
        cell = self.cells[key]
        cell.public = True
        self.knows(key, cell.value, cell.value)

    def knows(self, key: str, low: int, high: int) -> None:
        """A reader learns that ``key`` lies within ``low..high`` from elsewhere on the page."""
        old_low, old_high = self.known.get(key, (0, _UNBOUNDED))
        self.known[key] = (max(low, old_low), min(high, old_high))


@dataclass(frozen=True)
class Protection:
    """Which printed cells a page withholds, and how it prints every cell."""

    grid: Grid
    withheld: frozenset[str]  # printed cells not printed: the small ones and their complements
    curve: bool = True  # the page draws its rounded time-to-employment curve (False: it could not)

    def shown(self, key: str) -> bool:
        cell = self.grid.cells.get(key)
        return cell is not None and cell.printed and key not in self.withheld

    def value(self, key: str) -> int | None:
        """The cell's value if the page shows it, else None."""
        return self.grid.cells[key].value if self.shown(key) else None

    def text(self, key: str) -> str:
        """The cell as printed: its value, ``<5``, ``×``, or an en dash for a number not there."""
        cell = self.grid.cells.get(key)
        if cell is None or not cell.printed:
            return "–"
        if key not in self.withheld:
            return str(cell.value)
        return SUPPRESSED if cell.small else WITHHELD

    def printed(self) -> dict[str, str]:
        """Every printed cell as the page prints it (the snapshot's sidecar keeps this)."""
        return {key: self.text(key) for key, cell in self.grid.cells.items() if cell.printed}


def protect(grid: Grid, max_rounds: int = 100) -> Protection:
    """Withhold the small printed cells and the cheapest complements that keep every small cell,
    printed or implied, from being recovered; raises if that cannot be done."""
    cuts: list[dict[str, float]] = []
    seen: dict[tuple[Any, ...], tuple[int, int]] = {}
    for _ in range(max_rounds):
        withheld = _cheapest(grid, cuts)
        recovered = [key for key, (low, high) in ranges(grid, withheld, seen).items() if low == high]
        if not recovered:
            return Protection(grid, withheld)
        for key in recovered:
            cuts.append(_cut(grid, withheld, key))
    raise ValueError(f"no protection found in {max_rounds} rounds")


def _cut(grid: Grid, withheld: frozenset[str], key: str) -> dict[str, float]:
    """A constraint that any protection of ``key`` meets (Fischetti and Salazar's cut): from the
    attacker's linear programme, how far withholding each printed cell around ``key`` could widen
    its range at most; together they must be able to widen it by one."""
    import numpy as np
    from scipy.optimize import linprog

    members, touching = _component(grid, withheld, key)
    columns, equations, bounds = _programme(grid, withheld, members, touching)
    printed = columns[len(members) :]
    index = {k: i for i, k in enumerate(columns)}
    reach = {k: _bounds(grid, withheld | {k}, k) for k in printed}  # a printed cell's range, withheld
    value = grid.cells[key].value
    weight: dict[str, float] = dict.fromkeys(printed, 0.0)
    for sign in (-1.0, 1.0):  # the largest value, then the smallest
        objective = np.zeros(len(columns))
        objective[index[key]] = sign
        result = linprog(
            objective, A_eq=equations, b_eq=np.zeros(len(touching)), bounds=bounds, method="highs"
        )
        if not result.success:
            return _around_cut(grid, withheld, key)
        end = -result.fun if sign < 0 else result.fun
        need = (value + 1 - end) if sign < 0 else (end - (value - 1))  # to reach the next whole number
        if need <= 1e-9:  # the relaxation is already wider: its duals say nothing
            return _around_cut(grid, withheld, key)
        reduced = result.lower.marginals + result.upper.marginals  # d(objective)/d(fixed value)
        for k in printed:
            r, fixed = reduced[index[k]], grid.cells[k].value
            low, high = reach[k]
            weight[k] += (-r * (high - fixed) if r < 0 else r * (fixed - low)) / need
    cut = {k: min(1.0, w) for k, w in weight.items() if w > 1e-9 and _withholdable(grid.cells[k])}
    return cut or _around_cut(grid, withheld, key)


def _withholdable(cell: Cell) -> bool:
    return cell.printed and cell.value > 0 and not cell.public


def _around_cut(grid: Grid, withheld: frozenset[str], key: str) -> dict[str, float]:
    """The weakest cut: one more of the printed cells around ``key`` must go."""
    around = _around(grid, withheld, key)
    if not around:
        raise ValueError(f"{key} can be worked out even with everything around it withheld")
    return dict.fromkeys(around, 1.0)


def _cheapest(grid: Grid, cuts: list[dict[str, float]]) -> frozenset[str]:
    """The cheapest printed cells to withhold: every small one, and a second cell in each relation
    of a withheld or implied cell that matters (small, or printed and withheld)."""
    import numpy as np
    from scipy.optimize import Bounds, LinearConstraint, milp

    keys = list(grid.cells)
    index = {k: i for i, k in enumerate(keys)}
    cells = [grid.cells[k] for k in keys]
    lower = np.array([1.0 if (c.small or not c.printed) else 0.0 for c in cells])
    # a zero is printed as 0; a public count is printed (withholding it would hide nothing)
    upper = np.array([0.0 if (c.printed and (c.value == 0 or c.public)) else 1.0 for c in cells])
    rows, least = [], []
    for total, parts in grid.relations:
        members = [total, *parts]
        for key in members:
            cell = grid.cells[key]
            if not cell.printed and not cell.small:
                continue  # an implied count of 5 or more may be worked out
            row = np.zeros(len(keys))
            for other in members:
                if other != key:
                    row[index[other]] += 1.0
            row[index[key]] -= 1.0  # withheld itself: another one of the relation is withheld too
            rows.append(row)
            least.append(0.0)
    for cut in cuts:  # withheld, these must be able to widen a recovered cell's range by one
        row = np.zeros(len(keys))
        for key, weight in cut.items():
            row[index[key]] = weight
        rows.append(row)
        least.append(1.0)
    constraints = [LinearConstraint(np.array(rows), lb=least, ub=np.inf)] if rows else []
    cost = np.array([c.cost if c.printed else 0.0 for c in cells]) + 1e-6
    result = milp(
        cost,
        constraints=constraints,
        integrality=np.ones(len(keys)),
        bounds=Bounds(lower, upper),
    )
    if not result.success:
        raise ValueError(f"no complementary suppression satisfies the page's relations: {result.message}")
    return frozenset(k for k, x in zip(keys, result.x, strict=True) if x > 0.5 and grid.cells[k].printed)


def _bounds(grid: Grid, withheld: frozenset[str], key: str) -> tuple[int, int]:
    """What a reader knows of one cell from its marker (or its printed value)."""
    cell = grid.cells[key]
    if cell.printed and key not in withheld:
        return cell.value, cell.value
    if cell.printed:  # a zero is never withheld, so <5 is 1-4 and × is 5 or more
        low, high = (1, SMALL_CELL - 1) if cell.small else (SMALL_CELL, _UNBOUNDED)
    else:
        low, high = 0, _UNBOUNDED
    known_low, known_high = grid.known.get(key, (0, _UNBOUNDED))
    return max(low, known_low), min(high, known_high)


def _unknown(grid: Grid, withheld: frozenset[str], key: str) -> bool:
    cell = grid.cells[key]
    return not cell.printed or key in withheld


def _component(grid: Grid, withheld: frozenset[str], key: str) -> tuple[list[str], list[int]]:
    """The unknown cells linked to ``key`` through relations, and those relations (by index)."""
    members = {key}
    todo = [key]
    touching: set[int] = set()
    while todo:
        current = todo.pop()
        for i in grid.relations_of(current):
            if i in touching:
                continue
            touching.add(i)
            total, parts = grid.relations[i]
            for other in (total, *parts):
                if other not in members and _unknown(grid, withheld, other):
                    members.add(other)
                    todo.append(other)
    return sorted(members), sorted(touching)


def ranges(
    grid: Grid, withheld: Iterable[str], seen: dict[tuple[Any, ...], tuple[int, int]] | None = None
) -> dict[str, tuple[int, int]]:
    """For every small cell: the smallest and largest whole number a reader can make of it from the
    printed numbers, the relations and the markers (a printed, shown cell is its value). ``seen``
    keeps the answers of earlier calls (a cell's problem is its component and its relations)."""
    withheld = frozenset(withheld)
    seen = {} if seen is None else seen
    found = {}
    for key, cell in grid.cells.items():
        if not cell.small:
            continue
        if not _unknown(grid, withheld, key):
            found[key] = (cell.value, cell.value)
            continue
        members, touching = _component(grid, withheld, key)
        problem = (key, tuple(members), tuple(touching))
        if problem not in seen:
            seen[problem] = _range(grid, withheld, key, members, touching)
        found[key] = seen[problem]
    return found


def _range(
    grid: Grid, withheld: frozenset[str], key: str, members: list[str], touching: list[int]
) -> tuple[int, int]:
    import numpy as np
    from scipy.optimize import Bounds, LinearConstraint, milp

    columns, equations, bounds = _programme(grid, withheld, members, touching)
    constraints = [LinearConstraint(equations, lb=0.0, ub=0.0)] if len(touching) else []
    limits = Bounds([b[0] for b in bounds], [b[1] for b in bounds])
    at = columns.index(key)
    ends = []
    for sign in (1.0, -1.0):
        objective = np.zeros(len(columns))
        objective[at] = sign
        result = milp(objective, constraints=constraints, integrality=np.ones(len(columns)), bounds=limits)
        if not result.success:
            raise ValueError(f"the page's numbers contradict each other around {key}: {result.message}")
        ends.append(round(result.x[at]))
    return ends[0], ends[1]


def _programme(
    grid: Grid, withheld: frozenset[str], members: list[str], touching: list[int]
) -> tuple[list[str], Any, list[tuple[int, int]]]:
    """The attacker's programme around a component: its columns (the unknown ``members``, then the
    printed cells of the relations it touches, fixed at their values), one equation a relation
    (total - parts = 0), and every column's bounds."""
    import numpy as np

    printed = sorted(
        {k for i in touching for k in (grid.relations[i][0], *grid.relations[i][1])} - set(members)
    )
    columns = members + printed
    index = {k: i for i, k in enumerate(columns)}
    equations = np.zeros((len(touching), len(columns)))
    for row, i in enumerate(touching):
        total, parts = grid.relations[i]
        equations[row, index[total]] += 1.0
        for part in parts:
            equations[row, index[part]] -= 1.0
    return columns, equations, [_bounds(grid, withheld, k) for k in columns]


def _around(grid: Grid, withheld: frozenset[str], key: str) -> list[str]:
    """The printed, shown cells in the relations around a recovered cell: one of them must go."""
    _members, touching = _component(grid, withheld, key)
    around: set[str] = set()
    for i in touching:
        total, parts = grid.relations[i]
        around.update(
            k
            for k in (total, *parts)
            if grid.cells[k].printed and k not in withheld and grid.cells[k].value > 0
        )
    return sorted(around)
