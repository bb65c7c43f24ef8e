"""Check a delivery against its source contract: whole-delivery checks, then every row, streamed.

Two entry points:

- :class:`RowChecker` validates (and types) one row of one file. It compiles the file's column
  rules into closures once, so a streaming loader can call it for millions of rows.
- :func:`check_delivery` checks a delivery folder ``<root>/<source>/<delivery_id>/``: the
  delivery_id, the manifest, each listed file (presence, sha256, row count, header, UTF-8, CSV
  syntax), then streams every row through a :class:`RowChecker` and the cross-row uniqueness
  rules. It reads each file once and keeps nothing but the violations.

Privacy: an fnr never appears in a :class:`Violation` (``value`` is None and the message says
"value redacted"); the same holds for any value that merely looks like one (11 digits).
This module does not decide what to quarantine or load: that is the loader's job.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import json
import re
from collections.abc import Callable, Container, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import IO, Any, Protocol, TypeAlias

from outcomes.contracts import columnar
from outcomes.contracts.fnr import has_valid_check_digits
from outcomes.contracts.spec import (
    Column,
    Contract,
    DateOrderRule,
    EnumRule,
    FileSpec,
    ItemCodeRule,
    ItemRangeRule,
    ManifestField,
    NamedRule,
    NotInFutureRule,
    RangeRule,
    RegexRule,
    RequiredIffRule,
    SourceSpec,
    load_contract,
)

__all__ = [
    "DeliveryPath",
    "DeliveryReport",
    "Manifest",
    "ManifestFile",
    "RowChecker",
    "RowInvalid",
    "Violation",
    "check_delivery",
    "parse_timestamp",
]

# A value that looks like an fnr (11 digits, perhaps split 6 + 5) is never echoed.
_FNR_LIKE = re.compile(r"\d{6}\s?\d{5}")
_DECIMAL_RE = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")
_FNR_MEMO_MAX = 200_000
_BOOLS = {"true": True, "false": False}


# --- results -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Violation:
    """One broken rule: where (source, delivery, file, physical line, column), what, and why.

    ``line`` is the physical line in the file (the header is line 1; a record spanning lines is
    reported at its first line), None for whole-file or whole-delivery problems. ``value`` is the
    raw field, or None when unknown or redacted (always for an fnr). ``rule`` is a short id such as
    ``enum`` or ``sha256_mismatch``; ``message`` is one sentence naming all of it.
    """

    source: str
    delivery_id: str
    file: str | None
    line: int | None
    column: str | None
    value: str | None
    rule: str
    message: str


@dataclass(frozen=True, slots=True)
class ManifestFile:
    """One entry of the manifest's ``files`` list."""

    name: str
    rows: int
    sha256: str


@dataclass(frozen=True, slots=True)
class Manifest:
    """A parsed, schema-valid ``_manifest.json``."""

    source: str
    delivery_id: str
    extracted_at: dt.datetime
    mode: str
    files: tuple[ManifestFile, ...]


@dataclass
class DeliveryReport:
    """What :func:`check_delivery` found.

    ``file_errors`` are whole-delivery problems (any one quarantines the delivery);
    ``row_violations`` are per-row problems. ``rows_checked`` counts the data rows read per file
    (the number compared with the manifest); ``bad_rows`` the rows with at least one violation.
    """

    source: str
    delivery_id: str
    file_errors: list[Violation] = field(default_factory=list)
    row_violations: list[Violation] = field(default_factory=list)
    rows_checked: dict[str, int] = field(default_factory=dict)
    bad_rows: dict[str, int] = field(default_factory=dict)
    manifest: Manifest | None = None

    @property
    def ok(self) -> bool:
        """True when the delivery has neither file errors nor row violations."""
        return not self.file_errors and not self.row_violations

    @property
    def rows_total(self) -> int:
        """Data rows read over all files."""
        return sum(self.rows_checked.values())

    @property
    def quarantine_share(self) -> float:
        """Share (0..1) of the delivery's rows with a violation; 0.0 for an empty delivery."""
        total = self.rows_total
        return sum(self.bad_rows.values()) / total if total else 0.0


class RowInvalid(ValueError):
    """Raised by :meth:`RowChecker.parse` for a row that breaks a rule."""

    def __init__(self, violations: list[Violation]) -> None:
        super().__init__(violations[0].message if violations else "invalid row")
        self.violations = violations


# --- messages ------------------------------------------------------------------------------


