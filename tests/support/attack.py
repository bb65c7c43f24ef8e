"""A reader who tries to work out every small count from a dashboard page, written apart from the
dashboard's own disclosure control (outcomes.dashboard.disclosure): it reads the counts off the
page's HTML, writes down how they add up (as a reader of the page would), and asks an integer
programme for the smallest and largest value each small group can have."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, milp

from outcomes.dashboard.baseline import category_label, characteristic_label
from outcomes.transform.seeds import prom_measures, work_participation_states

HORIZONS = (3, 6, 12, 18, 24)
BIG = 10**6


class _Tables(HTMLParser):
    """Every table (header, rows) and every CONSORT box, per study section, in page order."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.studies: dict[str, dict[str, Any]] = {}
        self.study: str | None = None
        self.table: list[list[str]] | None = None
        self.cell: list[str] | None = None
        self.consort_arm: str | None = None
        self.box: list[str] | None = None
        self.in_h4 = False
        self.h4: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "section" and (a.get("id") or "").startswith("study-"):
            self.study = (a["id"] or "")[len("study-") :]
            self.studies[self.study] = {"tables": [], "consort": {}}
        elif tag == "table" and self.study:
            self.table = []
        elif tag == "tr" and self.table is not None:
            self.table.append([])
        elif tag in ("td", "th") and self.table is not None:
            self.cell = []
        elif tag == "h4" and self.study:
            self.in_h4, self.h4 = True, []
        elif tag == "div" and "box" in (a.get("class") or "").split() and self.study:
            self.box = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self.cell is not None and self.table is not None:
            self.table[-1].append(" ".join("".join(self.cell).split()))
            self.cell = None
        elif tag == "table" and self.table is not None and self.study:
            self.studies[self.study]["tables"].append(self.table)
            self.table = None
        elif tag == "h4" and self.in_h4:
            self.in_h4 = False
            self.consort_arm = "".join(self.h4).strip()
        elif tag == "div" and self.box is not None and self.study and self.consort_arm:
            n, *label = [
                piece.strip() for piece in self.box if piece.strip()
            ]  # <span>n</span><span>label</span>
            self.studies[self.study]["consort"].setdefault(self.consort_arm, {})[" ".join(label)] = n
            self.box = None

    def handle_data(self, data: str) -> None:
        for target in (self.cell, self.box, self.h4 if self.in_h4 else None):
            if target is not None:
                target.append(data)


def read_page(page: str) -> dict[str, dict[str, Any]]:
    body = re.sub(r"<script.*?</script>", "", page[page.index("<body>") :], flags=re.S)
    parser = _Tables()
    parser.feed(body)
    return parser.studies


@dataclass
class Reader:
    """What the page says: each variable's range, and the sums the reader knows."""

    bounds: dict[str, tuple[int, int]] = field(default_factory=dict)
    sums: list[tuple[str, list[str]]] = field(default_factory=list)
    small: list[tuple[str, int]] = field(default_factory=list)  # name, true value

    def group(self, name: str, total: str, parts: list[str], value: int) -> None:
        """A group of people the reader can form: ``total`` minus ``parts``; ``value`` is its truth."""
        self.adds_up(total, [*parts, self.var(name)])
        self.small.append((name, value))

    def var(self, name: str) -> str:
        self.bounds.setdefault(name, (0, BIG))
        return name

    def reads(self, name: str, printed: str) -> None:
        """A printed count: a number, ``<5`` (1-4: a zero is printed) or ``×`` (5 or more)."""
        token = printed.split(" ")[0]
        if token == "<5":
            span = (1, 4)
        elif token == "×":
            span = (5, BIG)
        elif token.isdigit():
            span = (int(token), int(token))
        else:
            return
        self.narrow(name, *span)

    def narrow(self, name: str, low: int, high: int) -> None:
        old = self.bounds.get(name, (0, BIG))
        self.bounds[name] = (max(old[0], low), min(old[1], high))

    def adds_up(self, total: str, parts: list[str]) -> None:
        for name in (total, *parts):
            self.var(name)
        self.sums.append((total, parts))

    def range_of(self, name: str) -> tuple[int, int]:
        names = list(self.bounds)
        index = {n: i for i, n in enumerate(names)}
        rows = []
        for total, parts in self.sums:
            row = np.zeros(len(names))
            row[index[total]] += 1
            for p in parts:
                row[index[p]] -= 1
            rows.append(row)
        constraints = [LinearConstraint(np.array(rows), 0, 0)] if rows else []
        bounds = Bounds([self.bounds[n][0] for n in names], [self.bounds[n][1] for n in names])
        ends = []
        for sign in (1, -1):
            c = np.zeros(len(names))
            c[index[name]] = sign
            result = milp(c, constraints=constraints, integrality=np.ones(len(names)), bounds=bounds)
            assert result.success, f"the page contradicts itself: {result.message}"
            ends.append(round(result.x[index[name]]))
        return ends[0], ends[1]


