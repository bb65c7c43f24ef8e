"""The writers of a delivery's rows. :class:`_Sink` pseudonymises each checked row and ``COPY``-s
it, with its violations, into a temporary table per file; :func:`_insert_valid` and
:func:`_quarantine_rows` route those rows, set-based, into ``raw``/``pending`` and quarantine;
:class:`_Direct` loads the good rows of a plain file straight into ``raw`` or ``pending`` (the
columnar path)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from contextlib import ExitStack
from typing import TYPE_CHECKING, Any

from outcomes.contracts import Violation
from outcomes.contracts.fnr import has_valid_check_digits
from outcomes.contracts.spec import Contract, FileSpec

if TYPE_CHECKING:
    import psycopg

    from outcomes.ingest.erasure import ErasureRegister
from outcomes.ingest.storage import (
    FNR,
    FNR_KEYED,
    PSEUDONYM,
    _columns,
    _copy_csv,
    _storable,
    raw_table,
)


class _Sink:
    """Receives checked rows and COPYs them, pseudonymised, into one temp table per file."""

    def __init__(
        self,
        conn: psycopg.Connection,
        contract: Contract,
        source: str,
        pseudonymise: Callable[[str], str],
        direct: _Direct | None = None,
    ):
        self.conn = conn
        self.source = source
        self.pseudonymise = pseudonymise
        self.specs = contract.sources[source].files
        self.stack = ExitStack()
        self.copy: Any = None
        self.file: str | None = None
        self.names: list[str] = []
        self.known: set[str] = set()
        self.conforms: bool | None = None
        self.created: set[str] = set()
        self.direct = direct  # load good batches straight into raw/pending (see _Direct)

    @staticmethod
    def temp_table(file: str) -> str:
        return f"incoming_{file.removesuffix('.csv')}"

    def _table(self, file: str) -> str:
        """The file's temporary table, created on first use."""
        table = self.temp_table(file)
        if table not in self.created:
            defs = ", ".join(f"{name} text" for name, _ in _columns(self.specs[file]))
            self.conn.execute(
                f"create temp table {table} (source_line integer, violations jsonb, extra jsonb, {defs}) "
                "on commit drop"
            )
            self.created.add(table)
        return table

    def _start(self, file: str) -> None:
        self.stack.close()
        spec = self.specs[file]
        table = self._table(file)
        cols = _columns(spec)
        self.names = [c.name for c in spec.columns]
        self.known = set(self.names)
        self.conforms = None  # does this file's header match the contract? Decided on its first row.
        columns = ", ".join(n for n, _ in cols)
        cursor = self.stack.enter_context(self.conn.cursor())
        self.copy = self.stack.enter_context(
            cursor.copy(f"copy {table} (source_line, violations, extra, {columns}) from stdin")
        )
        self.file = file

    def _safe(self, column: str, raw: str, line: int, found: list[Violation]) -> str | None:
        """The value as it may be stored: an fnr outside the fnr column is pseudonymised (and the
        row flagged), a NUL byte (which PostgreSQL text cannot hold) replaced."""
        if raw == "":
            return None
        if len(raw) == 11 and raw.isdigit() and has_valid_check_digits(raw):
            found.append(
                Violation(
                    self.source,
                    "",
                    self.file,
                    line,
                    column,
                    None,
                    "fnr_in_other_column",
                    f"{self.file} line {line}, column {column}: holds what looks like a national identity "
                    "number; stored pseudonymised (rule: fnr_in_other_column)",
                )
            )
            return self.pseudonymise(raw)
        if "\x00" in raw:
            return raw.replace("\x00", "\ufffd")
        return raw

    def __call__(self, file: str, line: int, row: dict[str, str], violations: list[Violation]) -> None:
        if file != self.file:
            self._start(file)
        found = list(violations)
        values: list[str | None] = []
        for name in self.names:
            raw = row.get(name, "")
            if name == FNR:
                values.append(self.pseudonymise(raw) if raw else None)  # invalid numbers too
            else:
                values.append(self._safe(name, raw, line, found))
        if self.conforms is None:  # the header is the same for every row of a file
            self.conforms = len(row) == len(self.names) and self.known.issuperset(row)
        extra = None
        if not self.conforms:
            # A header that is not the contract's: keep the unknown columns too (quarantine only).
            kept: dict[str, str | None] = {}
            for key, value in row.items():
                if key in self.known:
                    continue
                label = self._safe("(a header name)", key, line, found) or ""  # a header can be data
                kept[label] = self._safe(label, value, line, found)
            extra = json.dumps(kept)
        errors = None
        if found:
            errors = json.dumps(
                [
                    {
                        "column": v.column,
                        "value": _storable(v.value),
                        "rule": v.rule,
                        "message": _storable(v.message),
                    }
                    for v in found
                ]
            )
        self.copy.write_row((line, errors, extra, *values))

    def write_batch(self, file: str, lines: Any, batch: Any) -> None:
        """Rows that keep every rule, a pyarrow batch of the file's text columns at a time (the
        columnar check): the fnr pseudonymised once per distinct number, empty fields NULL. In
        one ``COPY`` into the temporary table, or, loading direct, straight into ``raw`` and
        ``pending`` (see :class:`_Direct`)."""
        import pyarrow as pa
        import pyarrow.compute as pc

        self.close()  # a row-by-row COPY of this file may be open
        spec = self.specs[file]
        null = pa.scalar(None, pa.string())
        arrays = [pa.array(lines, pa.int64())]
        for column in spec.columns:
            values = batch.column(column.name)
            if column.name == FNR:
                encoded = pc.dictionary_encode(values)
                people = encoded.dictionary.to_pylist()
                pseudonyms = pa.array([self.pseudonymise(p) if p else None for p in people], pa.string())
                values = pseudonyms.take(encoded.indices)
            else:
                values = pc.if_else(pc.equal(values, ""), null, values)
            arrays.append(values)
        names = [n for n, _ in _columns(spec)]
        rows = pa.Table.from_arrays(arrays, names=["source_line", *names])
        if self.direct is not None:
            self.direct.write(self.conn, self.source, file, rows)
        else:
            _copy_csv(self.conn, self._table(file), rows)

    def discard(self, file: str) -> None:
        """Forget what was received for ``file`` (it is read again, row by row)."""
        if self.direct is not None:
            raise _Undo(f"{file} is not plain")  # rows may be in raw and pending already
        self.close()
        table = self.temp_table(file)
        if table in self.created:
            self.conn.execute(f"truncate {table}")

    def close(self) -> None:
        self.stack.close()
        self.copy = None
        self.file = None


