"""The value sets of the dbt project's seeds (``dbt_project/seeds/*.csv``), for the Python side.

The seeds are the one home of the benefit types and their precedence, the work-participation
states with their labels, and the EQ-5D-3L value set: the models join them as tables, and the
contracts, the quality gate, the dashboard and the docs read the same files through this module.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import NamedTuple


def seeds_dir() -> Path:
    from outcomes.settings import DBT_PROJECT, project_dir

    return project_dir() / DBT_PROJECT / "seeds"


@cache
def _rows(path: Path) -> tuple[dict[str, str], ...]:
    with path.open(newline="", encoding="utf-8") as handle:
        return tuple(csv.DictReader(handle))


def rows(name: str) -> tuple[dict[str, str], ...]:
    """The rows of seed ``name``, in the file's order, every value a string ('' = NULL)."""
    return _rows(seeds_dir() / f"{name}.csv")


def codes(name: str) -> tuple[str, ...]:
    """The values of seed ``name``'s first column, its key, in the file's order."""
    return tuple(next(iter(row.values())) for row in rows(name))


class Benefit(NamedTuple):
    benefit: str
    precedence: int
    days_group: str
    label: str


class State(NamedTuple):
    state: str
    label: str
    meaning: str
    colour: str


def benefit_types() -> tuple[Benefit, ...]:
    """The welfare register's benefit codes, highest precedence first."""
    found = (
        Benefit(r["benefit"], int(r["precedence"]), r["days_group"], r["label"])
        for r in rows("benefit_types")
    )
    return tuple(sorted(found, key=lambda b: b.precedence))


def benefit_codes() -> tuple[str, ...]:
    return tuple(b.benefit for b in benefit_types())


def work_participation_states() -> tuple[State, ...]:
    """The combined states of a month, in display order."""
    return tuple(
        State(r["state"], r["label"], r["meaning"], r["colour"]) for r in rows("work_participation_states")
    )


def state_codes() -> tuple[str, ...]:
    return codes("work_participation_states")


@dataclass(frozen=True)
class Eq5dValueSet:
    constant: Decimal
    n3: Decimal
    #: the worst dimension's level from which the constant, and n3, apply
    constant_level: int
    n3_level: int
    #: dimension -> (decrement at level 2, decrement at level 3), in the value set's order; the
    #: registry's items name the dimensions eq5d_<dimension>
    decrements: dict[str, tuple[Decimal, Decimal]]

    def score(self, levels: dict[str, int]) -> Decimal:
        """The index of one health state (dimension -> level 1-3), unrounded."""
        worst = max(levels.values())
        value = Decimal(1) - (self.constant if worst >= self.constant_level else 0)
        value -= self.n3 if worst >= self.n3_level else 0
        return value - sum(
            (self.decrements[d][levels[d] - 2] for d in self.decrements if levels[d] > 1), Decimal(0)
        )

    def worst(self) -> Decimal:
        """The index of the worst state (every dimension at level 3): the score's lower bound."""
        return self.score(dict.fromkeys(self.decrements, 3))


def eq5d_value_set() -> Eq5dValueSet:
    """The EQ-5D-3L UK TTO value set (Dolan 1997) of seeds/eq5d_uk_tto_1997.csv."""
    found = rows("eq5d_uk_tto_1997")
    by_term = {(r["term"], int(r["level"])): Decimal(r["decrement"]) for r in found}
    (constant_level,) = [level for term, level in by_term if term == "constant"]
    (n3_level,) = [level for term, level in by_term if term == "n3"]
    dimensions = dict.fromkeys(term for term, _level in by_term if term not in ("constant", "n3"))
    return Eq5dValueSet(
        constant=by_term[("constant", constant_level)],
        n3=by_term[("n3", n3_level)],
        constant_level=constant_level,
        n3_level=n3_level,
        decrements={d: (by_term[(d, 2)], by_term[(d, 3)]) for d in dimensions},
    )


class Measure(NamedTuple):
    measure: str
    label: str
    min_value: Decimal
    max_value: Decimal


def prom_measures() -> tuple[Measure, ...]:
    """The questionnaire scores with their labels and ranges, in display order."""
    found = rows("prom_measures")
    return tuple(
        Measure(r["measure"], r["label"], Decimal(r["min_value"]), Decimal(r["max_value"])) for r in found
    )
