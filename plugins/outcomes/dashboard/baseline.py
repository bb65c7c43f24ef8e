"""The baseline table by arm ("Table 1" of a trial report), from ``marts.agg_baseline_by_arm``.

Every count goes through the study's ``Protection`` (``outcomes.dashboard.numbers``: the table's
counts are part of the page's grid). A percentage is shown only where its count and the number
with a value are both shown and neither the category nor everyone else in it is under 5 (the
rates' rule); the statistics of a continuous characteristic (mean, SD, median, quartiles) only
where its number with a value is shown, so never for fewer than 5 people. As CONSORT asks, the
table has no p-values (a difference at baseline between randomised arms is chance by design)
and no total column.
"""

from __future__ import annotations

from typing import Any

from outcomes.dashboard.disclosure import Protection
from outcomes.dashboard.markup import Page, fragment, table
from outcomes.dashboard.numbers import BASELINE_SCORE, baseline_keys, baseline_randomised_key, key
from outcomes.dashboard.stats import rate_is_shown
from outcomes.transform.seeds import benefit_types, prom_measures

#: The analysis dataset's categorical characteristics, as the table names them.
LABELS = {
    "sex": "Sex",
    "site": "Site",
    "benefit_at_randomisation": "Benefit at randomisation",
    "age_at_randomisation": "Age at randomisation (years)",
}
SEX = {"F": "female", "M": "male"}
NO_BENEFIT = "NONE"  # agg_baseline_by_arm's category for no benefit that day


def characteristic_label(characteristic: str) -> str:
    if characteristic.startswith(BASELINE_SCORE):
        measures = {m.measure: m.label for m in prom_measures()}
        return f"Baseline {measures.get(characteristic.removeprefix(BASELINE_SCORE), characteristic)}"
    return LABELS.get(characteristic, characteristic)


def category_label(characteristic: str, category: str) -> str:
    if characteristic == "sex":
        return SEX.get(category, category)
    if characteristic == "benefit_at_randomisation":
        if category == NO_BENEFIT:
            return "no benefit"
        labels = {b.benefit: b.label for b in benefit_types()}
        return f"{labels[category]} ({category})" if category in labels else category
    return category


def _category_order(characteristic: str, category: str) -> tuple[int, str]:
    """Benefits in the register's precedence, no benefit last; other categories as sorted."""
    if characteristic == "benefit_at_randomisation":
        codes = [b.benefit for b in benefit_types()]
        return (codes.index(category) if category in codes else len(codes), category)
    return (0, category)


def _number(value: Any, digits: int) -> str:
    return "–" if value is None else f"{float(value):.{digits}f}"


def baseline_table(
    page: Page, study: str, rows: list[dict[str, Any]], arms: list[str], shown: Protection
) -> None:
    if not rows:
        page.add(
            fragment("note", text="No baseline table in this build (it predates the analysis datasets).")
        )
        return
    by_arm = {(r["arm"], r["characteristic"], r["category"]): r for r in rows}
    order: dict[str, int] = {}
    categories: dict[str, set[str]] = {}
    for r in rows:
        order[r["characteristic"]] = r["characteristic_order"]
        if r["category"] is not None:
            categories.setdefault(r["characteristic"], set()).add(r["category"])
    body = [["randomised", "", *[shown.text(baseline_randomised_key(shown, arm)) for arm in arms]]]
    for characteristic in sorted(order, key=order.__getitem__):
        label = characteristic_label(characteristic)
        knowns = {arm: baseline_keys(arm, characteristic)[0] for arm in arms}
        body.append([label, "with a value", *[shown.text(knowns[arm]) for arm in arms]])
        if characteristic in categories:
            for category in sorted(
                categories[characteristic], key=lambda c: _category_order(characteristic, c)
            ):
                cells = []
                for arm in arms:
                    cell = key(arm, "baseline", characteristic, category)
                    n, known = shown.value(cell), shown.value(knowns[arm])
                    row = by_arm.get((arm, characteristic, category))
                    share = (
                        f" ({row['pct']} %)"
                        if row is not None and row["pct"] is not None and rate_is_shown(n, known)
                        else ""
                    )
                    cells.append(shown.text(cell) + share)
                body.append(["", category_label(characteristic, category), *cells])
            continue
        digits = 2 if characteristic.endswith(("hscl25_total", "eq5d_index")) else 1
        means, medians = [], []
        for arm in arms:
            row = by_arm.get((arm, characteristic, None))
            if row is None or not shown.value(knowns[arm]):  # not shown (<5, ×) or no one
                means.append("–")
                medians.append("–")
                continue
            mean, sd, median, q1, q3 = (_number(row[c], digits) for c in ("mean", "sd", "median", "q1", "q3"))
            means.append(f"{mean} ({sd})")
            medians.append(f"{median} ({q1}–{q3})")
        body.append(["", "mean (SD)", *means])
        body.append(["", "median (Q1–Q3)", *medians])
    page.add(table(["characteristic", "", *arms], body, "numbers compact baseline"))
    page.add(
        fragment(
            "note",
            text=(
                "Counts of participants by arm, with the percentage of those with a value; a continuous "
                "characteristic as mean (SD) and median (quartiles) of those with a value, shown only where "
                "its number with a value is. A baseline score is the questionnaire form answered nearest "
                "randomisation (60 days before to 14 days after), the same counts as the questionnaire "
                "table's month 0. No p-values: the arms were randomised (CONSORT)."
            ),
        )
    )
