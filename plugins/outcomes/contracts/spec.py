"""The source contracts as typed, immutable Python objects, loaded from ``sources.yaml``.

``sources.yaml`` is the one home of the source contracts (docs/sources.md is generated from it).
:func:`load_contract` parses and validates it (:mod:`outcomes.contracts.parse`) once per path and
caches the result, so callers can call it freely. Everything here is declarative;
:mod:`outcomes.contracts.check` turns it into validators.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any, ClassVar, Literal, TypeAlias

__all__ = [
    "COLUMN_TYPES",
    "NAMED_RULES",
    "Bound",
    "Column",
    "ColumnType",
    "Contract",
    "ContractError",
    "DateOrderRule",
    "Defaults",
    "DeliveryProtocol",
    "EnumRule",
    "FileSpec",
    "ItemCodeRule",
    "ItemRangeRule",
    "ItemSpec",
    "ManifestField",
    "ManifestSpec",
    "NamedRule",
    "NotInFutureRule",
    "RangeRule",
    "RegexRule",
    "RequiredIffRule",
    "Rule",
    "SourceSpec",
    "default_contract_path",
    "load_contract",
]

ColumnType: TypeAlias = Literal["text", "int", "decimal", "date", "timestamp", "bool"]
COLUMN_TYPES: tuple[ColumnType, ...] = ("text", "int", "decimal", "date", "timestamp", "bool")
NAMED_RULES: tuple[str, ...] = ("not_blank", "unique", "fnr_check_digits", "enrolled_participant")
Number: TypeAlias = int | Decimal


class ContractError(ValueError):
    """``sources.yaml`` is malformed: an unknown key, type or rule, or a dangling reference."""


# --- rules ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Bound:
    """One end of a range: a constant, or ``year(<year_of>) + offset`` of the same row."""

    value: Number | None = None
    year_of: str | None = None
    offset: int = 0

    def describe(self) -> str:
        """The bound as written in the contract, e.g. ``1900`` or ``year(randomised_on) - 16``."""
        if self.year_of is None:
            return str(self.value)
        if self.offset == 0:
            return f"year({self.year_of})"
        sign = "+" if self.offset > 0 else "-"
        return f"year({self.year_of}) {sign} {abs(self.offset)}"


@dataclass(frozen=True, slots=True)
class RegexRule:
    """The whole value matches ``pattern``."""

    kind: ClassVar[str] = "regex"
    pattern: str


@dataclass(frozen=True, slots=True)
class EnumRule:
    """The (typed) value is one of ``values``."""

    kind: ClassVar[str] = "enum"
    values: tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class RangeRule:
    """``min <= value <= max`` (strict where ``exclusive_*``); a missing bound is open."""

    kind: ClassVar[str] = "range"
    min: Bound | None
    max: Bound | None
    exclusive_min: bool = False
    exclusive_max: bool = False

    def describe(self) -> str:
        """The range in the contract's notation, e.g. ``0 < value <= 80`` or ``1 .. 100``."""
        lo = self.min.describe() if self.min else None
        hi = self.max.describe() if self.max else None
        if not self.exclusive_min and not self.exclusive_max and lo and hi:
            return f"{lo}..{hi}"
        parts = []
        if lo is not None:
            parts.append(f"{lo} {'<' if self.exclusive_min else '<='}")
        parts.append("value")
        if hi is not None:
            parts.append(f"{'<' if self.exclusive_max else '<='} {hi}")
        return " ".join(parts)


@dataclass(frozen=True, slots=True)
class DateOrderRule:
    """``value <op> other`` for another date column of the row; skipped if either is NULL."""

    kind: ClassVar[str] = "date_order"
    op: Literal[">=", ">", "<=", "<"]
    other: str


@dataclass(frozen=True, slots=True)
class NotInFutureRule:
    """The date is on or before the UTC date of the delivery's ``extracted_at``."""

    kind: ClassVar[str] = "not_in_future"
    of: str = "extracted_at"


@dataclass(frozen=True, slots=True)
class RequiredIffRule:
    """The column is set exactly when ``column`` is set (``values`` None) or is in ``values``."""

    kind: ClassVar[str] = "required_iff"
    column: str
    values: tuple[str, ...] | None = None

    def describe(self) -> str:
        """The condition, e.g. ``followup_ended_on is set`` or ``status is COMPETITIVE or ...``."""
        if self.values is None:
            return f"{self.column} is set"
        return f"{self.column} is {' or '.join(self.values)}"


@dataclass(frozen=True, slots=True)
class ItemCodeRule:
    """The value is one of the codes of the file's item table."""

    kind: ClassVar[str] = "item_code"
    table: str


@dataclass(frozen=True, slots=True)
class ItemRangeRule:
    """The value lies within the range of the row's item (the ``item_column``) in the table."""

    kind: ClassVar[str] = "item_range"
    table: str
    item_column: str


@dataclass(frozen=True, slots=True)
class NamedRule:
    """A rule implemented in Python: one of :data:`NAMED_RULES`."""

    name: str

    @property
    def kind(self) -> str:
        """The rule's name is its kind."""
        return self.name


