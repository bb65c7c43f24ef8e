"""The delivery ledger (``meta.deliveries``, ``meta.delivery_events``): a delivery's content
identity, whether it was applied already or is a duplicate, its reconciliation row and its events."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from outcomes.ingest.landing import outage

if TYPE_CHECKING:
    import psycopg


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


def manifest_extracted_at(delivery: Any) -> dt.datetime | None:
    """The manifest's extract time, or None when it cannot be read (the check will say why)."""
    from outcomes.contracts.check import parse_timestamp

    try:
        value = _manifest_doc(delivery).get("extracted_at")
    except Exception as error:
        if outage(error):
            raise
        return None
    return parse_timestamp(value) if isinstance(value, str) else None


def _read_claims(delivery: Any) -> tuple[list[tuple[str, str]], int] | None:
    """((name, sha256) pairs, data rows) the manifest claims; None if unusable (the check reports)."""
    try:
        doc = _manifest_doc(delivery)
        files = [(str(f["name"]), str(f["sha256"])) for f in doc["files"]]
        return files, sum(int(f["rows"]) for f in doc["files"])
    except Exception as error:
        if outage(error):
            raise
        return None


def _actual_sha256(delivery: Any, name: str) -> str | None:
    digest = hashlib.sha256()
    try:
        with (delivery / name).open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    except OSError as error:
        if outage(error):
            raise
        return None
    return digest.hexdigest()


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