def _table(study: dict[str, Any], first: str) -> list[list[str]]:
    for table in study["tables"]:
        if table and table[0] and table[0][0] == first and (first != "arm" or "randomised" in table[0]):
            return table
    raise AssertionError(f"no table headed {first!r}")


def attack(
    page: str, truth: dict[str, dict[str, Any]], states: list[str], *, knows_randomised: bool = False
) -> list[tuple[str, int, tuple[int, int]]]:
    """Every small group the reader could pin down: (name, true count, the reader's range).

    ``truth[study][arm]``: randomised, known/employed by horizon, stopped, lost by 12/24,
    observed by month, state counts by (month, state), scored by (measure, month).
    ``knows_randomised``: the reader brings the number randomised per arm from elsewhere.
    """
    pinned = []
    for study, arms in truth.items():
        seen = read_page(page)[study]
        if not seen["tables"] and not seen["consort"]:
            continue  # the study is not shown at all
        reader = Reader()
        group, small = reader.group, reader.small

        employment = _table(seen, "arm")
        head = employment[0]
        for row in employment[1:]:
            arm, h = row[0], int(row[1])
            reader.reads(f"{arm} randomised", row[head.index("randomised")])
            reader.reads(f"{arm} known {h}", row[head.index("known")])
            reader.reads(f"{arm} employed {h}", row[head.index("employed")])
        # the rounded curve's table (absent when the page could not draw the curve)
        km = next((t for t in seen["tables"] if t[0][0] == "arm (rounded)"), [["arm (rounded)"]])
        months = [int(h.split()[0]) for h in km[0][1:]]
        for row in km[1:]:
            arm, _, what = row[0].partition(": ")
            truth_of_arm = arms.get(arm, {})
            if what == "at risk" and row[1].isdigit() and int(row[1]) >= 5:
                # the curve starts from the randomised rounded to the middle of its group of 5
                reader.narrow(f"{arm} randomised", int(row[1]) - 2, int(row[1]) + 2)
            if what == "employed by then":  # rounded: the employed within each month, to within 5
                for h, text in zip(months, row[1:], strict=True):
                    true = truth_of_arm.get("employed", {}).get(h)
                    low, high = (0, 0) if text == "0" else (int(text) - 2, int(text) + 2)
                    if true is not None and low <= true <= high:  # a reading that holds
                        reader.narrow(f"{arm} employed {h}", low, high)
        every = next(t for t in seen["tables"] if len(t[0]) == 27 and t[0][1] == "state")
        for row in every[1:]:
            arm, state = row[0], row[1]
            for m, text in enumerate(row[2:]):
                reader.reads(f"{arm} observed {m}" if state == "observed" else f"{arm} {state} {m}", text)
        trajectories = _table(seen, "measure")
        for row in trajectories[1:]:
            reader.reads(f"{row[1]} scored {row[0]} {row[2]}", row[3])
        baseline: list[list[str]] = next((t for t in seen["tables"] if t[0][0] == "characteristic"), [[]])
        characteristic = ""
        for row in baseline[1:]:
            if row[0]:
                characteristic = row[0]
            for arm, text in zip(baseline[0][2:], row[2:], strict=True):
                if row[0] == "randomised":
                    reader.reads(f"{arm} randomised", text)
                elif row[1] == "with a value":
                    reader.reads(f"{arm} baseline {characteristic}", text)
                else:  # a category: "n (pct %)"; a mean or median row reads as no count
                    reader.reads(f"{arm} baseline {characteristic}: {row[1]}", text)
        for arm, boxes in seen["consort"].items():
            reader.reads(f"{arm} randomised", boxes["Randomised"])
            reader.reads(f"{arm} stopped", boxes["Stopped the intervention (still followed)"])
            for h in (12, 24):
                reader.reads(f"{arm} lost {h}", boxes[f"Lost or withdrawn by {h} months"])
                reader.reads(f"{arm} known {h}", boxes[f"Analysed at {h} months"])

        for arm, t in arms.items():
            r = reader.var(f"{arm} randomised")
            n = t["randomised"]
            if knows_randomised:  # from the trial registry
                reader.narrow(r, n, n)
            previous = None
            for h in HORIZONS:
                if h not in t["known"]:
                    continue
                known, employed = f"{arm} known {h}", f"{arm} employed {h}"
                group(f"{arm} not known {h}", r, [known], n - t["known"][h])
                group(f"{arm} not employed (ITT) {h}", r, [employed], n - t["employed"][h])
                group(f"{arm} not employed {h}", known, [employed], t["known"][h] - t["employed"][h])
                if previous is not None:
                    group(
                        f"{arm} newly employed {previous}-{h}",
                        employed,
                        [f"{arm} employed {previous}"],
                        t["employed"][h] - t["employed"][previous],
                    )
                    group(
                        f"{arm} no longer known {previous}-{h}",
                        f"{arm} known {previous}",
                        [known],
                        t["known"][previous] - t["known"][h],
                    )
                previous = h
            group(f"{arm} did not stop", r, [f"{arm} stopped"], n - t["stopped"])
            for h in (12, 24):
                group(f"{arm} not lost {h}", r, [f"{arm} lost {h}"], n - t["lost"][h])
            group(f"{arm} lost 12-24", f"{arm} lost 24", [f"{arm} lost 12"], t["lost"][24] - t["lost"][12])
            for m, observed in t["observed"].items():
                reader.adds_up(f"{arm} observed {m}", [f"{arm} {s} {m}" for s in states])
                for s in states:
                    count = t["states"].get((m, s), 0)
                    small.append((f"{arm} {s} {m}", count))
                    group(f"{arm} not {s} {m}", f"{arm} observed {m}", [f"{arm} {s} {m}"], observed - count)
                group(f"{arm} not observed {m}", r, [f"{arm} observed {m}"], n - observed)
            for (measure, m), scored in t["scored"].items():
                group(f"{arm} not scored {measure} {m}", r, [f"{arm} scored {measure} {m}"], n - scored)
            for name, (known, categories) in t["baseline"].items():
                known_var = reader.var(f"{arm} baseline {name}")
                group(f"{arm} baseline {name} missing", r, [known_var], n - known)
                if name in t["baseline scores"]:  # the page says: the questionnaire table's month 0
                    reader.adds_up(known_var, [f"{arm} scored {t['baseline scores'][name]} 0"])
                if not categories:
                    continue
                reader.adds_up(known_var, [f"{arm} baseline {name}: {c}" for c in categories])
                for category, count in categories.items():
                    small.append((f"{arm} baseline {name}: {category}", count))
                    group(
                        f"{arm} baseline {name} not {category}",
                        known_var,
                        [f"{arm} baseline {name}: {category}"],
                        known - count,
                    )
            small += [(f"{arm} employed {h}", v) for h, v in t["employed"].items()]
            small += [(f"{arm} lost {h}", v) for h, v in t["lost"].items()]
        for name, value in small:
            if not 0 < value < 5:  # 1-4 people: a zero describes no one
                continue
            assert name in reader.bounds, f"{study}: {name} is not on the page"
            low, high = reader.range_of(name)
            assert low <= value <= high, f"{study}: {name} is {value}, outside the reader's {low}..{high}"
            if low == high:
                pinned.append((f"{study}: {name}", value, (low, high)))
    return pinned


