"""Erasure at the door: a participant whose enrolment row says ``erase = true`` is registered,
every stored row about them is deleted (raw, pending, quarantine), and rows about them in any later
delivery are dropped on arrival; every delivery stays reconciled (the rows count as purged).

The register (``pending.erasure_tombstones``) never holds whom: for each erased person it keeps a
tombstone of their pseudonym and one of their participant ID, an HMAC with the deployment's
pseudonymisation key under a domain of its own (:func:`tombstone`). The loader holds the key, so it
can tell whether an incoming value is erased; a copy of the database cannot. What the build still
has to clean (locks, ``history``) goes into ``pending.erasure_queue`` by participant ID until the
next build has done it (``outcomes.warehouse.locks``).

The register is read once per delivery, under a lock that a delivery of the trial (the only source
that registers erasures) takes exclusively and every other delivery shares: it cannot change while
a delivery is being applied.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from outcomes.contracts.spec import Contract

if TYPE_CHECKING:
    import psycopg
from outcomes.ingest.pending import _shift
from outcomes.ingest.sinks import _Sink
from outcomes.ingest.storage import FNR_KEYED, PSEUDONYM, _columns, raw_table
from outcomes.warehouse.erasures import record_sweeps

TOMBSTONES = "pending.erasure_tombstones"
QUEUE = "pending.erasure_queue"
UNCONVERTED = "pending.erasures_unconverted"

#: What a tombstone stands for, by the column it is matched on.
KINDS = {PSEUDONYM: "pseudonym", "participant_id": "participant"}

#: The temporary table of the people registered by the delivery being applied (dropped at commit).
ERASING = "erasing_now"

REASON = "a participant withdrew consent and asked for their data to be deleted"


def tombstone(pseudonymise: Callable[[str], str], column: str, value: str) -> str:
    """The tombstone of ``value`` of ``column``: the keyed HMAC of a text no fnr can be (it starts
    with a NUL), so a tombstone is never anyone's pseudonym."""
    return pseudonymise(f"\0erasure\0{KINDS[column]}\0{value}")


def erasure_lock(conn: psycopg.Connection, source: str) -> None:
    """Hold the register still for this transaction: exclusively for the trial, shared otherwise."""
    kind = "" if source == "trial" else "_shared"
    conn.execute(f"select pg_advisory_xact_lock{kind}(hashtext('outcomes.ingest.erasures'))")


class ErasureRegister:
    """The erased people as one delivery's transaction sees them: their tombstones only."""

    def __init__(self, conn: psycopg.Connection, pseudonymise: Callable[[str], str]) -> None:
        self.pseudonymise = pseudonymise
        _convert_unconverted(conn, pseudonymise)
        self.tombstones = {row[0] for row in conn.execute(f"select tombstone from {TOMBSTONES}")}
        self._seen: dict[tuple[str, str], bool] = {}

    def __bool__(self) -> bool:
        return bool(self.tombstones)

    def erased(self, column: str, value: str) -> bool:
        """Whether ``value`` of ``column`` (the pseudonym or the participant ID) is an erased person's."""
        if not self.tombstones:
            return False
        key = (column, value)
        hit = self._seen.get(key)
        if hit is None:
            hit = self._seen[key] = tombstone(self.pseudonymise, column, value) in self.tombstones
        return hit

    def erased_values(self, column: str, values: Iterable[str | None]) -> list[str]:
        return [v for v in values if v is not None and self.erased(column, v)]

    def erased_rows(self, rows: Any) -> Any:
        """A boolean pyarrow array: which rows of the pyarrow table ``rows`` are about an erased
        person (each distinct value's tombstone computed once)."""
        import pyarrow as pa
        import pyarrow.compute as pc

        erased = pa.array([False] * rows.num_rows)
        for column in KINDS if self.tombstones else ():
            if column in rows.column_names:
                hits = self.erased_values(column, pc.unique(rows.column(column)).to_pylist())
                if hits:
                    erased = pc.or_(
                        erased, pc.is_in(rows.column(column), value_set=pa.array(hits, pa.string()))
                    )
        return erased

    def add(self, marks: Iterable[str]) -> None:
        self.tombstones.update(marks)
        self._seen.clear()


def _convert_unconverted(conn: psycopg.Connection, pseudonymise: Callable[[str], str]) -> None:
    """The register of before tombstones (migration 0009), turned into tombstones and emptied."""
    if conn.execute(f"select to_regclass('{UNCONVERTED}')").fetchone() == (None,):
        return
    rows = conn.execute(f"delete from {UNCONVERTED} returning person_pseudonym, participant_id").fetchall()
    _insert_tombstones(conn, [m for p, i in rows for m in _marks(pseudonymise, p, i)])


