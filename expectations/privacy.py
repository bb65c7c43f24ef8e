"""Privacy: no value anywhere in the candidate looks like a national identity number (fnr).

Every text and wide-number column of every candidate table is scanned (one pass per table, all
its columns counted in it) for an 11-digit token (optionally 6 + space + 5 digits) standing alone
or between non-alphanumerics; a pseudonym (HMAC hex) or an ID with letters next to the digits does
not match. The result names the table, the column and a count: never the value.
"""

from __future__ import annotations

from outcomes.quality.suite import Dataset, GateContext, no_violations

#: Types that can carry 11 digits (an int4 or a date cannot).
SCANNED_TYPES = {"text", "character varying", "character", "bigint", "numeric"}
FNR_LIKE = r"(^|[^0-9A-Za-z])[0-9]{6} ?[0-9]{5}($|[^0-9A-Za-z])"


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def build(gate: GateContext) -> Dataset:
    scans = []
    for table, columns in sorted(gate.columns.items()):
        scanned = [column for column, data_type in columns if data_type in SCANNED_TYPES]
        if not scanned:
            continue
        # one pass over the table counts every column's matches (a row per column and value
        # would multiply the rows scanned by the columns), then one row per column that matched
        counts = ", ".join(
            f"count(*) filter (where scanned.{_quote(column)}::text ~ '{FNR_LIKE}') as c{i}"
            for i, column in enumerate(scanned)
        )
        values = ", ".join(f"({_literal(c)}, counted.c{i})" for i, c in enumerate(scanned))
        scans.append(
            f"""
            select {_literal(table)} as table_name, value.column_name, value.values_like_fnr
            from (select {counts} from {gate.candidate}.{_quote(table)} as scanned) as counted
            cross join lateral (values {values}) as value (column_name, values_like_fnr)
            where value.values_like_fnr > 0
            """
        )
    query = (
        " union all ".join(scans)
        if scans
        else "select null::text as table_name, null::text as column_name, 0::bigint as values_like_fnr"
        " where false"
    )
    return Dataset(
        name="privacy",
        query=query,
        expectations=[
            no_violations(
                "privacy.no_fnr_like_values",
                "select table_name, column_name, values_like_fnr from {batch}",
                severity="error",
                description="no value in any candidate table looks like an fnr (11 digits)",
            )
        ],
    )