class _Undo(Exception):
    """Loading direct cannot decide this delivery: it is rolled back and applied the usual way."""


class _Direct:
    """Loading direct: the rows the columnar check passed go straight into ``raw`` (or, for an
    fnr-keyed source and a person not enrolled, ``pending``), with no temporary table between.

    The usual path writes every row to a temporary table and then inserts the good ones with
    casts, writing them twice. Here each batch is split in the client, with the same rules as
    :func:`_insert_valid` and :func:`drop_erased_incoming`: rows about an erased person are
    dropped (and counted as purged), the rest go by whether the pseudonym is enrolled. Bad rows
    still go through the temporary table. Anything that needs the whole delivery in quarantine
    (a file problem, too many bad rows, a value the warehouse rejects, a file that is not plain)
    rolls the direct rows back (a savepoint) and the delivery is applied the usual way.
    """

    def __init__(
        self, conn: psycopg.Connection, delivery_id: str, extracted_at: dt.datetime, register: ErasureRegister
    ) -> None:
        import pyarrow as pa

        self.delivery_id = delivery_id
        self.extracted_at = extracted_at
        enrolled = conn.execute(f"select distinct {PSEUDONYM} from raw.trial_enrolment")
        self.enrolled = pa.array([r[0] for r in enrolled if r[0] is not None], pa.string())
        self.register = register  # the same register as drop_erased_incoming's
        self.loaded = 0
        self.pending = 0
        self.purged = 0

    def write(self, conn: psycopg.Connection, source: str, file: str, rows: Any) -> None:
        import pyarrow as pa
        import pyarrow.compute as pc

        n = rows.num_rows
        erased = self.register.erased_rows(rows)
        kept = pc.invert(erased)
        self.purged += pc.sum(erased.cast(pa.int64())).as_py() or 0  # (the sum of none is null)
        rows = rows.add_column(0, "delivery_id", pa.array([self.delivery_id] * n, pa.string()))
        target = raw_table(source, file)
        if source in FNR_KEYED:
            enrolled = pc.is_in(rows.column(PSEUDONYM), value_set=self.enrolled)
            to_raw = rows.filter(pc.and_(kept, enrolled))
            to_pending = rows.filter(pc.and_(kept, pc.invert(enrolled)))
            held = pa.array([self.extracted_at.isoformat()] * to_pending.num_rows, pa.string())
            to_pending = to_pending.append_column("held_since", held)
        else:
            to_raw, to_pending = rows.filter(kept), None
        if to_raw.num_rows:
            _copy_csv(conn, f"raw.{target}", to_raw)
            self.loaded += to_raw.num_rows
        if to_pending is not None and to_pending.num_rows:
            _copy_csv(conn, f"pending.{target}", to_pending)
            self.pending += to_pending.num_rows


