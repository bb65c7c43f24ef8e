"""Apply a delivery exactly once, atomically, losing nothing.

One delivery is one transaction on one connection, as the loader role:

1. a per-source advisory lock (two runs of one source never interleave), then the ledger: a
   delivery_id already in ``meta.deliveries`` is skipped; the same bytes under a new id are
   recorded as ``duplicate`` and nothing else changes;
2. one streaming pass: the contract checker reads each file (hash, UTF-8, CSV, header, rows) and
   hands every row to a sink that pseudonymises the fnr and ``COPY``-s the row, with its
   violations, into a temporary table, so memory stays flat whatever the file size;
3. decisions, set-based in SQL: a whole-delivery problem or more than the threshold of bad rows
   quarantines the whole delivery (every row kept in ``quarantine.rows``); otherwise bad rows go
   to quarantine, good rows to ``raw`` (or, for fnr-keyed sources whose person is not enrolled,
   to ``pending``), and a trial delivery moves the now-enrolled people's pending rows into raw;
4. the ledger row with the reconciliation, and an event; commit.

A crash or kill anywhere before the commit leaves nothing behind (PostgreSQL rolls the
transaction back), so a re-run starts clean.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import logging
from collections.abc import Callable, Mapping
from contextlib import ExitStack
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from outcomes.contracts import Violation, check_delivery, load_contract
from outcomes.contracts.check import looks_like_fnr
from outcomes.contracts.fnr import has_valid_check_digits
from outcomes.contracts.registry import fnr_keyed_sources
from outcomes.contracts.spec import Contract, FileSpec

if TYPE_CHECKING:
    import psycopg

log = logging.getLogger(__name__)

FNR = "fnr"
PSEUDONYM = "person_pseudonym"
#: Sources keyed by fnr (the contract's ``keyed_by``): rows of people not (yet) enrolled are held in
#: ``pending``.
FNR_KEYED = fnr_keyed_sources()
SQL_TYPES = {
    "text": "text",
    "int": "integer",
    "decimal": "numeric",
    "date": "date",
    "timestamp": "timestamptz",
    "bool": "boolean",
}


@dataclass
class DeliveryOutcome:
    """What applying one delivery did. Counts only: safe for logs and XComs (no fnr, no rows)."""

    source: str
    delivery_id: str
    status: str  # loaded | quarantined | duplicate | released | skipped (already applied)
    rows_received: int = 0
    rows_loaded: int = 0
    rows_pending: int = 0
    rows_quarantined: int = 0
    rows_purged: int = 0
    rows_moved_from_pending: int = 0
    participants_erased: int = 0
    message: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items()}


def raw_table(source: str, file: str) -> str:
    """``raw``/``pending`` table of a contract file: ``registry`` + ``proms.csv`` -> ``registry_proms``."""
    return f"{source}_{file.removesuffix('.csv')}"


def _columns(spec: FileSpec) -> list[tuple[str, str]]:
    """(warehouse column, SQL type) in contract order, with fnr replaced by the pseudonym."""
    return [(PSEUDONYM if c.name == FNR else c.name, SQL_TYPES[c.type]) for c in spec.columns]


def content_digest(files: list[tuple[str, str]]) -> str:
    """A delivery's content identity: sha256 over its files' names and sha256s, sorted."""
    digest = hashlib.sha256()
    for name, sha in sorted(files):
        digest.update(f"{name}\0{sha.lower()}\n".encode())
    return digest.hexdigest()


def _manifest_doc(delivery: Any) -> Any:
    """The delivery's manifest as parsed JSON (raises when unreadable: the check words why)."""
    with (delivery / "_manifest.json").open("rb") as handle:
        return json.loads(handle.read().decode("utf-8-sig"))


def _read_claims(delivery: Any) -> tuple[list[tuple[str, str]], int] | None:
    """((name, sha256) pairs, data rows) the manifest claims; None if unusable (the check reports)."""
    try:
        doc = _manifest_doc(delivery)
        files = [(str(f["name"]), str(f["sha256"])) for f in doc["files"]]
        return files, sum(int(f["rows"]) for f in doc["files"])
    except Exception:
        return None


def _actual_sha256(delivery: Any, name: str) -> str | None:
    digest = hashlib.sha256()
    try:
        with (delivery / name).open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    except (OSError, FileNotFoundError):
        return None
    return digest.hexdigest()


