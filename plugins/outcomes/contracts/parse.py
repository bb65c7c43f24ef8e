"""Parsing ``sources.yaml`` into the typed contract of :mod:`outcomes.contracts.spec`, refusing
(:class:`~outcomes.contracts.spec.ContractError`) an unknown key, type or rule, a dangling
reference, or a source missing one of its registry facts."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from decimal import Decimal
from types import MappingProxyType
from typing import Any, Literal, cast

from outcomes.contracts.spec import (
    COLUMN_TYPES,
    NAMED_RULES,
    Bound,
    Column,
    ColumnType,
    Contract,
    ContractError,
    DateOrderRule,
    Defaults,
    DeliveryProtocol,
    EnumRule,
    FileSpec,
    ItemCodeRule,
    ItemRangeRule,
    ItemSpec,
    ManifestField,
    ManifestSpec,
    NamedRule,
    NotInFutureRule,
    Number,
    RangeRule,
    RegexRule,
    RequiredIffRule,
    Rule,
    SourceSpec,
)

_DATE_ORDER_RE = re.compile(r"^\s*(>=|>|<=|<)\s*([a-z_][a-z0-9_]*)\s*$")
_YEAR_OF_RE = re.compile(r"^\s*year\(\s*([a-z_][a-z0-9_]*)\s*\)\s*(?:([+-])\s*(\d+))?\s*$")


def _mapping(value: object, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ContractError(f"{where}: expected a mapping, got {type(value).__name__}")
    return cast(dict[str, Any], value)


def _only_keys(d: Mapping[str, Any], allowed: set[str], where: str) -> None:
    unknown = set(d) - allowed
    if unknown:
        raise ContractError(f"{where}: unknown key(s) {sorted(unknown)}")


def _number(value: object, where: str) -> Number:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ContractError(f"{where}: expected a number, got {value!r}")
    if isinstance(value, int):
        return value
    try:
        d = Decimal(str(value))
    except ArithmeticError:
        raise ContractError(f"{where}: expected a number, got {value!r}") from None
    return d


def _bound(value: object, where: str) -> Bound:
    if isinstance(value, str):
        m = _YEAR_OF_RE.match(value)
        if m:
            offset = int(m.group(3) or 0) * (-1 if m.group(2) == "-" else 1)
            return Bound(year_of=m.group(1), offset=offset)
    return Bound(value=_number(value, where))


def _regex_rule(arg: object, where: str) -> Rule:
    if not isinstance(arg, str):
        raise ContractError(f"{where}: regex must be a string")
    re.compile(arg)
    return RegexRule(arg)


def _enum_rule(arg: object, where: str) -> Rule:
    if isinstance(arg, dict):
        # {seed: <name>}: the values of a dbt seed's first column, the value set's one home
        _only_keys(arg, {"seed"}, where)
        if "seed" not in arg:
            raise ContractError(f"{where}: enum must be a non-empty list or {{seed: <name>}}")
        from outcomes.transform.seeds import codes

        seed = str(arg["seed"])
        try:
            arg = list(codes(seed))
        except FileNotFoundError as exc:
            raise ContractError(f"{where}: enum names the seed {seed!r}, which does not exist") from exc
    if not isinstance(arg, list) or not arg:
        raise ContractError(f"{where}: enum must be a non-empty list or {{seed: <name>}}")
    return EnumRule(tuple(v if isinstance(v, int) else str(v) for v in arg))


def _range_rule(arg: object, where: str) -> Rule:
    r = _mapping(arg, where)
    _only_keys(r, {"min", "max", "exclusive_min", "exclusive_max"}, where)
    return RangeRule(
        min=_bound(r["min"], where) if "min" in r else None,
        max=_bound(r["max"], where) if "max" in r else None,
        exclusive_min=bool(r.get("exclusive_min", False)),
        exclusive_max=bool(r.get("exclusive_max", False)),
    )


def _date_order_rule(arg: object, where: str) -> Rule:
    m = _DATE_ORDER_RE.match(str(arg))
    if not m:
        raise ContractError(f"{where}: date_order must look like '>= other_column'")
    op = cast(Literal[">=", ">", "<=", "<"], m.group(1))
    return DateOrderRule(op=op, other=m.group(2))


def _not_in_future_rule(arg: object, where: str) -> Rule:
    if arg != "extracted_at":
        raise ContractError(f"{where}: not_in_future_of supports only extracted_at")
    return NotInFutureRule(of="extracted_at")


def _required_iff_rule(arg: object, where: str) -> Rule:
    r = _mapping(arg, where)
    _only_keys(r, {"column", "is", "in"}, where)
    if ("is" in r) == ("in" in r) or r.get("is", "set") != "set":
        raise ContractError(f"{where}: required_iff needs either 'is: set' or 'in: [..]'")
    values = tuple(str(v) for v in r["in"]) if "in" in r else None
    return RequiredIffRule(column=str(r["column"]), values=values)


def _item_range_rule(arg: object, where: str) -> Rule:
    r = _mapping(arg, where)
    _only_keys(r, {"table", "item_column"}, where)
    return ItemRangeRule(table=str(r["table"]), item_column=str(r["item_column"]))


#: Each rule kind of ``sources.yaml`` and its parser: (argument, where) -> the rule.
_RULE_PARSERS: dict[str, Callable[[object, str], Rule]] = {
    "regex": _regex_rule,
    "enum": _enum_rule,
    "range": _range_rule,
    "date_order": _date_order_rule,
    "not_in_future_of": _not_in_future_rule,
    "required_iff": _required_iff_rule,
    "item_code": lambda arg, _where: ItemCodeRule(table=str(arg)),
    "item_range": _item_range_rule,
}


def _parse_rule(raw: object, where: str) -> Rule:
    if isinstance(raw, str):
        if raw not in NAMED_RULES:
            raise ContractError(f"{where}: unknown named rule {raw!r}")
        return NamedRule(raw)
    d = _mapping(raw, where)
    if len(d) != 1:
        raise ContractError(f"{where}: a rule is one key, got {sorted(d)}")
    ((kind, arg),) = d.items()
    if kind not in _RULE_PARSERS:
        raise ContractError(f"{where}: unknown rule kind {kind!r}")
    return _RULE_PARSERS[kind](arg, where)


def _parse_column(raw: object, where: str) -> Column:
    d = _mapping(raw, where)
    _only_keys(d, {"name", "type", "nullable", "description", "rules"}, where)
    name = str(d["name"])
    where = f"{where} {name}"
    ctype = d.get("type")
    if ctype not in COLUMN_TYPES:
        raise ContractError(f"{where}: unknown type {ctype!r}")
    rules = tuple(_parse_rule(r, where) for r in d.get("rules") or ())
    return Column(
        name=name,
        type=cast(ColumnType, ctype),
        nullable=bool(d.get("nullable", False)),
        description=str(d.get("description", "")).strip(),
        rules=rules,
    )


def _parse_items(raw: object, where: str) -> tuple[ItemSpec, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise ContractError(f"{where}: items must be a list")
    items = []
    for entry in raw:
        d = _mapping(entry, where)
        _only_keys(d, {"instrument", "subscale", "codes", "min", "max"}, where)
        items.append(
            ItemSpec(
                instrument=str(d["instrument"]),
                subscale=str(d["subscale"]) if d.get("subscale") is not None else None,
                codes=tuple(str(c) for c in d["codes"]),
                min=int(d["min"]),
                max=int(d["max"]),
            )
        )
    codes = [c for it in items for c in it.codes]
    if len(codes) != len(set(codes)):
        raise ContractError(f"{where}: an item code is listed twice")
    return tuple(items)


def _validate_references(spec: FileSpec, where: str) -> None:
    types = {c.name: c.type for c in spec.columns}
    if len(types) != len(spec.columns):
        raise ContractError(f"{where}: a column is listed twice")

    def need(column: str, ctype: tuple[str, ...], rule: str) -> None:
        if column not in types:
            raise ContractError(f"{where}: {rule} references unknown column {column!r}")
        if types[column] not in ctype:
            raise ContractError(f"{where}: {rule} needs {column!r} to be {'/'.join(ctype)}")

    for col in spec.columns:
        for rule in col.rules:
            _check_references(rule, col, spec, need, where)


_Need = Callable[[str, tuple[str, ...], str], None]


def _check_references(rule: Rule, col: Column, spec: FileSpec, need: _Need, where: str) -> None:
    """The columns and tables ``rule`` on ``col`` refers to exist and have the types it needs."""
    if isinstance(rule, DateOrderRule):
        need(col.name, ("date",), "date_order")
        need(rule.other, ("date",), "date_order")
    elif isinstance(rule, RangeRule):
        _check_range(rule, col, need, where)
    elif isinstance(rule, NotInFutureRule):
        need(col.name, ("date", "timestamp"), "not_in_future_of")
    elif isinstance(rule, RequiredIffRule):
        need(rule.column, COLUMN_TYPES, "required_iff")
        if not col.nullable:
            raise ContractError(f"{where}: required_iff on NOT NULL column {col.name!r}")
    elif isinstance(rule, ItemCodeRule | ItemRangeRule):
        _check_items(rule, col, spec, need, where)
    elif isinstance(rule, EnumRule):
        wanted = int if col.type == "int" else str
        if col.type not in ("int", "text") or not all(isinstance(v, wanted) for v in rule.values):
            raise ContractError(f"{where}: enum values must match the type of {col.name}")


def _check_range(rule: RangeRule, col: Column, need: _Need, where: str) -> None:
    if col.type not in ("int", "decimal"):
        raise ContractError(f"{where}: range on non-numeric column {col.name!r}")
    for b in (rule.min, rule.max):
        if b is not None and b.year_of is not None:
            need(b.year_of, ("date",), "range")


def _check_items(
    rule: ItemCodeRule | ItemRangeRule, col: Column, spec: FileSpec, need: _Need, where: str
) -> None:
    if rule.table != "items" or not spec.items:
        raise ContractError(f"{where}: {rule.kind} needs the file's 'items' table")
    if isinstance(rule, ItemRangeRule):
        need(rule.item_column, ("text",), "item_range")
        need(col.name, ("int",), "item_range")


def _parse_file(name: str, raw: object, where: str) -> FileSpec:
    d = _mapping(raw, where)
    _only_keys(d, {"grain", "required", "columns", "items"}, where)
    columns = d.get("columns")
    if not isinstance(columns, list) or not columns:
        raise ContractError(f"{where}: columns must be a non-empty list")
    spec = FileSpec(
        name=name,
        grain=str(d.get("grain", "")),
        required=bool(d.get("required", False)),
        columns=tuple(_parse_column(c, f"{where} column") for c in columns),
        items=_parse_items(d.get("items"), f"{where} items"),
    )
    _validate_references(spec, where)
    return spec


def _parse_manifest_fields(raw: object, where: str) -> tuple[ManifestField, ...]:
    if not isinstance(raw, list):
        raise ContractError(f"{where}: expected a list")
    out = []
    for entry in raw:
        d = _mapping(entry, where)
        _only_keys(d, {"name", "type", "enum", "regex", "min", "rule"}, where)
        out.append(
            ManifestField(
                name=str(d["name"]),
                type=str(d["type"]),
                enum=tuple(str(v) for v in d["enum"]) if "enum" in d else None,
                regex=str(d["regex"]) if "regex" in d else None,
                min=int(d["min"]) if "min" in d else None,
                rule=str(d.get("rule", "")),
            )
        )
    return tuple(out)


_SOURCE_KEYS = {
    "description",
    "mode",
    "keyed_by",
    "schedule",
    "deadline_hours",
    "freshness_days",
    "doc",
    "files",
}


def _positive(value: object, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ContractError(f"{where}: expected a positive number, got {value!r}")
    return value  # an int stays an int (2 days, not 2.0, in messages and results)


def parse_contract(raw: object, path: str) -> Contract:
    """The contract ``raw`` (``sources.yaml`` as loaded) declares; ``path`` names it in errors."""
    return _parse_contract(_mapping(raw, "sources.yaml"), path)


def _parse_contract(raw: dict[str, Any], path: str) -> Contract:
    _only_keys(raw, {"version", "defaults", "delivery", "sources"}, "sources.yaml")
    dflt = _mapping(raw.get("defaults", {}), "defaults")
    _only_keys(dflt, {"quarantine_threshold", "pending_retention_days"}, "defaults")
    defaults = Defaults(
        quarantine_threshold=float(dflt.get("quarantine_threshold", 0.05)),
        pending_retention_days=int(dflt.get("pending_retention_days", 120)),
    )
    dlv = _mapping(raw["delivery"], "delivery")
    _only_keys(dlv, {"layout", "delivery_id_pattern", "modes", "manifest", "csv", "formats"}, "delivery")
    man = _mapping(dlv["manifest"], "delivery.manifest")
    _only_keys(
        man,
        {"name", "written_last", "encoding", "additional_keys", "fields", "file_fields"},
        "delivery.manifest",
    )
    manifest = ManifestSpec(
        name=str(man["name"]),
        fields=_parse_manifest_fields(man["fields"], "delivery.manifest.fields"),
        file_fields=_parse_manifest_fields(man["file_fields"], "delivery.manifest.file_fields"),
        additional_keys=bool(man.get("additional_keys", False)),
        written_last=bool(man.get("written_last", True)),
        encoding=str(man.get("encoding", "utf-8")),
    )
    pattern = str(dlv["delivery_id_pattern"])
    re.compile(pattern)
    modes = {str(k): str(v) for k, v in _mapping(dlv["modes"], "delivery.modes").items()}
    delivery = DeliveryProtocol(
        layout=str(dlv.get("layout", "")),
        delivery_id_pattern=pattern,
        modes=MappingProxyType(modes),
        manifest=manifest,
        csv=MappingProxyType(dict(_mapping(dlv.get("csv", {}), "delivery.csv"))),
        formats=MappingProxyType(
            {str(k): str(v) for k, v in _mapping(dlv.get("formats", {}), "formats").items()}
        ),
    )
    sources: dict[str, SourceSpec] = {}
    for sname, sraw in _mapping(raw["sources"], "sources").items():
        where = f"sources.{sname}"
        sd = _mapping(sraw, where)
        _only_keys(sd, _SOURCE_KEYS, where)
        missing = sorted(_SOURCE_KEYS - set(sd))
        if missing:
            raise ContractError(f"{where}: missing {', '.join(missing)}")
        mode = sd.get("mode")
        if mode not in modes:
            raise ContractError(f"{where}: unknown mode {mode!r}")
        keyed_by = sd["keyed_by"]
        if keyed_by not in ("fnr", "participant_id"):
            raise ContractError(f"{where}.keyed_by: {keyed_by!r} is not fnr or participant_id")
        schedule = str(sd["schedule"])
        if len(schedule.split()) != 5:
            raise ContractError(f"{where}.schedule: {schedule!r} is not a five-field cron expression")
        files = {
            str(fname): _parse_file(str(fname), fraw, f"{where}.{fname}")
            for fname, fraw in _mapping(sd["files"], f"{where}.files").items()
        }
        for fname, fspec in files.items():
            if keyed_by not in {c.name for c in fspec.columns}:
                raise ContractError(f"{where}.{fname}: keyed by {keyed_by}, but has no {keyed_by} column")
        sources[str(sname)] = SourceSpec(
            name=str(sname),
            mode=cast(Literal["full", "incremental"], mode),
            files=MappingProxyType(files),
            description=str(sd.get("description", "")),
            keyed_by=cast(Literal["fnr", "participant_id"], keyed_by),
            schedule=schedule,
            deadline_hours=_positive(sd["deadline_hours"], f"{where}.deadline_hours"),
            freshness_days=_positive(sd["freshness_days"], f"{where}.freshness_days"),
            doc=str(sd["doc"]).strip(),
        )
    return Contract(
        version=int(raw.get("version", 1)),
        defaults=defaults,
        delivery=delivery,
        sources=MappingProxyType(sources),
        path=path,
    )