Rule: TypeAlias = (
    RegexRule
    | EnumRule
    | RangeRule
    | DateOrderRule
    | NotInFutureRule
    | RequiredIffRule
    | ItemCodeRule
    | ItemRangeRule
    | NamedRule
)


# --- files, sources, protocol --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Column:
    """One column of a delivered file: name, type, nullability and rules."""

    name: str
    type: ColumnType
    nullable: bool = False
    description: str = ""
    rules: tuple[Rule, ...] = ()

    def has_rule(self, kind: str) -> bool:
        """True when the column carries a rule of this kind (e.g. ``"unique"``)."""
        return any(r.kind == kind for r in self.rules)


@dataclass(frozen=True, slots=True)
class ItemSpec:
    """A group of questionnaire item codes sharing one value range."""

    instrument: str
    codes: tuple[str, ...]
    min: int
    max: int
    subscale: str | None = None


@dataclass(frozen=True, slots=True)
class FileSpec:
    """One CSV file of a source: its ordered columns, and the item table where it has one."""

    name: str
    grain: str
    columns: tuple[Column, ...]
    required: bool = False
    items: tuple[ItemSpec, ...] = ()

    @property
    def column_names(self) -> tuple[str, ...]:
        """The column names, in contract order."""
        return tuple(c.name for c in self.columns)

    def column(self, name: str) -> Column:
        """The column called ``name`` (``KeyError`` if there is none)."""
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(f"{self.name} has no column {name!r}")

    def item_ranges(self) -> dict[str, tuple[int, int]]:
        """Item code -> (min, max) of its values, from the item table."""
        return {code: (it.min, it.max) for it in self.items for code in it.codes}


@dataclass(frozen=True, slots=True)
class SourceSpec:
    """One source system: its delivery mode and its files."""

    name: str
    mode: Literal["full", "incremental"]
    files: Mapping[str, FileSpec]
    description: str = ""
    #: ``fnr``: rows name a person by national identity number, pseudonymised at the door and held
    #: in ``pending`` until enrolled; ``participant_id``: rows name an enrolled participant.
    keyed_by: Literal["fnr", "participant_id"] = "participant_id"
    #: ``ingest_<source>``'s default cron schedule (UTC).
    schedule: str = "0 0 * * *"
    #: How long the ingest sensor waits for a delivery.
    deadline_hours: float = 24.0
    #: A source whose newest delivery is older than this is late.
    freshness_days: float = 2.0
    #: What the source brings (Markdown), shown on its ingest DAG.
    doc: str = ""


@dataclass(frozen=True, slots=True)
class ManifestField:
    """One key of ``_manifest.json`` (or of one entry of its ``files`` list)."""

    name: str
    type: str
    enum: tuple[str, ...] | None = None
    regex: str | None = None
    min: int | None = None
    rule: str = ""


@dataclass(frozen=True, slots=True)
class ManifestSpec:
    """The manifest: its file name and the schema of its keys."""

    name: str
    fields: tuple[ManifestField, ...]
    file_fields: tuple[ManifestField, ...]
    additional_keys: bool = False
    written_last: bool = True
    encoding: str = "utf-8"


@dataclass(frozen=True, slots=True)
class DeliveryProtocol:
    """How every source delivers: folder layout, delivery_id, manifest and CSV format."""

    layout: str
    delivery_id_pattern: str
    modes: Mapping[str, str]
    manifest: ManifestSpec
    csv: Mapping[str, Any]
    formats: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class Defaults:
    """Configurable defaults the contract states."""

    quarantine_threshold: float = 0.05
    pending_retention_days: int = 120


@dataclass(frozen=True, slots=True)
class Contract:
    """All source contracts: delivery protocol, defaults and the sources with their files."""

    version: int
    defaults: Defaults
    delivery: DeliveryProtocol
    sources: Mapping[str, SourceSpec]
    path: str = field(default="", compare=False)

    def file(self, source: str, file: str) -> FileSpec:
        """The spec of ``file`` in ``source`` (``KeyError`` naming what is unknown)."""
        try:
            src = self.sources[source]
        except KeyError:
            raise KeyError(f"unknown source {source!r}") from None
        try:
            return src.files[file]
        except KeyError:
            raise KeyError(f"source {source!r} has no file {file!r}") from None


# --- loading -------------------------------------------------------------------------------


def default_contract_path() -> Path:
    """The ``sources.yaml`` shipped inside this package."""
    return Path(__file__).with_name("sources.yaml")


def load_contract(path: str | Path | None = None) -> Contract:
    """Parse and validate ``sources.yaml`` (the packaged one by default); cached per path."""
    resolved = Path(path) if path is not None else default_contract_path()
    return _load_cached(str(resolved.resolve()))


@cache
def _load_cached(path: str) -> Contract:
    # Imported lazily (keeps `import outcomes.contracts` light) and by name, so mypy needs no
    # PyYAML stubs.
    yaml = importlib.import_module("yaml")

    with open(path, encoding="utf-8") as fh:
        raw = yaml.safe_load(fh)
    from outcomes.contracts.parse import parse_contract

    return parse_contract(raw, path)