def _storable(text: str | None) -> str | None:
    """PostgreSQL text and jsonb cannot hold NUL: show it as U+FFFD."""
    return None if text is None else text.replace("\x00", "\ufffd")


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


def _copy_csv(conn: psycopg.Connection, table: str, rows: Any) -> None:
    """One ``COPY`` of a pyarrow table (its column names are the target's) in CSV."""
    from pyarrow import csv as pacsv

    out = io.BytesIO()
    pacsv.write_csv(rows, out, write_options=pacsv.WriteOptions(include_header=False))
    columns = ", ".join(rows.column_names)
    with conn.cursor() as cursor, cursor.copy(f"copy {table} ({columns}) from stdin (format csv)") as copy:
        copy.write(out.getbuffer())


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

    def __init__(self, conn: psycopg.Connection, delivery_id: str, extracted_at: dt.datetime) -> None:
        import pyarrow as pa

        self.delivery_id = delivery_id
        self.extracted_at = extracted_at

        def values(query: str) -> Any:
            return pa.array([r[0] for r in conn.execute(query) if r[0] is not None], pa.string())

        self.enrolled = values(f"select distinct {PSEUDONYM} from raw.trial_enrolment")
        # the same register, read by the same queries, as drop_erased_incoming's
        self.erased = {PSEUDONYM: values(ERASED_PSEUDONYMS), "participant_id": values(ERASED_PARTICIPANTS)}
        self.loaded = 0
        self.pending = 0
        self.purged = 0

    def write(self, conn: psycopg.Connection, source: str, file: str, rows: Any) -> None:
        import pyarrow as pa
        import pyarrow.compute as pc

        n = rows.num_rows
        erased = pa.array([False] * n)
        for column, value_set in self.erased.items():
            if column in rows.column_names and len(value_set):
                erased = pc.or_(erased, pc.is_in(rows.column(column), value_set=value_set))
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


@dataclass
class _Counts:
    received: int = 0
    loaded: int = 0
    pending: int = 0
    quarantined: int = 0
    purged: int = 0
    moved: int = 0
    erased: int = 0


def _ledger_exists(conn: psycopg.Connection, source: str, delivery_id: str) -> str | None:
    row = conn.execute(
        "select status from meta.deliveries where source = %s and delivery_id = %s", (source, delivery_id)
    ).fetchone()
    return None if row is None else str(row[0])


def _duplicate_of(conn: psycopg.Connection, source: str, delivery: Any) -> tuple[str | None, str | None]:
    """(content digest, id of an applied delivery with the same bytes) from the manifest's claims,
    verified against the actual bytes before a delivery is called a duplicate. Deliveries without
    data rows are never duplicates: "no changes tonight" is the same bytes every night."""
    read = _read_claims(delivery)
    if read is None:
        return None, None
    claims, rows = read
    digest = content_digest(claims)
    if rows == 0:  # an empty incremental delivery ("no changes") duplicates nothing
        return digest, None
    row = conn.execute(
        """
        select delivery_id from meta.deliveries
        where source = %s and content_sha256 = %s and status in ('loaded', 'released')
        order by delivery_id limit 1
        """,
        (source, digest),
    ).fetchone()
    if row is None:
        return digest, None
    if all(_actual_sha256(delivery, name) == sha.lower() for name, sha in claims):
        return digest, str(row[0])
    return digest, None


def _record(
    conn: psycopg.Connection,
    *,
    source: str,
    delivery_id: str,
    status: str,
    digest: str | None,
    extracted_at: dt.datetime | None,
    counts: _Counts,
    message: str,
    duplicate_of: str | None = None,
) -> None:
    conn.execute(
        """
        insert into meta.deliveries (
            source, delivery_id, content_sha256, extracted_at, status, rows_received, rows_loaded,
            rows_pending, rows_purged, rows_quarantined, message, duplicate_of, applied_by
        ) values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, session_user)
        """,
        (
            source,
            delivery_id,
            digest,
            extracted_at,
            status,
            counts.received,
            counts.loaded,
            counts.pending,
            counts.purged,
            counts.quarantined,
            message,
            duplicate_of,
        ),
    )
    event(conn, source, delivery_id, status, counts.received, message)