def _where(source: str, delivery_id: str, file: str | None, line: int | None, column: str | None) -> str:
    text = f"{source}/{delivery_id}"
    if file:
        text += f" {file}"
    if line is not None:
        text += f" line {line}"
    if column:
        text += f", column {column}"
    return text


def looks_like_fnr(value: str) -> bool:
    """True when ``value`` contains something shaped like an fnr (11 digits, maybe 6 + space + 5):
    such text is never shown or stored as it is."""
    return _FNR_LIKE.search(value) is not None


def _make_violation(
    source: str,
    delivery_id: str,
    file: str | None,
    line: int | None,
    column: str | None,
    raw: str | None,
    rule: str,
    detail: str,
    *,
    redact: bool = False,
) -> Violation:
    """A violation whose message is ``<where>: <value> <detail> (rule: <rule>)``.

    The value is redacted (and ``value`` None) when ``redact`` is set or it looks like an fnr.
    """
    value: str | None = raw
    if raw is None or raw == "":
        shown = "(empty)"
    elif redact or looks_like_fnr(raw):
        shown = f"value redacted ({len(raw)} characters)"
        value = None
    else:
        shown = repr(raw)
    where = _where(source, delivery_id, file, line, column)
    return Violation(
        source=source,
        delivery_id=delivery_id,
        file=file,
        line=line,
        column=column,
        value=value,
        rule=rule,
        message=f"{where}: {shown} {detail} (rule: {rule})",
    )


def _file_violation(
    source: str,
    delivery_id: str,
    file: str | None,
    rule: str,
    detail: str,
    *,
    line: int | None = None,
    column: str | None = None,
    value: str | None = None,
) -> Violation:
    """A whole-file or whole-delivery violation: ``<where>: <detail> (rule: <rule>)``."""
    if value is not None and looks_like_fnr(value):
        value = None
    if column is not None and looks_like_fnr(column):  # a header name can be data by mistake
        column = None
    where = _where(source, delivery_id, file, line, column)
    return Violation(
        source, delivery_id, file, line, column, value, rule, f"{where}: {detail} (rule: {rule})"
    )


# --- typed values --------------------------------------------------------------------------


class _Bad(Exception):
    """A cell breaks a rule; ``detail`` continues the sentence after the value."""

    __slots__ = ("detail", "rule")

    def __init__(self, rule: str, detail: str) -> None:
        self.rule = rule
        self.detail = detail


_INVALID: Any = object()  # the typed value of a cell that broke a rule
Cell: TypeAlias = Callable[[str], Any]
RowRule: TypeAlias = Callable[[dict[str, Any]], "tuple[str, str, str] | None"]


def _parse_int(raw: str) -> int:
    if raw.isascii() and (raw.isdigit() or (raw[0] == "-" and raw[1:].isdigit())):
        return int(raw)
    raise _Bad("type", "is not an integer")


def _parse_decimal(raw: str) -> Decimal:
    if raw.isascii() and _DECIMAL_RE.fullmatch(raw):
        return Decimal(raw)
    raise _Bad("type", "is not a decimal number (digits, optional '.' and digits)")


def _parse_date(raw: str) -> dt.date:
    if len(raw) == 10 and raw[4] == "-" and raw[7] == "-" and raw.isascii():
        try:
            return dt.date.fromisoformat(raw)
        except ValueError:
            pass
    raise _Bad("type", "is not a date (YYYY-MM-DD)")


def parse_timestamp(raw: str) -> dt.datetime | None:
    """An ISO 8601 timestamp with an offset or ``Z`` as an aware datetime; None if it is not one."""
    if len(raw) >= 16 and raw[4] == "-" and raw[7] == "-" and raw[10] in "Tt" and raw.isascii():
        try:
            value = dt.datetime.fromisoformat(raw)
        except ValueError:
            return None
        if value.tzinfo is None or "," in raw:  # PostgreSQL reads only '.' before the fraction
            return None
        offset = value.utcoffset()
        if offset is not None and abs(offset) >= _MAX_OFFSET:  # PostgreSQL's limit is +/-15:59
            return None
        return value
    return None


_MAX_OFFSET = dt.timedelta(hours=16)


def _parse_timestamp(raw: str) -> dt.datetime:
    value = parse_timestamp(raw)
    if value is None:
        raise _Bad("type", "is not an ISO 8601 timestamp with an offset or Z")
    return value


def _parse_bool(raw: str) -> bool:
    value = _BOOLS.get(raw)
    if value is None:
        raise _Bad("type", "is not a bool (true or false)")
    return value


