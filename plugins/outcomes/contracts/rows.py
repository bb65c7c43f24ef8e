"""One row of one file against its contract: the column and row rules compiled into closures once
(:class:`RowChecker`), so a streaming loader can call it for millions of rows. The typed values
are :mod:`outcomes.contracts.values`'s, the compiled rules :mod:`outcomes.contracts.rules`'s.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Container, Mapping
from typing import Any

from outcomes.contracts.fnr import has_valid_check_digits
from outcomes.contracts.report import IDENTIFYING_COLUMNS, RowInvalid, Violation, _make_violation
from outcomes.contracts.rules import (
    _compose,
    _constant_range,
    _date_order,
    _enum_check,
    _item_range,
    _not_blank,
    _not_in_future_check,
    _regex_check,
    _required_iff,
    _row_range,
)
from outcomes.contracts.spec import (
    Column,
    Contract,
    DateOrderRule,
    EnumRule,
    FileSpec,
    ItemCodeRule,
    ItemRangeRule,
    NamedRule,
    NotInFutureRule,
    RangeRule,
    RegexRule,
    RequiredIffRule,
    Rule,
    load_contract,
)
from outcomes.contracts.values import _INVALID, _PARSERS, Cell, RowRule, _Bad

_FNR_MEMO_MAX = 200_000


class RowChecker:
    """The compiled rules of one file: validates and types rows, one call per row.

    ``extracted_at`` (aware datetime, or a date) enables "not in the future of the delivery";
    ``enrolled_participant_ids`` (anything supporting ``in``) enables "an enrolled participant";
    either left None skips its rule. ``track_unique`` makes :meth:`check` remember the values of
    ``unique`` columns across calls and flag repeats (then one checker per file per delivery).
    """

    def __init__(
        self,
        contract: Contract | None,
        source: str,
        file: str,
        *,
        delivery_id: str = "?",
        extracted_at: dt.datetime | dt.date | None = None,
        enrolled_participant_ids: Container[str] | None = None,
        track_unique: bool = False,
    ) -> None:
        self.contract = contract if contract is not None else load_contract()
        self.spec: FileSpec = self.contract.file(source, file)
        self.source = source
        self.file = file
        self.delivery_id = delivery_id
        self.columns: tuple[str, ...] = self.spec.column_names
        self.cutoff = _cutoff_date(extracted_at)
        self.enrolled = enrolled_participant_ids
        # fnr -> check digits valid: in memory only, gone with the checker (one file's life).
        self._fnr_memo: dict[str, bool] = {}
        self._redacted: frozenset[str] = frozenset(
            c.name
            for c in self.spec.columns
            if c.name in IDENTIFYING_COLUMNS or any(r.kind == "fnr_check_digits" for r in c.rules)
        )
        cells: list[tuple[str, Cell | None, bool]] = []
        row_rules: list[RowRule] = []
        unique: list[tuple[str, dict[Any, int]]] = []
        for col in self.spec.columns:
            checks = self._column_checks(col, row_rules)
            cells.append((col.name, _compose(_PARSERS[col.type], checks), col.nullable))
            if track_unique and col.has_rule("unique"):
                unique.append((col.name, {}))
        self._cells = tuple(cells)
        self._cell_of = {name: (cell, nullable) for name, cell, nullable in cells}
        self._row_rules = tuple(row_rules)
        self._unique = tuple(unique)
        #: The columns the row rules read (the columnar check groups rows by their values).
        self.row_rule_columns: tuple[str, ...] = _row_rule_columns(self.spec) if row_rules else ()

    @property
    def tracks_unique(self) -> bool:
        """Whether :meth:`check` remembers values across rows (``unique`` columns)."""
        return bool(self._unique)

    def cell_keeps_rules(self, name: str, raw: str) -> tuple[bool, Any]:
        """(keeps its column's own rules, typed value) for the text of one cell of ``name``: what
        :meth:`check` decides for that cell, whatever the row. The columnar check asks once per
        distinct value instead of once per row."""
        cell, nullable = self._cell_of[name]
        if not raw:
            return nullable, None
        if "\x00" in raw:
            return False, _INVALID
        if cell is None:
            return True, raw
        try:
            return True, cell(raw)
        except _Bad:
            return False, _INVALID

    def row_rules_hold(self, values: Mapping[str, Any]) -> bool:
        """Whether every rule across cells holds for these typed values (of at least
        :attr:`row_rule_columns`; ``_INVALID`` for a cell that broke its own rules)."""
        return all(rule(values) is None for rule in self._row_rules)  # type: ignore[arg-type]

    # compile ----------------------------------------------------------------------------

    def _column_checks(self, col: Column, row_rules: list[RowRule]) -> list[Callable[[Any], None]]:
        """Single-value checks for ``col``; rules that need the whole row go to ``row_rules``."""
        checks: list[Callable[[Any], None]] = []
        for rule in col.rules:
            row_rule = self._row_rule(rule, col)
            if row_rule is not None:
                row_rules.append(row_rule)
            elif (check := self._cell_check(rule, col)) is not None:
                checks.append(check)
        return checks

    def _row_rule(self, rule: Rule, col: Column) -> RowRule | None:
        """The whole-row check of ``rule``, if it reads other columns of the row."""
        if isinstance(rule, RangeRule):
            dynamic = any(b is not None and b.year_of is not None for b in (rule.min, rule.max))
            return _row_range(rule, col) if dynamic else None
        if isinstance(rule, DateOrderRule):
            return _date_order(rule, col)
        if isinstance(rule, RequiredIffRule):
            return _required_iff(rule, col)
        if isinstance(rule, ItemRangeRule):
            return _item_range(rule, col, self.spec)
        return None

    def _cell_check(self, rule: Rule, col: Column) -> Callable[[Any], None] | None:
        """The single-value check of ``rule`` (None: nothing to check on its own)."""
        if isinstance(rule, RangeRule):  # a constant range (one that reads the row is a row rule)
            return _constant_range(rule, col)
        if isinstance(rule, RegexRule):
            return _regex_check(rule.pattern)
        if isinstance(rule, EnumRule):
            return _enum_check(rule.values, "enum")
        if isinstance(rule, ItemCodeRule):
            codes = tuple(self.spec.item_ranges())
            return _enum_check(codes, "item_code", f"is not one of the {len(codes)} item codes")
        if isinstance(rule, NotInFutureRule):
            return _not_in_future_check(self.cutoff) if self.cutoff is not None else None
        if isinstance(rule, NamedRule):
            return self._named_check(rule.name)
        return None

    def _named_check(self, name: str) -> Callable[[Any], None] | None:
        if name == "not_blank":
            return _not_blank
        if name == "fnr_check_digits":
            return self._fnr_check()
        if name == "enrolled_participant":
            enrolled = self.enrolled
            if enrolled is None:
                return None

            def check_enrolled(value: str) -> None:
                if value not in enrolled:
                    raise _Bad("enrolled_participant", "is not an enrolled participant")

            return check_enrolled
        if name == "unique":
            return None  # across rows: see track_unique / check_delivery
        raise ValueError(f"no implementation for the named rule {name!r}")

    def _fnr_check(self) -> Callable[[str], None]:
        memo = self._fnr_memo
        get = memo.get

        def check_fnr(value: str) -> None:
            ok = get(value)
            if ok is None:
                if len(memo) >= _FNR_MEMO_MAX:
                    memo.clear()
                ok = memo[value] = has_valid_check_digits(value)
            if not ok:
                if len(value) == 11 and value.isascii() and value.isdigit():
                    raise _Bad("fnr_check_digits", "has wrong mod-11 check digits")
                raise _Bad("fnr_check_digits", "is not an 11-digit fnr")

        return check_fnr

    # run --------------------------------------------------------------------------------

    def _run(
        self, row: Mapping[str, str | None], line: int | None, *, track: bool = True
    ) -> tuple[dict[str, Any], list[Violation] | None]:
        """Typed values (``_INVALID`` for a broken cell) and the violations, None when none."""
        values: dict[str, Any] = {}
        bad: list[Violation] | None = None
        get = row.get
        for name, cell, nullable in self._cells:
            raw = get(name)
            if not raw:
                values[name] = None
                if not nullable:
                    bad = bad if bad is not None else []
                    bad.append(
                        self._violation(line, name, raw, "not_null", "is not allowed: the column is NOT NULL")
                    )
                continue
            if "\x00" in raw:
                values[name] = _INVALID
                bad = bad if bad is not None else []
                bad.append(
                    self._violation(
                        line, name, raw, "nul_byte", "contains a NUL byte, which no column allows"
                    )
                )
                continue
            if cell is None:
                values[name] = raw
                continue
            try:
                values[name] = cell(raw)
            except _Bad as exc:
                values[name] = _INVALID
                bad = bad if bad is not None else []
                bad.append(self._violation(line, name, raw, exc.rule, exc.detail))
        for rule in self._row_rules:
            found = rule(values)
            if found is not None:
                column, rule_id, detail = found
                bad = bad if bad is not None else []
                bad.append(self._violation(line, column, get(column), rule_id, detail))
        for name, seen in self._unique if track else ():
            value = values[name]
            if value is None or value is _INVALID:
                continue
            first = seen.get(value)
            if first is None:
                seen[value] = line if line is not None else 0
            else:
                bad = bad if bad is not None else []
                where = f"line {first}" if first else "an earlier row"
                bad.append(
                    self._violation(line, name, get(name), "unique", f"is a duplicate: first on {where}")
                )
        return values, bad

    def _violation(self, line: int | None, column: str, raw: str | None, rule: str, detail: str) -> Violation:
        return _make_violation(
            self.source,
            self.delivery_id,
            self.file,
            line,
            column,
            raw,
            rule,
            detail,
            redact=column in self._redacted,
        )

    def check(self, row: Mapping[str, str | None], line: int | None = None) -> list[Violation]:
        """The row's violations (empty when it keeps every rule). ``line``: its physical line."""
        bad = self._run(row, line)[1]
        return bad if bad is not None else []

    def check_and_parse(
        self, row: Mapping[str, str | None], line: int | None = None
    ) -> tuple[dict[str, Any], list[Violation]]:
        """Typed values (None for NULL and for cells that broke a rule) and the violations."""
        values, bad = self._run(row, line)
        if bad is None:
            return values, []
        return {k: (None if v is _INVALID else v) for k, v in values.items()}, bad

    def parse(self, row: Mapping[str, str | None]) -> dict[str, Any]:
        """Typed values by column: str, int, Decimal, date, aware datetime, bool, or None (NULL).

        Raises :class:`RowInvalid` (a ``ValueError``) when the row breaks a rule. Does not
        record the row for ``track_unique``: parsing a checked row again is no duplicate.
        """
        values, bad = self._run(row, None, track=False)
        if bad:
            raise RowInvalid(bad)
        return values


def _row_rule_columns(spec: FileSpec) -> tuple[str, ...]:
    """Every column a rule across cells reads: its own and the one it refers to."""
    names: dict[str, None] = {}
    for col in spec.columns:
        for rule in col.rules:
            refs: list[str | None] = []
            if isinstance(rule, RangeRule):
                refs = [b.year_of for b in (rule.min, rule.max) if b is not None and b.year_of is not None]
                if not refs:
                    continue  # a constant range is a rule of one cell
            elif isinstance(rule, DateOrderRule):
                refs = [rule.other]
            elif isinstance(rule, RequiredIffRule):
                refs = [rule.column]
            elif isinstance(rule, ItemRangeRule):
                refs = [rule.item_column]
            else:
                continue
            names[col.name] = None
            names.update((r, None) for r in refs if r is not None)
    return tuple(names)


def _cutoff_date(extracted_at: dt.datetime | dt.date | None) -> dt.date | None:
    if extracted_at is None:
        return None
    if isinstance(extracted_at, dt.datetime):
        if extracted_at.tzinfo is None:
            raise ValueError("extracted_at must be timezone-aware")
        return extracted_at.astimezone(dt.UTC).date()
    return extracted_at