def event(
    conn: psycopg.Connection, source: str, delivery_id: str, name: str, rows: int | None, detail: str
) -> None:
    """Append to the audit trail ``meta.delivery_events``."""
    conn.execute(
        """
        insert into meta.delivery_events (source, delivery_id, event, rows, detail, happened_by)
        values (%s, %s, %s, %s, %s, session_user)
        """,
        (source, delivery_id, name, rows, detail),
    )


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


def shift_counts(
    conn: psycopg.Connection,
    source: str,
    per_delivery: list[tuple[str, int]],
    *,
    from_column: str,
    to_column: str,
    event_name: str,
    reason: str,
) -> int:
    """Move row counts between two ledger columns, per delivery, with an audit event each, so
    every delivery stays reconciled when its rows move on (pending -> raw, -> purged)."""
    total = 0
    for delivery_id, n in per_delivery:
        conn.execute(
            f"""
            update meta.deliveries set {from_column} = {from_column} - %s, {to_column} = {to_column} + %s
            where source = %s and delivery_id = %s
            """,
            (n, n, source, delivery_id),
        )
        event(conn, source, delivery_id, event_name, n, reason)
        total += n
    return total


def _shift(
    conn: psycopg.Connection, source: str, per_delivery: list[tuple[str, int]], column: str, reason: str
) -> int:
    """Rows removed for an erasure: from ``column`` to ``rows_purged``."""
    return shift_counts(
        conn,
        source,
        per_delivery,
        from_column=column,
        to_column="rows_purged",
        event_name="purged",
        reason=reason,
    )


def move_enrolled_from_pending(conn: psycopg.Connection, contract: Contract) -> int:
    """Move pending rows whose person is now enrolled into raw; keep each delivery reconciled."""
    moved_total = 0
    for source in FNR_KEYED:
        for file, spec in contract.sources[source].files.items():
            target = raw_table(source, file)
            names = ", ".join(n for n, _ in _columns(spec))
            moved = conn.execute(
                f"""
                with moved as (
                    delete from pending.{target} p
                    where p.{PSEUDONYM} in (select {PSEUDONYM} from raw.trial_enrolment)
                    returning p.*
                ), inserted as (
                    insert into raw.{target} (delivery_id, source_line, {names})
                    select delivery_id, source_line, {names} from moved
                    returning delivery_id
                )
                select delivery_id, count(*) from inserted group by delivery_id order by delivery_id
                """
            ).fetchall()
            moved_total += shift_counts(
                conn,
                source,
                [(d, int(n)) for d, n in moved],
                from_column="rows_pending",
                to_column="rows_loaded",
                event_name="moved_from_pending",
                reason="their person is now enrolled",
            )
    return moved_total


def purge_pending(conn: psycopg.Connection, contract: Contract, now: dt.datetime, retention_days: int) -> int:
    """Purge pending rows held longer than the retention window; count them per delivery."""
    cutoff = now - dt.timedelta(days=retention_days)
    purged_total = 0
    for source in FNR_KEYED:
        for file in contract.sources[source].files:
            target = raw_table(source, file)
            purged = conn.execute(
                f"""
                with purged as (delete from pending.{target} where held_since < %s returning delivery_id)
                select delivery_id, count(*) from purged group by delivery_id order by delivery_id
                """,
                (cutoff,),
            ).fetchall()
            purged_total += _shift(
                conn,
                source,
                [(d, int(n)) for d, n in purged],
                "rows_pending",
                f"not enrolled within {retention_days} days",
            )
    return purged_total


ERASED_PSEUDONYMS = "select person_pseudonym from pending.erasures"
ERASED_PARTICIPANTS = "select participant_id from pending.erasures"


def _erased_filter(names: list[str]) -> str | None:
    """SQL condition matching rows about an erased person, for a table with these columns."""
    parts = []
    if PSEUDONYM in names:
        parts.append(f"{PSEUDONYM} in ({ERASED_PSEUDONYMS})")
    if "participant_id" in names:
        parts.append(f"participant_id in ({ERASED_PARTICIPANTS})")
    return " or ".join(parts) or None


def register_erasures(conn: psycopg.Connection, file: str) -> int:
    """Register the valid ``erase = true`` rows of an incoming enrolment file; returns new ones."""
    cur = conn.execute(
        f"""
        insert into pending.erasures (person_pseudonym, participant_id)
        select distinct {PSEUDONYM}, participant_id from {_Sink.temp_table(file)}
        where violations is null and erase = 'true'
        on conflict do nothing
        """
    )
    return cur.rowcount