_PARSERS: dict[str, Cell | None] = {
    "text": None,
    "int": _parse_int,
    "decimal": _parse_decimal,
    "date": _parse_date,
    "timestamp": _parse_timestamp,
    "bool": _parse_bool,
}


# --- compiling a file's rules --------------------------------------------------------------


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
            if c.name == "fnr" or any(r.kind == "fnr_check_digits" for r in c.rules)
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
            if isinstance(rule, RegexRule):
                checks.append(_regex_check(rule.pattern))
            elif isinstance(rule, EnumRule):
                checks.append(_enum_check(rule.values, "enum"))
            elif isinstance(rule, ItemCodeRule):
                codes = tuple(self.spec.item_ranges())
                checks.append(_enum_check(codes, "item_code", f"is not one of the {len(codes)} item codes"))
            elif isinstance(rule, RangeRule):
                dynamic = any(b is not None and b.year_of is not None for b in (rule.min, rule.max))
                if dynamic:
                    row_rules.append(_row_range(rule, col))
                else:
                    checks.append(_constant_range(rule, col))
            elif isinstance(rule, NotInFutureRule):
                if self.cutoff is not None:
                    checks.append(_not_in_future_check(self.cutoff))
            elif isinstance(rule, DateOrderRule):
                row_rules.append(_date_order(rule, col))
            elif isinstance(rule, RequiredIffRule):
                row_rules.append(_required_iff(rule, col))
            elif isinstance(rule, ItemRangeRule):
                row_rules.append(_item_range(rule, col, self.spec))
            elif isinstance(rule, NamedRule):
                named = self._named_check(rule.name)
                if named is not None:
                    checks.append(named)
        return checks

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


# --- the delivery --------------------------------------------------------------------------


class DeliveryPath(Protocol):
    """The little of a path the checker uses: ``pathlib.Path``, ``upath.UPath`` and Airflow's
    ``ObjectStoragePath`` all fit, so deliveries can live on any fsspec file system."""

    @property
    def name(self) -> str: ...

    @property
    def parent(self) -> Any: ...

    def __truediv__(self, key: str) -> Any: ...

    def exists(self) -> bool: ...

    def iterdir(self) -> Any: ...

    def open(self, mode: str) -> Any: ...


class _Utf8Error(Exception):
    def __init__(self, line: int, offset: int, byte: int) -> None:
        super().__init__(line)
        self.line, self.offset, self.byte = line, offset, byte


class _Lines:
    """Decoded lines of a binary file, hashing every byte and counting physical lines."""

    def __init__(self, fh: IO[bytes], hasher: Any) -> None:
        self.fh = fh
        self.hasher = hasher

    def __iter__(self) -> Iterator[str]:
        update = self.hasher.update
        for count, raw in enumerate(self.fh, 1):
            update(raw)
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise _Utf8Error(count, exc.start, raw[exc.start]) from None
            if count == 1 and text.startswith("\ufeff"):
                text = text[1:]
            yield text

    def drain(self) -> None:
        """Hash what was not read (after a parse error), so sha256 can still be compared."""
        for chunk in iter(lambda: self.fh.read(1 << 20), b""):
            self.hasher.update(chunk)


class _CsvProblem(Exception):
    def __init__(self, line: int, detail: str) -> None:
        super().__init__(detail)
        self.line, self.detail = line, detail


class _Delivery:
    """State while checking one delivery: the report and violation helpers."""

    def __init__(self, contract: Contract, source: str, delivery_id: str, report: DeliveryReport) -> None:
        self.contract = contract
        self.source = source
        self.delivery_id = delivery_id
        self.report = report

    def error(self, file: str | None, rule: str, detail: str, **where: Any) -> None:
        self.report.file_errors.append(
            _file_violation(self.source, self.delivery_id, file, rule, detail, **where)
        )


#: Called for every data row of a file whose header is right: (file, line, row, violations).
#: ``row`` maps the header's column names to the raw field text; ``violations`` is empty for a
#: valid row. A loader passes one to stream rows into the database while they are checked.
RowSink = Callable[[str, int, dict[str, str], list[Violation]], None]