def _quarantine_rows(
    conn: psycopg.Connection, source: str, delivery_id: str, file: str, only_bad: bool
) -> int:
    table = _Sink.temp_table(file)
    where = "where violations is not null" if only_bad else ""
    cur = conn.execute(
        f"""
        insert into quarantine.rows (source, delivery_id, file, source_line, record, violations)
        select %s, %s, %s, source_line,
               (to_jsonb(t) - 'source_line' - 'violations' - 'extra') || coalesce(extra, '{{}}'::jsonb),
               coalesce(violations, '[]'::jsonb)
        from {table} t {where}
        """,
        (source, delivery_id, file),
    )
    return cur.rowcount


def _insert_valid(
    conn: psycopg.Connection,
    source: str,
    delivery_id: str,
    file: str,
    spec: FileSpec,
    held_since: dt.datetime,
) -> tuple[int, int]:
    """Good rows into raw (or pending); returns (loaded, pending)."""
    table = _Sink.temp_table(file)
    target = raw_table(source, file)
    cols = _columns(spec)
    names = ", ".join(n for n, _ in cols)
    casts = ", ".join(f"{n}::{t}" for n, t in cols)
    if source not in FNR_KEYED:
        cur = conn.execute(
            f"""
            insert into raw.{target} (delivery_id, source_line, {names})
            select %s, source_line, {casts} from {table} where violations is null
            """,
            (delivery_id,),
        )
        return cur.rowcount, 0
    # A temporary table is never analysed by autovacuum: without statistics the planner guesses
    # its size, and a delivery of millions of rows gets the plan of a small one.
    conn.execute(f"analyze {table}")
    # exists / not exists: a semi- and an anti-join. `not in (subquery)` is neither (its NULL
    # semantics forbid it): once the enrolment's pseudonyms outgrow work_mem, PostgreSQL rescans
    # the subquery for every row (100,000 participants: a registry backlog ran for hours).
    enrolled = (
        f"exists (select from raw.trial_enrolment as enrolment "
        f"where enrolment.{PSEUDONYM} = incoming.{PSEUDONYM})"
    )
    loaded = conn.execute(
        f"""
        insert into raw.{target} (delivery_id, source_line, {names})
        select %s, source_line, {casts} from {table} as incoming
        where violations is null and {enrolled}
        """,
        (delivery_id,),
    ).rowcount
    pending = conn.execute(
        f"""
        insert into pending.{target} (delivery_id, source_line, {names}, held_since)
        select %s, source_line, {casts}, %s from {table} as incoming
        where violations is null and not {enrolled}
        """,
        (delivery_id, held_since),
    ).rowcount
    return loaded, pending