def drop_erased_incoming(conn: psycopg.Connection, contract: Contract, source: str, files: set[str]) -> int:
    """Drop rows about erased people from a delivery being applied; they count as purged."""
    dropped = 0
    for file, spec in contract.sources[source].files.items():
        table = _Sink.temp_table(file)
        if table not in files:
            continue
        condition = _erased_filter([n for n, _ in _columns(spec)])
        if condition:
            dropped += conn.execute(f"delete from {table} where {condition}").rowcount
    return dropped


def purge_erased(conn: psycopg.Connection, contract: Contract) -> int:
    """Delete every stored row about an erased person (raw, pending, quarantine), keeping each
    delivery reconciled: the rows move to ``rows_purged``. Idempotent and cheap when done."""
    reason = "a participant withdrew consent and asked for their data to be deleted"
    total = 0
    for source, source_spec in contract.sources.items():
        for file, spec in source_spec.files.items():
            target = raw_table(source, file)
            condition = _erased_filter([n for n, _ in _columns(spec)])
            if condition is None:
                continue
            for schema, column in (("raw", "rows_loaded"), ("pending", "rows_pending")):
                if schema == "pending" and source not in FNR_KEYED:
                    continue
                removed = conn.execute(
                    f"""
                    with removed as (delete from {schema}.{target} where {condition} returning delivery_id)
                    select delivery_id, count(*) from removed group by delivery_id order by delivery_id
                    """
                ).fetchall()
                total += _shift(conn, source, [(d, int(n)) for d, n in removed], column, reason)
    removed_rows = conn.execute(
        f"""
        with removed as (
            delete from quarantine.rows
            where record->>'{PSEUDONYM}' in ({ERASED_PSEUDONYMS})
               or record->>'participant_id' in ({ERASED_PARTICIPANTS})
            returning source, delivery_id, released
        )
        select source, delivery_id, count(*) filter (where not released) from removed
        group by source, delivery_id order by source, delivery_id
        """
    ).fetchall()
    for source, delivery_id, n in removed_rows:
        if n:
            total += _shift(conn, source, [(delivery_id, int(n))], "rows_quarantined", reason)
    return total


def _enrolled_participants(conn: psycopg.Connection) -> set[str]:
    return {r[0] for r in conn.execute("select distinct participant_id from raw.trial_enrolment")}


def apply_delivery(
    conn: psycopg.Connection,
    delivery: Any,
    *,
    pseudonymise: Callable[[str], str],
    contract: Contract | None = None,
    threshold: float | None = None,
) -> DeliveryOutcome:
    """Apply the delivery at ``delivery`` (``<root>/<source>/<delivery_id>``) in one transaction."""
    contract = contract or load_contract()
    threshold = contract.defaults.quarantine_threshold if threshold is None else threshold
    source, delivery_id = delivery.parent.name, delivery.name
    with conn.transaction():
        conn.execute("select pg_advisory_xact_lock(hashtext(%s))", (f"outcomes.ingest.{source}",))
        status = _ledger_exists(conn, source, delivery_id)
        if status is not None:
            return DeliveryOutcome(source, delivery_id, "skipped", message=f"already applied ({status})")
        digest, duplicate = (None, None)
        if source in contract.sources:
            digest, duplicate = _duplicate_of(conn, source, delivery)
        if duplicate is not None:
            counts = _Counts()
            message = f"the same bytes as delivery {duplicate}: nothing applied"
            _record(
                conn,
                source=source,
                delivery_id=delivery_id,
                status="duplicate",
                digest=digest,
                extracted_at=None,
                counts=counts,
                message=message,
                duplicate_of=duplicate,
            )
            return DeliveryOutcome(source, delivery_id, "duplicate", message=message)
        outcome = _apply_rows(conn, delivery, source, delivery_id, digest, contract, threshold, pseudonymise)
    log.info(
        "%s/%s: %s (%d received, %d loaded, %d pending, %d quarantined)",
        source,
        delivery_id,
        outcome.status,
        outcome.rows_received,
        outcome.rows_loaded,
        outcome.rows_pending,
        outcome.rows_quarantined,
    )
    return outcome