def check_delivery(
    delivery_dir: DeliveryPath | str,
    contract: Contract | None = None,
    *,
    enrolled_participant_ids: Container[str] | None = None,
    extracted_at: dt.datetime | None = None,
    row_sink: RowSink | None = None,
) -> DeliveryReport:
    """Check the delivery in ``delivery_dir`` (``<root>/<source>/<delivery_id>/``) end to end.

    Whole-delivery problems go to ``file_errors``, row problems to ``row_violations``; nothing is
    raised for bad input. ``extracted_at`` defaults to the manifest's; ``enrolled_participant_ids``
    None skips the "an enrolled participant" rule. ``row_sink`` receives every row as it is
    checked (file problems such as a wrong sha256 are only known at the end: a sink must be able
    to throw away what it received, e.g. by rolling back a transaction).
    """
    if isinstance(delivery_dir, str):
        from pathlib import Path

        delivery_dir = Path(delivery_dir)
    contract = contract if contract is not None else load_contract()
    delivery_id = delivery_dir.name
    source = delivery_dir.parent.name
    report = DeliveryReport(source=source, delivery_id=delivery_id)
    ctx = _Delivery(contract, source, delivery_id, report)

    if not re.fullmatch(contract.delivery.delivery_id_pattern, delivery_id):
        ctx.error(
            None,
            "delivery_id_pattern",
            f"the delivery folder name {delivery_id!r} does not match "
            f"{contract.delivery.delivery_id_pattern}",
        )
    spec = contract.sources.get(source)
    if spec is None:
        ctx.error(
            None,
            "unknown_source",
            f"the source folder {source!r} is none of {', '.join(contract.sources)}",
        )
    manifest = _read_manifest(delivery_dir, ctx, spec)
    report.manifest = manifest
    if spec is None:
        return report

    manifest_name = contract.delivery.manifest.name
    listed: dict[str, ManifestFile] = {}
    targets: list[tuple[FileSpec, ManifestFile | None]]
    if manifest is not None:
        listed = {f.name: f for f in manifest.files}
        for name in listed:
            if name not in spec.files:
                ctx.error(
                    manifest_name,
                    "unexpected_file",
                    f"lists {name!r}, which is not a file of source {source} ({', '.join(spec.files)})",
                )
        for fspec in spec.files.values():
            if fspec.required and fspec.name not in listed:
                ctx.error(
                    manifest_name,
                    "required_file_not_listed",
                    f"does not list {fspec.name}, which every {source} delivery must contain",
                )
        for name in _unlisted_csv(delivery_dir, listed):
            ctx.error(name, "unlisted_file", "is in the delivery folder but not in the manifest")
        targets = [(spec.files[n], m) for n, m in listed.items() if n in spec.files]
    else:
        # No usable manifest: the delivery is quarantined anyway; still report what the files hold.
        targets = [(f, None) for f in spec.files.values() if (delivery_dir / f.name).exists()]

    cutoff = extracted_at if extracted_at is not None else (manifest.extracted_at if manifest else None)
    for fspec, mfile in targets:
        checker = RowChecker(
            contract,
            source,
            fspec.name,
            delivery_id=delivery_id,
            extracted_at=cutoff,
            enrolled_participant_ids=enrolled_participant_ids,
            track_unique=True,
        )
        path = delivery_dir / fspec.name
        if columnar.can_take(checker, row_sink) and path.exists():
            # The fast path for plain files; anything else (quotes, a broken line, a wrong
            # header ...) is read again row by row from the start, which words every problem.
            # The checker keeps no state across rows here (no `unique` column): it serves again.
            found = len(report.row_violations)
            done = columnar.check_file(path, fspec, checker, row_sink, report.row_violations)
            if done is not None:
                digest, rows, bad = done
                _reconcile(ctx, fspec.name, mfile, digest, rows, bad, complete=True)
                continue
            del report.row_violations[found:]
            if row_sink is not None:
                row_sink.discard(fspec.name)  # type: ignore[attr-defined]
        _check_file(path, fspec, mfile, checker, ctx, row_sink)
    return report


def _unlisted_csv(delivery_dir: DeliveryPath, listed: Mapping[str, ManifestFile]) -> list[str]:
    try:
        names = sorted(p.name for p in delivery_dir.iterdir())
    except (OSError, NotImplementedError):
        return []
    return [n for n in names if n.lower().endswith(".csv") and n not in listed]


def _check_field(value: Any, spec: ManifestField, path: str, problems: list[tuple[str, str]]) -> None:
    """Check one manifest value against its declared field; append (key, problem)."""
    if spec.type == "text":
        if not isinstance(value, str) or not value:
            problems.append((path, "must be a non-empty string"))
            return
        if spec.enum is not None and value not in spec.enum:
            problems.append((path, f"must be one of {', '.join(spec.enum)}, got {value!r}"))
        if spec.regex is not None and not re.fullmatch(spec.regex, value):
            problems.append((path, f"must match {spec.regex}"))
    elif spec.type == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            problems.append((path, "must be an integer"))
        elif spec.min is not None and value < spec.min:
            problems.append((path, f"must be >= {spec.min}"))
    elif spec.type == "timestamp":
        if not isinstance(value, str) or parse_timestamp(value) is None:
            problems.append((path, "must be an ISO 8601 timestamp with an offset or Z"))
    elif spec.type == "list" and not isinstance(value, list):
        problems.append((path, "must be a list"))