def _marks(pseudonymise: Callable[[str], str], pseudonym: str, participant_id: str) -> list[str]:
    return [
        tombstone(pseudonymise, PSEUDONYM, pseudonym),
        tombstone(pseudonymise, "participant_id", participant_id),
    ]


def _insert_tombstones(conn: psycopg.Connection, marks: list[str]) -> None:
    if marks:
        with conn.cursor() as cursor:
            cursor.executemany(
                f"insert into {TOMBSTONES} (tombstone) values (%s) on conflict do nothing",
                [(m,) for m in marks],
            )


def register_erasures(conn: psycopg.Connection, register: ErasureRegister, file: str) -> int:
    """Register the people of the valid ``erase = true`` rows of an incoming enrolment file who
    were not erased yet: their tombstones, and their participant IDs queued for the build. They are
    also kept in the temporary table :data:`ERASING` for :func:`purge_erased`. Returns how many."""
    rows = conn.execute(
        f"""
        select distinct {PSEUDONYM}, participant_id from {_Sink.temp_table(file)}
        where violations is null and erase = 'true' and {PSEUDONYM} is not null and participant_id is not null
        """
    ).fetchall()
    new = [
        (pseudonym, participant_id, marks)
        for pseudonym, participant_id in rows
        if not set(marks := _marks(register.pseudonymise, pseudonym, participant_id)) <= register.tombstones
    ]
    if not new:
        return 0
    _insert_tombstones(conn, [m for _, _, marks in new for m in marks])
    register.add(m for _, _, marks in new for m in marks)
    columns = f"{PSEUDONYM} text, participant_id text"
    conn.execute(f"create temporary table if not exists {ERASING} ({columns}) on commit drop")
    with conn.cursor() as cursor:
        cursor.executemany(
            f"insert into {ERASING} ({PSEUDONYM}, participant_id) values (%s, %s)",
            [(p, i) for p, i, _ in new],
        )
        cursor.executemany(
            f"insert into {QUEUE} (participant_id) values (%s) on conflict do nothing",
            [(i,) for _, i, _ in new],
        )
    return len({i for _, i, _ in new})


def drop_erased_incoming(
    conn: psycopg.Connection, register: ErasureRegister, contract: Contract, source: str, files: set[str]
) -> int:
    """Drop rows about erased people from a delivery being applied; they count as purged."""
    if not register:
        return 0
    dropped = 0
    for file, spec in contract.sources[source].files.items():
        table = _Sink.temp_table(file)
        if table not in files:
            continue
        names = [n for n, _ in _columns(spec)]
        for column in KINDS:
            if column not in names:
                continue
            values = [r[0] for r in conn.execute(f"select distinct {column} from {table}")]
            erased = register.erased_values(column, values)
            if erased:
                dropped += conn.execute(f"delete from {table} where {column} = any(%s)", (erased,)).rowcount
    return dropped


def _erasing_filter(names: list[str]) -> str | None:
    """SQL condition matching rows about the people registered now, for a table with these columns."""
    parts = [f"{column} in (select {column} from {ERASING})" for column in KINDS if column in names]
    return " or ".join(parts) or None


def purge_erased(conn: psycopg.Connection, contract: Contract, reference: str, participants: int) -> int:
    """Delete every stored row about the people just registered (raw, pending, quarantine), keeping
    each delivery reconciled: the rows move to ``rows_purged``; the delivery ``reference``
    (``source/delivery``) that registered the ``participants`` records what each store lost in
    ``meta.erasure_sweeps``. Idempotent."""
    total = 0
    stores = {"raw": 0, "pending": 0, "quarantine": 0}
    for source, source_spec in contract.sources.items():
        for file, spec in source_spec.files.items():
            target = raw_table(source, file)
            condition = _erasing_filter([n for n, _ in _columns(spec)])
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
                stores[schema] += sum(int(n) for _, n in removed)
                total += _shift(conn, source, [(d, int(n)) for d, n in removed], column, REASON)
    removed_rows = conn.execute(
        f"""
        with removed as (
            delete from quarantine.rows
            where record->>'{PSEUDONYM}' in (select {PSEUDONYM} from {ERASING})
               or record->>'participant_id' in (select participant_id from {ERASING})
               -- a row kept under other names (a file whose header was a data row): any field
               or exists (
                   select 1 from jsonb_each_text(record) as field
                   where field.value in (select {PSEUDONYM} from {ERASING})
                      or field.value in (select participant_id from {ERASING})
               )
            returning source, delivery_id, released
        )
        select source, delivery_id, count(*) filter (where not released), count(*) from removed
        group by source, delivery_id order by source, delivery_id
        """
    ).fetchall()
    for source, delivery_id, n, deleted in removed_rows:
        stores["quarantine"] += int(deleted)
        if n:
            total += _shift(conn, source, [(delivery_id, int(n))], "rows_quarantined", REASON)
    record_sweeps(conn, "delivery", reference, participants, stores)
    return total