def _apply_rows(
    conn: psycopg.Connection,
    delivery: Any,
    source: str,
    delivery_id: str,
    digest: str | None,
    contract: Contract,
    threshold: float,
    pseudonymise: Callable[[str], str],
) -> DeliveryOutcome:
    known = source in contract.sources
    enrolled = _enrolled_participants(conn) if source == "employment" else None
    if known and source != "trial":  # the trial's enrolment registers erasures: the usual path
        direct = _apply_direct(
            conn, delivery, source, delivery_id, digest, contract, threshold, pseudonymise, enrolled
        )
        if direct is not None:
            return direct
    sink = _Sink(conn, contract, source, pseudonymise) if known else None
    try:
        report = check_delivery(delivery, contract, enrolled_participant_ids=enrolled, row_sink=sink)
    finally:
        if sink is not None:
            sink.close()
    extracted_at = report.manifest.extracted_at if report.manifest else None
    counts = _Counts(received=report.rows_total)
    files = sink.created if sink is not None else set()
    if known:  # rows about people erased earlier never enter the warehouse again
        counts.purged = drop_erased_incoming(conn, contract, source, files)
    bad = _bad_rows(conn, files) if files else sum(report.bad_rows.values())
    problems = list(report.file_errors)
    considered = counts.received - counts.purged
    share = bad / considered if considered else 0.0
    if not problems and share > threshold:
        problems.append(
            _delivery_problem(
                source,
                delivery_id,
                "quarantine_threshold",
                f"{bad} of {considered} rows ({share:.1%}) break the contract, more than the "
                f"{threshold:.0%} a delivery may have: a broken extract, not a few bad rows",
            )
        )
    spec_files = contract.sources[source].files if known else {}
    if not problems:
        import psycopg

        try:
            with conn.transaction():  # a savepoint: a value PostgreSQL still rejects must not crash
                return _load(conn, source, delivery_id, digest, contract, files, extracted_at, counts)
        except psycopg.errors.DataError as error:
            counts = _Counts(received=counts.received, purged=counts.purged)
            detail = str(error).strip().splitlines()[0]
            detail = "a value" if looks_like_fnr(detail) else detail
            problems.append(
                _delivery_problem(
                    source,
                    delivery_id,
                    "warehouse_rejected",
                    f"the warehouse rejected {detail}; the contract check let it pass, so the whole "
                    "delivery is kept in quarantine for inspection",
                )
            )
    return _quarantine_whole(
        conn, source, delivery_id, digest, spec_files, files, extracted_at, counts, problems
    )


def _manifest_extracted_at(delivery: Any) -> dt.datetime | None:
    """The manifest's extract time, or None when it cannot be read (the check will say why)."""
    from outcomes.contracts.check import parse_timestamp

    try:
        value = _manifest_doc(delivery).get("extracted_at")
    except Exception:
        return None
    return parse_timestamp(value) if isinstance(value, str) else None


def _apply_direct(
    conn: psycopg.Connection,
    delivery: Any,
    source: str,
    delivery_id: str,
    digest: str | None,
    contract: Contract,
    threshold: float,
    pseudonymise: Callable[[str], str],
    enrolled: set[str] | None,
) -> DeliveryOutcome | None:
    """Apply a delivery loading its good rows direct (:class:`_Direct`), in a savepoint; None
    (and nothing changed) when it must be applied the usual way."""
    import psycopg

    extracted_at = _manifest_extracted_at(delivery)
    if extracted_at is None:
        return None
    direct = _Direct(conn, delivery_id, extracted_at)
    sink = _Sink(conn, contract, source, pseudonymise, direct)
    try:
        with conn.transaction():
            try:
                report = check_delivery(delivery, contract, enrolled_participant_ids=enrolled, row_sink=sink)
            finally:
                sink.close()
            if report.manifest is None or report.manifest.extracted_at != extracted_at:
                raise _Undo("the manifest read differently")
            if report.file_errors:
                raise _Undo("a whole-delivery problem: quarantined the usual way")
            files = sink.created
            counts = _Counts(
                received=report.rows_total, loaded=direct.loaded, pending=direct.pending, purged=direct.purged
            )
            counts.purged += drop_erased_incoming(conn, contract, source, files)
            bad = _bad_rows(conn, files)
            considered = counts.received - counts.purged
            if considered and bad / considered > threshold:
                raise _Undo("too many bad rows: quarantined the usual way")
            return _load(conn, source, delivery_id, digest, contract, files, extracted_at, counts)
    except (_Undo, psycopg.errors.DataError):
        return None