def _check_keys(
    doc: dict[str, Any], fields: tuple[ManifestField, ...], additional: bool, prefix: str
) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    for f in fields:
        if f.name not in doc:
            problems.append((prefix + f.name, "is missing"))
        else:
            _check_field(doc[f.name], f, prefix + f.name, problems)
    if not additional:
        known = {f.name for f in fields}
        for key in doc:
            if key not in known:
                problems.append((prefix + str(key), "is not a manifest key"))
    return problems


def _read_manifest(delivery_dir: DeliveryPath, ctx: _Delivery, spec: SourceSpec | None) -> Manifest | None:
    """Parse and validate ``_manifest.json``; report problems and return None when unusable."""
    mspec = ctx.contract.delivery.manifest
    name = mspec.name
    path = delivery_dir / name
    if not path.exists():
        ctx.error(name, "manifest_missing", "is missing: the delivery is not complete")
        return None
    with path.open("rb") as fh:
        data = fh.read()
    try:
        doc = json.loads(data.decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        ctx.error(name, "manifest_unparseable", f"is not UTF-8 (bad byte at offset {exc.start})")
        return None
    except json.JSONDecodeError as exc:
        ctx.error(
            name,
            "manifest_unparseable",
            f"is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}",
            line=exc.lineno,
        )
        return None
    if not isinstance(doc, dict):
        ctx.error(name, "manifest_schema", f"must be a JSON object, not {type(doc).__name__}")
        return None
    problems = _check_keys(doc, mspec.fields, mspec.additional_keys, "")
    files = doc.get("files")
    entries: list[ManifestFile] = []
    if isinstance(files, list):
        seen: set[str] = set()
        for i, entry in enumerate(files):
            prefix = f"files[{i}]."
            if not isinstance(entry, dict):
                problems.append((f"files[{i}]", "must be an object"))
                continue
            found = _check_keys(entry, mspec.file_fields, mspec.additional_keys, prefix)
            problems.extend(found)
            if found:
                continue
            if entry["name"] in seen:
                problems.append((prefix + "name", f"lists {entry['name']!r} twice"))
            seen.add(entry["name"])
            entries.append(ManifestFile(entry["name"], entry["rows"], entry["sha256"].lower()))
    for key, problem in problems:
        ctx.error(name, "manifest_schema", f"key {key} {problem}", column=key)
    if problems:
        return None
    manifest = Manifest(
        source=doc["source"],
        delivery_id=doc["delivery_id"],
        extracted_at=_parse_timestamp(doc["extracted_at"]),
        mode=doc["mode"],
        files=tuple(entries),
    )
    if manifest.source != ctx.source:
        ctx.error(
            name,
            "manifest_source_mismatch",
            f"says source {manifest.source!r}, but the delivery is in folder {ctx.source!r}",
            column="source",
            value=manifest.source,
        )
    if manifest.delivery_id != ctx.delivery_id:
        ctx.error(
            name,
            "manifest_delivery_id_mismatch",
            f"says delivery_id {manifest.delivery_id!r}, but the folder is {ctx.delivery_id!r}",
            column="delivery_id",
            value=manifest.delivery_id,
        )
    if spec is not None and manifest.mode != spec.mode:
        ctx.error(
            name,
            "manifest_mode_mismatch",
            f"says mode {manifest.mode!r}, but source {spec.name} delivers {spec.mode!r}",
            column="mode",
            value=manifest.mode,
        )
    return manifest


def _header_problems(header: list[str], fspec: FileSpec) -> list[tuple[str, str, str | None, str]]:
    """(rule, column, value, detail) for each way the header differs from the contract."""
    import difflib

    expected = fspec.column_names
    problems: list[tuple[str, str, str | None, str]] = []
    seen: set[str] = set()
    for h in header:
        if h in seen:
            problems.append(("header_duplicate_column", h, h, f"names column {h!r} twice"))
        seen.add(h)
    missing = [c for c in expected if c not in seen]
    extra = [h for h in dict.fromkeys(header) if h not in expected]
    for h in list(extra):
        close = difflib.get_close_matches(h, missing, n=1, cutoff=0.6)
        if close:
            extra.remove(h)
            missing.remove(close[0])
            shown = "a redacted name" if looks_like_fnr(h) else repr(h)
            problems.append(
                ("header_misspelt_column", close[0], h, f"has {shown} where the contract has {close[0]!r}")
            )
    for c in missing:
        problems.append(("header_missing_column", c, None, f"lacks column {c!r}"))
    for h in extra:
        shown = "a redacted name" if looks_like_fnr(h) else repr(h)
        problems.append(("header_extra_column", h, h, f"has column {shown}, which is not in the contract"))
    return problems


def _check_file(
    path: Any,
    fspec: FileSpec,
    mfile: ManifestFile | None,
    checker: RowChecker,
    ctx: _Delivery,
    row_sink: RowSink | None = None,
) -> None:
    """Stream one file: hash, decode, parse, check header and rows; compare with the manifest."""
    name = fspec.name
    report = ctx.report
    if not path.exists():
        ctx.error(name, "file_missing", "is listed in the manifest but missing from the delivery")
        return
    hasher = hashlib.sha256()
    rows = 0
    bad = 0
    complete = False
    end = 0  # the physical line the last complete record ended on
    violations = report.row_violations
    with path.open("rb") as fh:
        lines = _Lines(fh, hasher)
        reader = csv.reader(lines, strict=True)
        try:
            header = next(reader, None)
            if header is None:
                ctx.error(name, "empty_file", "is empty: no header row")
                complete = True
            else:
                problems = _header_problems(header, fspec)
                for rule, column, value, detail in problems:
                    ctx.error(name, rule, f"header {detail}", line=1, column=column, value=value)
                check = checker.check if not problems else None
                unchecked = (
                    [
                        _file_violation(
                            ctx.source,
                            ctx.delivery_id,
                            name,
                            "header_unusable",
                            "row not checked: the file's header does not match the contract",
                        )
                    ]
                    if problems
                    else []
                )
                keys = tuple(header)
                width = len(keys)
                end = reader.line_num
                for fields in reader:
                    start = end + 1
                    end = reader.line_num
                    if len(fields) != width:
                        if not fields:
                            raise _CsvProblem(start, "is empty (RFC 4180 has no blank lines)")
                        raise _CsvProblem(start, f"has {len(fields)} fields, the header has {width}")
                    rows += 1
                    if check is not None:
                        row = dict(zip(keys, fields))  # noqa: B905 (lengths checked)
                        found = check(row, start)
                        if found:
                            bad += 1
                            violations.extend(found)
                        if row_sink is not None:
                            row_sink(name, start, row, found)
                    elif row_sink is not None:  # kept (in quarantine) even though it cannot be checked
                        row_sink(name, start, dict(zip(keys, fields)), unchecked)  # noqa: B905
                complete = True
        except _Utf8Error as exc:
            ctx.error(
                name,
                "not_utf8",
                f"is not UTF-8: byte 0x{exc.byte:02x} at byte {exc.offset + 1} of line {exc.line}",
                line=exc.line,
            )
        except _CsvProblem as exc:
            ctx.error(name, "csv_parse", f"is not valid CSV: line {exc.line} {exc.detail}", line=exc.line)
        except csv.Error as exc:
            start, at = end + 1, reader.line_num
            where = f"line {start}" if at <= start else f"the record starting on line {start}"
            reason = str(exc)
            if "new-line character seen in unquoted field" in reason:
                reason = "a carriage return not followed by a line feed, outside quotes"
            ctx.error(name, "csv_parse", f"is not valid CSV: {where}: {reason}", line=start)
        lines.drain()
    _reconcile(ctx, name, mfile, hasher.hexdigest(), rows, bad, complete)


def _reconcile(
    ctx: _Delivery, name: str, mfile: ManifestFile | None, digest: str, rows: int, bad: int, complete: bool
) -> None:
    """Record a file's row counts; compare its sha256 and rows with the manifest's claims."""
    ctx.report.rows_checked[name] = rows
    ctx.report.bad_rows[name] = bad
    if mfile is None:
        return
    if digest != mfile.sha256:
        ctx.error(name, "sha256_mismatch", f"has sha256 {digest}, the manifest says {mfile.sha256}")
    if complete and rows != mfile.rows:
        ctx.error(name, "row_count_mismatch", f"has {rows} data rows, the manifest says {mfile.rows}")
