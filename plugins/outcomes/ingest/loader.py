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

This module decides; its helpers are split by responsibility: :mod:`~outcomes.ingest.storage`
(which table a file lands in, with which columns), :mod:`~outcomes.ingest.sinks` (the writers of
rows: temporary tables, routing, the direct path), :mod:`~outcomes.ingest.ledger` (the ledger and
its events), :mod:`~outcomes.ingest.pending` (people not yet enrolled) and
:mod:`~outcomes.ingest.erasure` (the erasure register of tombstones, and the queue for the build).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from outcomes.contracts import Violation, check_delivery, load_contract
from outcomes.contracts.check import escapes
from outcomes.contracts.report import looks_identifying
from outcomes.contracts.spec import Contract, FileSpec

if TYPE_CHECKING:
    import psycopg
from outcomes.ingest.erasure import (
    ErasureRegister,
    drop_erased_incoming,
    erasure_lock,
    purge_erased,
    register_erasures,
)
from outcomes.ingest.landing import confirm_readable
from outcomes.ingest.ledger import (
    _Counts,
    _duplicate_of,
    _ledger_exists,
    _record,
    event,
    manifest_extracted_at,
)
from outcomes.ingest.pending import _enrolled_participants, move_enrolled_from_pending
from outcomes.ingest.sinks import _Direct, _insert_valid, _quarantine_rows, _Sink, _Undo
from outcomes.ingest.storage import _columns

log = logging.getLogger(__name__)


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
        erasure_lock(conn, source)
        register = ErasureRegister(conn, pseudonymise)
        digest, duplicate = (None, None)
        confined = not escapes(delivery)  # else nothing of it is read: the check refuses it
        if source in contract.sources and confined:
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
        outcome = _apply_rows(
            conn, delivery, source, delivery_id, digest, contract, threshold, pseudonymise, register, confined
        )
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
    register: ErasureRegister,
    confined: bool,
) -> DeliveryOutcome:
    known = source in contract.sources
    enrolled = _enrolled_participants(conn) if source == "employment" else None
    if known and source != "trial" and confined:  # the trial's enrolment registers erasures: the usual path
        direct = _apply_direct(
            conn, delivery, source, delivery_id, digest, contract, threshold, pseudonymise, register, enrolled
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
        counts.purged = drop_erased_incoming(conn, register, contract, source, files)
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
        try:
            with conn.transaction():  # a savepoint: a value PostgreSQL still rejects must not crash
                return _load(
                    conn, register, source, delivery_id, digest, contract, files, extracted_at, counts
                )
        except _rejected() as error:
            counts = _Counts(received=counts.received, purged=counts.purged)
            detail = str(error).strip().splitlines()[0]
            detail = "a value" if looks_identifying(detail) else detail
            problems.append(
                _delivery_problem(
                    source,
                    delivery_id,
                    "warehouse_rejected",
                    f"the warehouse rejected {detail}; the contract check let it pass, so the whole "
                    "delivery is kept in quarantine for inspection",
                )
            )
    confirm_readable(delivery)  # the problems are the delivery's, not a server gone meanwhile
    return _quarantine_whole(
        conn, source, delivery_id, digest, spec_files, files, extracted_at, counts, problems
    )


def _apply_direct(
    conn: psycopg.Connection,
    delivery: Any,
    source: str,
    delivery_id: str,
    digest: str | None,
    contract: Contract,
    threshold: float,
    pseudonymise: Callable[[str], str],
    register: ErasureRegister,
    enrolled: set[str] | None,
) -> DeliveryOutcome | None:
    """Apply a delivery loading its good rows direct (:class:`_Direct`), in a savepoint; None
    (and nothing changed) when it must be applied the usual way."""

    extracted_at = manifest_extracted_at(delivery)
    if extracted_at is None:
        return None
    direct = _Direct(conn, delivery_id, extracted_at, register)
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
            counts.purged += drop_erased_incoming(conn, register, contract, source, files)
            bad = _bad_rows(conn, files)
            considered = counts.received - counts.purged
            if considered and bad / considered > threshold:
                raise _Undo("too many bad rows: quarantined the usual way")
            return _load(conn, register, source, delivery_id, digest, contract, files, extracted_at, counts)
    except _Undo:
        return None
    except _rejected():
        return None


def _rejected() -> tuple[type[Exception], ...]:
    """What the warehouse refuses of rows the contract passed: a value (22), a limit such as a key's (54)."""
    import psycopg

    return (psycopg.errors.DataError, psycopg.errors.ProgramLimitExceeded)


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
    register: ErasureRegister,
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
        counts.erased = register_erasures(conn, register, "enrolment.csv")
        if counts.erased:
            counts.purged += drop_erased_incoming(conn, register, contract, source, files)
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
            removed = purge_erased(conn, contract, f"{source}/{delivery_id}", counts.erased)
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
    pseudonymise: Callable[[str], str],
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
        erasure_lock(conn, source)
        register = ErasureRegister(conn, pseudonymise)
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
                counts.erased = register_erasures(conn, register, file)
            if counts.erased:
                # Deletes the stored rows about them, this delivery's quarantined rows included,
                # and accounts for them; then they must not be loaded from the temp table.
                counts.purged += purge_erased(conn, contract, f"{source}/{delivery_id}", counts.erased)
            drop_erased_incoming(conn, register, contract, source, {table})
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
