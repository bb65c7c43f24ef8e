"""A cell's typed value, parsed by its column's contract type (text, int, decimal, date, timestamp,
bool); a cell that is not of its type raises :class:`_Bad` with the rule and the wording.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any, TypeAlias

_DECIMAL_RE = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")
_BOOLS = {"true": True, "false": False}


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
