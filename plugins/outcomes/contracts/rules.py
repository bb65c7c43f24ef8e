"""Each contract rule compiled into a closure: a cell's checks (regex, value set, constant range,
not in the future, not blank) composed with its type's parser, and the rules that read the whole
row (a range bounded by another column, date order, required-iff, an item's range)."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Any

from outcomes.contracts.spec import (
    Column,
    DateOrderRule,
    FileSpec,
    ItemRangeRule,
    RangeRule,
    RequiredIffRule,
)
from outcomes.contracts.values import _INVALID, Cell, RowRule, _Bad


def _compose(parse: Cell | None, checks: list[Callable[[Any], None]]) -> Cell | None:
    """One closure per column: parse, then run the single-column checks (which raise _Bad)."""
    if not checks:
        return parse
    if parse is None:
        if len(checks) == 1:
            (only,) = checks

            def text_cell(raw: str) -> str:
                only(raw)
                return raw

            return text_cell

        def text_cells(raw: str) -> str:
            for check in checks:
                check(raw)
            return raw

        return text_cells
    if len(checks) == 1:
        (only,) = checks

        def typed_cell(raw: str) -> Any:
            value = parse(raw)
            only(value)
            return value

        return typed_cell

    def typed_cells(raw: str) -> Any:
        value = parse(raw)
        for check in checks:
            check(value)
        return value

    return typed_cells


def _out_of_range(value: Any, lo: Any, hi: Any, exclusive_min: bool, exclusive_max: bool) -> bool:
    if lo is not None and (value <= lo if exclusive_min else value < lo):
        return True
    return hi is not None and (value >= hi if exclusive_max else value > hi)


def _constant_range(rule: RangeRule, col: Column) -> Callable[[Any], None]:
    def conv(bound: Any) -> Any:
        if bound is None or bound.value is None:
            return None
        return Decimal(bound.value) if col.type == "decimal" else bound.value

    lo, hi = conv(rule.min), conv(rule.max)
    ex_lo, ex_hi = rule.exclusive_min, rule.exclusive_max
    detail = f"is outside {rule.describe()}"

    def check(value: Any) -> None:
        if _out_of_range(value, lo, hi, ex_lo, ex_hi):
            raise _Bad("range", detail)

    return check


def _row_range(rule: RangeRule, col: Column) -> RowRule:
    """A range with a bound such as ``year(randomised_on) - 16``: needs the row's other values."""
    name = col.name

    def bound(b: Any, values: dict[str, Any]) -> Any:
        if b is None:
            return None
        if b.year_of is None:
            return b.value
        ref = values.get(b.year_of)
        if ref is None or ref is _INVALID:
            return None
        return ref.year + b.offset

    def check(values: dict[str, Any]) -> tuple[str, str, str] | None:
        value = values[name]
        if value is None or value is _INVALID:
            return None
        lo, hi = bound(rule.min, values), bound(rule.max, values)
        if _out_of_range(value, lo, hi, rule.exclusive_min, rule.exclusive_max):
            shown = f"{'?' if lo is None else lo}..{'?' if hi is None else hi}"
            return name, "range", f"is outside {shown} ({rule.describe()})"
        return None

    return check


_DATE_OPS: dict[str, tuple[Callable[[Any, Any], bool], str]] = {
    ">=": (lambda a, b: a >= b, "is before"),
    ">": (lambda a, b: a > b, "is not after"),
    "<=": (lambda a, b: a <= b, "is after"),
    "<": (lambda a, b: a < b, "is not before"),
}


def _date_order(rule: DateOrderRule, col: Column) -> RowRule:
    name, other = col.name, rule.other
    holds, verb = _DATE_OPS[rule.op]

    def check(values: dict[str, Any]) -> tuple[str, str, str] | None:
        a, b = values[name], values[other]
        if a is None or b is None or a is _INVALID or b is _INVALID or holds(a, b):
            return None
        return name, "date_order", f"{verb} {other} ({b.isoformat()})"

    return check


def _required_iff(rule: RequiredIffRule, col: Column) -> RowRule:
    name, trigger = col.name, rule.column
    wanted = frozenset(rule.values) if rule.values is not None else None
    condition = rule.describe()

    def check(values: dict[str, Any]) -> tuple[str, str, str] | None:
        value, cause = values[name], values[trigger]
        if value is _INVALID or cause is _INVALID:
            return None
        required = cause is not None and (wanted is None or cause in wanted)
        if required and value is None:
            return name, "required_iff", f"is not allowed when {condition}"
        if not required and value is not None:
            return name, "required_iff", f"is set, but it is set only when {condition}"
        return None

    return check


def _item_range(rule: ItemRangeRule, col: Column, spec: FileSpec) -> RowRule:
    name, item_col = col.name, rule.item_column
    ranges = spec.item_ranges()

    def check(values: dict[str, Any]) -> tuple[str, str, str] | None:
        value, item = values[name], values[item_col]
        if value is None or value is _INVALID or item is None or item is _INVALID:
            return None
        bounds = ranges.get(item)
        if bounds is None or bounds[0] <= value <= bounds[1]:
            return None
        return name, "item_range", f"is outside {bounds[0]}..{bounds[1]} for item {item}"

    return check


def _regex_check(pattern: str) -> Callable[[str], None]:
    match = re.compile(pattern).fullmatch
    detail = f"does not match {pattern}"

    def check(value: str) -> None:
        if match(value) is None:
            raise _Bad("regex", detail)

    return check


def _enum_check(values: Iterable[Any], rule: str, detail: str | None = None) -> Callable[[Any], None]:
    allowed = frozenset(values)
    text = detail or f"is not one of {', '.join(str(v) for v in values)}"

    def check(value: Any) -> None:
        if value not in allowed:
            raise _Bad(rule, text)

    return check


def _not_in_future_check(cutoff: dt.date) -> Callable[[dt.date], None]:
    detail = f"is after the delivery's extract date {cutoff.isoformat()}"

    def check(value: dt.date) -> None:
        if value > cutoff:
            raise _Bad("not_in_future", detail)

    return check


def _not_blank(value: str) -> None:
    if value.isspace():
        raise _Bad("not_blank", "is blank")
