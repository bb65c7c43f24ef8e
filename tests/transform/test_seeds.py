"""The value sets live once, in the dbt seeds (dbt_project/seeds/), and everything reads them there:
the models and dbt tests (ref), the contract, the gate, the dashboard and the docs
(outcomes.transform.seeds). These guards fail when a copy comes back."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

import pytest

from outcomes.contracts.spec import EnumRule, load_contract
from outcomes.transform import seeds

ROOT = Path(__file__).resolve().parents[2]
SEEDS = ROOT / "dbt_project" / "seeds"
#: Where a copy of a value set could hide: the code, the models, macros and tests, the gate's suites.
SEARCHED = [
    *(ROOT / "plugins").rglob("*.py"),
    *(ROOT / "plugins").rglob("*.yaml"),
    *(ROOT / "dbt_project" / "models").rglob("*.sql"),
    *(ROOT / "dbt_project" / "macros").rglob("*.sql"),
    *(ROOT / "dbt_project" / "tests").rglob("*.sql"),
    *(ROOT / "expectations").glob("*.py"),
    *(ROOT / "tests" / "support").glob("*.py"),
]
#: The one rule that names the states: the macro that decides a month's state.
STATE_RULE = ROOT / "dbt_project" / "macros" / "work_participation_state.sql"
#: Not copies: the synthetic welfare register writes each benefit in a scenario of its own (its
#: deliveries pass the contract, whose enum is the seed, so a code the seed lacks fails the demo).
WRITES_THE_CODES = {ROOT / "plugins" / "outcomes" / "demo" / "benefits.py"}


def _quoted(text: str) -> set[str]:
    return set(re.findall(r"""['"]([A-Z][A-Z_]+)['"]""", text))


def test_the_eq5d_value_set_gives_dolans_published_states() -> None:
    """Pinned to the published value set (Dolan 1997), not to the seed: a wrong coefficient fails."""
    value_set = seeds.eq5d_value_set()
    # every dimension alone at levels 2 and 3, and the docs' check values (docs/definitions.md)
    published = {
        "11111": "1.000",
        "21111": "0.850",
        "12111": "0.815",
        "11211": "0.883",
        "11121": "0.796",
        "11112": "0.848",
        "31111": "0.336",
        "13111": "0.436",
        "11311": "0.556",
        "11131": "0.264",
        "11113": "0.414",
        "22222": "0.516",
        "33333": "-0.594",
    }
    for state, index in published.items():
        levels = dict(zip(value_set.decrements, map(int, state), strict=True))
        assert round(value_set.score(levels), 3) == Decimal(index), state
    assert value_set.worst() == Decimal("-0.594")


def test_the_contract_takes_the_benefit_codes_from_the_seed() -> None:
    contract = load_contract()
    files = contract.sources["welfare"].files.values()
    (column,) = [c for spec in files for c in spec.columns if c.name == "benefit"]
    (rule,) = [r for r in column.rules if isinstance(r, EnumRule)]
    assert set(rule.values) == set(seeds.benefit_codes())
    assert len(seeds.benefit_codes()) == 7


def test_the_state_rule_names_exactly_the_seeds_states() -> None:
    named = _quoted(STATE_RULE.read_text(encoding="utf-8")) - set(seeds.benefit_codes())
    assert named == set(seeds.state_codes())


def test_precedence_and_days_groups_are_well_formed() -> None:
    benefits = seeds.benefit_types()
    assert [b.precedence for b in benefits] == list(range(1, len(benefits) + 1))
    assert {b.days_group for b in benefits} <= {b.benefit for b in benefits} | {"OTHER"}


@pytest.mark.parametrize(
    ("value_set", "codes"),
    [("benefit types", seeds.benefit_codes), ("work-participation states", seeds.state_codes)],
)
def test_no_file_lists_a_value_set_again(value_set: str, codes: object) -> None:
    wanted = set(codes())  # type: ignore[operator]
    assert SEARCHED and len(wanted) >= 7, "the guard would pass vacuously"
    copies = [
        str(path.relative_to(ROOT))
        for path in SEARCHED
        if path != STATE_RULE
        and path not in WRITES_THE_CODES
        and wanted <= _quoted(path.read_text(encoding="utf-8"))
    ]
    assert not copies, f"read the {value_set} from dbt_project/seeds/ (outcomes.transform.seeds): {copies}"


def test_no_file_holds_an_eq5d_coefficient_again() -> None:
    coefficients = {str(d) for d in (seeds.eq5d_value_set().constant, seeds.eq5d_value_set().n3)}
    coefficients |= {str(d) for pair in seeds.eq5d_value_set().decrements.values() for d in pair}
    assert len(coefficients) == 12
    copies = {
        str(path.relative_to(ROOT)): sorted(found)
        for path in SEARCHED
        if (found := coefficients & set(re.findall(r"\d\.\d{3}", path.read_text(encoding="utf-8"))))
    }
    assert not copies, f"read the EQ-5D value set from dbt_project/seeds/eq5d_uk_tto_1997.csv: {copies}"


def test_the_measures_are_the_scores_the_trajectories_unpivot() -> None:
    model = ROOT / "dbt_project" / "models" / "marts" / "questionnaires" / "agg_prom_trajectories.sql"
    # the model's list of measures (each one a column of fct_prom_scores, aggregated by name)
    (listed,) = re.findall(r"set measures = \[([^\]]*)\]", model.read_text(encoding="utf-8"))
    measures = re.findall(r"'(\w+)'", listed)
    assert len(measures) >= 8
    assert measures == [m.measure for m in seeds.prom_measures()]


def test_the_eq5d_index_range_is_the_value_sets() -> None:
    """The one number written twice: the index's lower bound is the value set's worst state."""
    (index,) = [m for m in seeds.prom_measures() if m.measure == "eq5d_index"]
    assert (index.min_value, index.max_value) == (seeds.eq5d_value_set().worst(), 1)