def _delivery_problem(source: str, delivery_id: str, rule: str, detail: str) -> Violation:
    """A whole-delivery problem found by the loader (not the file checks)."""
    message = f"{source}/{delivery_id}: {detail} (rule: {rule})"
    return Violation(source, delivery_id, None, None, None, None, rule, message)


def _quarantine_whole(
    conn: psycopg.Connection,
    source: str,
    delivery_id: str,
    digest: str | None,
    spec_files: Mapping[str, FileSpec],
    files: set[str],
    extracted_at: dt.datetime | None,
    counts: _Counts,
    problems: list[Violation],
) -> DeliveryOutcome:
    """Keep every row received in quarantine, with the problems; load nothing."""
    for file in spec_files:
        if _Sink.temp_table(file) in files:
            _quarantine_rows(conn, source, delivery_id, file, only_bad=False)
    _store_problems(conn, source, delivery_id, problems)
    counts.quarantined = counts.received - counts.purged
    message = problems[0].message + (f" (and {len(problems) - 1} more problems)" if len(problems) > 1 else "")
    _record(
        conn,
        source=source,
        delivery_id=delivery_id,
        status="quarantined",
        digest=digest,
        extracted_at=extracted_at,
        counts=counts,
        message=message,
    )
    return _outcome(source, delivery_id, "quarantined", counts, message)


def _load(
    conn: psycopg.Connection,
    source: str,
    delivery_id: str,
    digest: str | None,
    contract: Contract,
    files: set[str],
    extracted_at: dt.datetime | None,
    counts: _Counts,
) -> DeliveryOutcome:
    """Bad rows to quarantine, good rows to raw or pending; erasures and pending moves for trial."""
    spec_files = contract.sources[source].files
    held_since = extracted_at or dt.datetime.now(dt.UTC)
    if source == "trial" and "enrolment.csv" in spec_files:
        counts.erased = register_erasures(conn, "enrolment.csv")
        if counts.erased:
            counts.purged += drop_erased_incoming(conn, contract, source, files)
    for file, spec in spec_files.items():
        if _Sink.temp_table(file) not in files:
            continue
        counts.quarantined += _quarantine_rows(conn, source, delivery_id, file, only_bad=True)
        loaded, pending = _insert_valid(conn, source, delivery_id, file, spec, held_since)
        counts.loaded += loaded
        counts.pending += pending
    message = (
        f"{counts.loaded} loaded, {counts.pending} pending, {counts.purged} purged, "
        f"{counts.quarantined} quarantined"
    )
    _record(
        conn,
        source=source,
        delivery_id=delivery_id,
        status="loaded",
        digest=digest,
        extracted_at=extracted_at,
        counts=counts,
        message=message,
    )
    if source == "trial":
        if counts.erased:
            removed = purge_erased(conn, contract)
            event(
                conn,
                source,
                delivery_id,
                "erasure",
                counts.erased,
                f"{counts.erased} participants withdrew consent and were erased; "
                f"{removed} stored rows about them deleted",
            )
        counts.moved = move_enrolled_from_pending(conn, contract)
    return _outcome(source, delivery_id, "loaded", counts, message)


def _bad_rows(conn: psycopg.Connection, files: set[str]) -> int:
    total = 0
    for table in sorted(files):
        row = conn.execute(f"select count(*) from {table} where violations is not null").fetchone()
        total += int(row[0]) if row else 0
    return total


def _store_problems(
    conn: psycopg.Connection, source: str, delivery_id: str, problems: list[Violation]
) -> None:
    with conn.cursor() as cur:
        cur.executemany(
            """
            insert into quarantine.delivery_problems
                (source, delivery_id, file, line, column_name, rule, message)
            values (%s, %s, %s, %s, %s, %s, %s)
            """,
            [(source, delivery_id, p.file, p.line, p.column, p.rule, p.message) for p in problems],
        )


def _outcome(source: str, delivery_id: str, status: str, counts: _Counts, message: str) -> DeliveryOutcome:
    return DeliveryOutcome(
        source=source,
        delivery_id=delivery_id,
        status=status,
        rows_received=counts.received,
        rows_loaded=counts.loaded,
        rows_pending=counts.pending,
        rows_quarantined=counts.quarantined,
        rows_purged=counts.purged,
        rows_moved_from_pending=counts.moved,
        participants_erased=counts.erased,
        message=message,
    )


