"""What a contract check finds: violations, the manifest as read, the delivery's report, and the
wording of every message (file, line, column and rule; never an fnr, nor a value that looks like
one, nor a participant ID).
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from outcomes.contracts.spec import Contract

# A value that looks like an fnr (11 digits, perhaps split 6 + 5) is never echoed.
_FNR_LIKE = re.compile(r"\d{6}\s?\d{5}")

#: Columns whose values say whom a row is about: never echoed in a message, nor kept in the gate's
#: results (``quality.suite``). A message names the file, line and column instead, so no log,
#: alert, XCom or ledger row holds a person's identifier (and an erasure has nothing to chase
#: outside the rows themselves).
IDENTIFYING_COLUMNS = frozenset({"fnr", "participant_id", "person_pseudonym"})


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


@functools.cache
def _participant_like() -> re.Pattern[str]:
    """The trial's participant ID as the contract's rule on ``enrolment.csv`` states it, found
    anywhere in a text (a job ID made from one, a data row read as a header)."""
    from outcomes.contracts.spec import load_contract

    for column in load_contract().file("trial", "enrolment.csv").columns:
        if column.name == "participant_id":
            for rule in column.rules:
                if rule.kind == "regex":
                    return re.compile(str(getattr(rule, "pattern", "")).removeprefix("^").removesuffix("$"))
    raise LookupError("the contract has no regex rule on the trial's participant_id")


def looks_identifying(value: str) -> bool:
    """True when ``value`` holds an fnr's shape or a participant ID: never shown or stored."""
    return looks_like_fnr(value) or _participant_like().search(value) is not None


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

    The value is redacted (and ``value`` None) when ``redact`` is set or it holds an fnr's shape
    or a participant ID.
    """
    value: str | None = raw
    if raw is None or raw == "":
        shown = "(empty)"
    elif redact or looks_identifying(raw):
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
    if value is not None and looks_identifying(value):
        value = None
    if column is not None and looks_identifying(column):  # a header name can be data by mistake
        column = None
    where = _where(source, delivery_id, file, line, column)
    return Violation(
        source, delivery_id, file, line, column, value, rule, f"{where}: {detail} (rule: {rule})"
    )


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
