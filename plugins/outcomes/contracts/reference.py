"""The source contracts as a reader's reference (``docs/sources.md``), rendered from ``sources.yaml``.

The columns, types, rules and item tables a source must deliver are written once, in the
contract; this renders them as Markdown so the docs cannot drift from what the checker enforces
(``make docs`` writes them, a test holds the docs to them).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from outcomes.contracts.spec import default_contract_path

#: How the named rules (implemented in Python) read in the docs.
NAMED_RULES = {
    "not_blank": "not blank",
    "unique": "unique in the file",
    "fnr_check_digits": (
        "11 digits with valid mod-11 check digits ([Definitions](definitions.md#identity-and-privacy))"
    ),
    "enrolled_participant": "a participant of the trial's enrolment",
}


def _code(values: list[Any]) -> str:
    return ", ".join(f"`{v}`" for v in values)


def _range(spec: dict[str, Any]) -> str:
    low = spec.get("min")
    high = spec.get("max")
    parts = []
    if low is not None:
        parts.append(f"{'>' if spec.get('exclusive_min') else '>='} {low}")
    if high is not None:
        parts.append(f"{'<' if spec.get('exclusive_max') else '<='} {high}")
    return " and ".join(parts)


def rule_text(rule: str | dict[str, Any]) -> str:
    """One contract rule in words."""
    if isinstance(rule, str):
        return NAMED_RULES[rule]
    ((kind, value),) = rule.items()
    if kind == "regex":
        return f"matches `{value}`"
    if kind == "enum" and isinstance(value, dict):
        from outcomes.transform.seeds import codes, rows

        labels = [row.get("label") for row in rows(value["seed"])]
        listed = ", ".join(
            f"`{code}`" + (f" ({label})" if label else "")
            for code, label in zip(codes(value["seed"]), labels, strict=True)
        )
        return f"one of the seed `{value['seed']}` (`dbt_project/seeds/{value['seed']}.csv`): {listed}"
    if kind == "enum":
        return f"one of {_code(value)}"
    if kind == "range":
        return _range(value)
    if kind == "date_order":
        return f"{value} (when both are set)"
    if kind == "not_in_future_of":
        return "not after the delivery's extract date"
    if kind == "required_iff":
        if "in" in value:
            return f"set exactly when `{value['column']}` is one of {_code(value['in'])}"
        return f"set exactly when `{value['column']}` is set"
    if kind == "item_code":
        return "one of the item codes below"
    if kind == "item_range":
        return f"within the range of the row's `{value['item_column']}` (below)"
    raise ValueError(f"no wording for the contract rule {kind!r}")


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def sources_reference(path: str | Path | None = None) -> str:
    """Every source's files, columns (type, NULL allowed, rules, meaning) and item tables."""
    raw = yaml.safe_load(Path(path or default_contract_path()).read_text(encoding="utf-8"))
    out: list[str] = []
    for name, source in raw["sources"].items():
        out.append(f"### `{name}`: {_cell(source['description'])}")
        out.append("")
        out.append(
            f"Mode `{source['mode']}`; keyed by `{source['keyed_by']}`"
            + (" (pseudonymised at the door)" if source["keyed_by"] == "fnr" else "")
            + "."
        )
        for file_name, spec in source["files"].items():
            needed = "required in every delivery" if spec.get("required") else "optional in a delivery"
            out += ["", f"`{file_name}` ({needed}): {_cell(spec['grain'])}.", ""]
            out += ["| column | type | NULL | rules | meaning |", "|---|---|---|---|---|"]
            for column in spec["columns"]:
                rules = "; ".join(rule_text(r) for r in column.get("rules", [])) or "-"
                null = "yes" if column.get("nullable") else "no"
                meaning = _cell(column.get("description", "")) or "-"
                out.append(f"| `{column['name']}` | {column['type']} | {null} | {_cell(rules)} | {meaning} |")
            if "items" in spec:
                out += ["", "| instrument | item codes | values |", "|---|---|---|"]
                for item in spec["items"]:
                    label = item["instrument"] + (f" ({item['subscale']})" if "subscale" in item else "")
                    codes = item["codes"]
                    shown = _code(codes) if len(codes) <= 5 else f"`{codes[0]}` .. `{codes[-1]}`"
                    out.append(f"| {label} | {shown} | {item['min']} .. {item['max']} |")
        out.append("")
    return "\n".join(out).rstrip() + "\n"