class ReleaseRefused(ValueError):
    """The delivery cannot be released (unknown, or not quarantined)."""


def release_delivery(
    conn: psycopg.Connection,
    source: str,
    delivery_id: str,
    *,
    operator: str,
    reason: str,
    contract: Contract | None = None,
) -> DeliveryOutcome:
    """Load the valid rows of a quarantined delivery, after an operator inspected it.

    The rows come from ``quarantine.rows`` (kept, pseudonymised, when the delivery was
    quarantined), so a release does not depend on the landing zone still holding the files. Rows
    that broke a rule stay in quarantine. Recorded in the ledger (status ``released``) and in the
    audit trail with the operator and the reason.
    """
    contract = contract or load_contract()
    if source not in contract.sources:
        raise ReleaseRefused(f"unknown source {source!r}")
    with conn.transaction():
        conn.execute("select pg_advisory_xact_lock(hashtext(%s))", (f"outcomes.ingest.{source}",))
        status = _ledger_exists(conn, source, delivery_id)
        if status is None:
            raise ReleaseRefused(f"no delivery {source}/{delivery_id} in the ledger")
        if status != "quarantined":
            raise ReleaseRefused(
                f"{source}/{delivery_id} is {status}: only a quarantined delivery can be released"
            )
        extracted = conn.execute(
            "select coalesce(extracted_at, now()) from meta.deliveries "
            "where source = %s and delivery_id = %s",
            (source, delivery_id),
        ).fetchone()
        held_since = extracted[0] if extracted else dt.datetime.now(dt.UTC)
        counts = _Counts()
        for file, spec in contract.sources[source].files.items():
            table = _Sink.temp_table(file)
            cols = _columns(spec)
            selects = ", ".join(f"record->>'{name}' as {name}" for name, _ in cols)
            conn.execute(
                f"""
                create temp table {table} on commit drop as
                select source_line, null::jsonb as violations, {selects}
                from quarantine.rows
                where source = %s and delivery_id = %s and file = %s
                  and violations = '[]'::jsonb and not released
                """,
                (source, delivery_id, file),
            )
            if source == "trial" and file == "enrolment.csv":
                counts.erased = register_erasures(conn, file)
            if counts.erased:
                # Deletes the stored rows about them, this delivery's quarantined rows included,
                # and accounts for them; then they must not be loaded from the temp table.
                counts.purged += purge_erased(conn, contract)
            drop_erased_incoming(conn, contract, source, {table})
            loaded, pending = _insert_valid(conn, source, delivery_id, file, spec, held_since)
            counts.loaded += loaded
            counts.pending += pending
            conn.execute(
                """
                update quarantine.rows set released = true
                where source = %s and delivery_id = %s and file = %s and violations = '[]'::jsonb
                """,
                (source, delivery_id, file),
            )
        message = (
            f"released by {operator} ({reason}): {counts.loaded} loaded, {counts.pending} pending; "
            "rows that broke a rule stay quarantined"
        )
        conn.execute(
            """
            update meta.deliveries
            set status = 'released', rows_loaded = rows_loaded + %s, rows_pending = rows_pending + %s,
                rows_quarantined = rows_quarantined - %s, message = %s
            where source = %s and delivery_id = %s
            """,
            (counts.loaded, counts.pending, counts.loaded + counts.pending, message, source, delivery_id),
        )
        event(conn, source, delivery_id, "released", counts.loaded + counts.pending, message)
        if counts.erased:
            event(
                conn,
                source,
                delivery_id,
                "erasure",
                counts.erased,
                f"{counts.erased} participants withdrew consent and were erased; "
                f"{counts.purged} stored rows about them deleted",
            )
        if source == "trial":
            counts.moved = move_enrolled_from_pending(conn, contract)
        row = conn.execute(
            "select rows_received, rows_quarantined from meta.deliveries "
            "where source = %s and delivery_id = %s",
            (source, delivery_id),
        ).fetchone()
        counts.received, counts.quarantined = (int(row[0]), int(row[1])) if row else (0, 0)
    return _outcome(source, delivery_id, "released", counts, message)