def truth_of(content: Any) -> dict[str, dict[str, Any]]:
    """The true counts behind a DashboardData, per study and arm."""
    out: dict[str, dict[str, Any]] = {}
    for r in content.consort:
        arm = out.setdefault(r["study"], {}).setdefault(r["arm"], _empty())
        arm["randomised"] = r["n_randomised"]
        arm["stopped"] = r["n_intervention_ended"]
        arm["lost"] = {12: r["n_lost_by_12m"], 24: r["n_lost_by_24m"]}
    for r in content.rates:
        arm = out[r["study"]][r["arm"]]
        arm["known"][r["horizon_months"]] = r["n_known"]
        arm["employed"][r["horizon_months"]] = r["n_employed"]
    for r in content.observed:
        out[r["study"]][r["arm"]]["observed"][r["month_index"]] = r["n"]
    labels = {state: label for state, label, *_ in work_participation_states()}
    for r in content.states:
        out[r["study"]][r["arm"]]["states"][(r["month_index"], labels[r["state"]])] = r["n"]
    for r in content.trajectories:
        out[r["study"]][r["arm"]]["scored"][(_label(r["measure"]), r["timepoint_months"])] = int(r["n"] or 0)
    for r in content.baseline:
        arm = out[r["study"]][r["arm"]]
        name = html.unescape(characteristic_label(r["characteristic"]))
        _known, categories = arm["baseline"].setdefault(name, (r["n_known"], {}))
        if r["category"] is not None:
            categories[html.unescape(category_label(r["characteristic"], r["category"]))] = r["n"]
        if r["characteristic"].startswith("baseline_"):
            arm["baseline scores"][name] = _label(r["characteristic"].removeprefix("baseline_"))
    return out


def state_labels() -> list[str]:
    return [label for _state, label, *_ in work_participation_states()]


def _label(measure: str) -> str:
    return html.unescape({m.measure: m.label for m in prom_measures()}[measure])


def _empty() -> dict[str, Any]:
    return {
        "known": {},
        "employed": {},
        "observed": {},
        "states": {},
        "scored": {},
        "baseline": {},  # characteristic label -> (with a value, {category label: count})
        "baseline scores": {},  # a baseline score's label -> the questionnaire table's label
    }
