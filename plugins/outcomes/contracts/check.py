"""Check a delivery against its source contract: whole-delivery checks, then every row, streamed.

The checker is five modules, by responsibility: :mod:`~outcomes.contracts.report` (what a check
finds, and the wording of every message), :mod:`~outcomes.contracts.manifest` (the manifest),
:mod:`~outcomes.contracts.values` (typed cells),
:mod:`~outcomes.contracts.rows` (:class:`RowChecker`: one row of one file, its rules compiled into
closures once, so a streaming loader can call it for millions of rows) and this one, the delivery:

- :func:`check_delivery` checks a delivery folder ``<root>/<source>/<delivery_id>/``: the
  delivery_id, the manifest, each listed file (presence, sha256, row count, header, UTF-8, CSV
  syntax), then streams every row through a :class:`RowChecker` and the cross-row uniqueness
  rules. It reads each file once and keeps nothing but the violations.

Privacy: an fnr never appears in a :class:`Violation` (``value`` is None and the message says
"value redacted"); the same holds for any value that merely looks like one (11 digits).
This module does not decide what to quarantine or load: that is the loader's job.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import re
import stat
from collections.abc import Callable, Container, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from outcomes.contracts import columnar
from outcomes.contracts.header import header_problems as _header_problems
from outcomes.contracts.manifest import DeliveryPath, _read_manifest
from outcomes.contracts.report import (
    DeliveryReport,
    Manifest,
    ManifestFile,
    RowInvalid,
    Violation,
    _Delivery,
    _file_violation,
)
from outcomes.contracts.rows import RowChecker
from outcomes.contracts.spec import (
    Contract,
    FileSpec,
    SourceSpec,
    load_contract,
)
from outcomes.contracts.values import parse_timestamp

__all__ = [
    "DeliveryPath",
    "DeliveryReport",
    "Manifest",
    "ManifestFile",
    "RowChecker",
    "RowInvalid",
    "Violation",
    "check_delivery",
    "escapes",
    "parse_timestamp",
]


# --- the delivery --------------------------------------------------------------------------


class _Utf8Error(Exception):
    def __init__(self, line: int, offset: int, byte: int) -> None:
        super().__init__(line)
        self.line, self.offset, self.byte = line, offset, byte


#: The most physical lines one record may span (quoted line ends): no valid record comes near it.
MAX_RECORD_LINES = 1_000


class _Lines:
    """Decoded lines of a binary file, hashing every byte and counting physical lines.

    ``record`` holds the lines given out since it was last cleared: Python's csv reader asks for
    lines only as it needs them, so after each record they are that record's text."""

    def __init__(self, fh: IO[bytes], hasher: Any) -> None:
        # readline with a size: fsspec's remote files (s3, gcs, ...) take none, a buffer over them does
        self.fh: IO[bytes] = fh if isinstance(fh, io.BufferedIOBase) else io.BufferedReader(fh)  # type: ignore[type-var]
        self.hasher = hasher
        self.record: list[str] = []

    def __iter__(self) -> Iterator[str]:
        """Never more of the file in memory than one record: a line or a record (its lines, with
        quoted line ends) over columnar.MAX_LINE_BYTES, or a record over MAX_RECORD_LINES lines,
        ends the reading with the line where it starts (no valid file comes near either)."""
        update = self.hasher.update
        keep = self.record.append
        limit = columnar.MAX_LINE_BYTES
        count = held = 0
        while raw := self.fh.readline(limit + 1):
            count += 1
            update(raw)
            held = len(raw) + (held if self.record else 0)  # the csv reader cleared the last record
            if held > limit or len(self.record) >= MAX_RECORD_LINES:
                start = count - len(self.record)
                what = "line" if start == count else "record"
                most = f"{limit >> 20} MiB" + ("" if start == count else f" or {MAX_RECORD_LINES:,} lines")
                raise _CsvProblem(start, f"starts a {what} longer than any valid one (over {most})")
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise _Utf8Error(count, exc.start, raw[exc.start]) from None
            if count == 1 and text.startswith("\ufeff"):
                text = text[1:]
            keep(text)
            yield text

    def drain(self) -> None:
        """Hash what was not read (after a parse error), so sha256 can still be compared."""
        for chunk in iter(lambda: self.fh.read(1 << 20), b""):
            self.hasher.update(chunk)


# One RFC 4180 record: fields either quoted (a quote inside doubled) or bare (no quote at all).
_FIELD = r'(?:"(?:[^"]|"")*"|[^",\r\n]*)'
_RECORD = re.compile(rf"{_FIELD}(?:,{_FIELD})*(?:\r\n|\n|\r)?")


def _quoting_problem(lines: _Lines) -> str | None:
    """Why the record just read breaks RFC 4180's quoting, or None. Python's csv reader takes a
    double quote inside a bare field literally (``Ber"gen``), even with ``strict=True``; only
    records that hold a quote are looked at."""
    text = "".join(lines.record)
    lines.record.clear()
    if '"' not in text or _RECORD.fullmatch(text):
        return None
    return (
        "has a double quote in a field that is not quoted (RFC 4180: quote the whole field and "
        'double the quote inside it, as in "Ber""gen")'
    )


class _CsvProblem(Exception):
    def __init__(self, line: int, detail: str) -> None:
        super().__init__(detail)
        self.line, self.detail = line, detail


RowSink = Callable[[str, int, dict[str, str], list[Violation]], None]


def check_delivery(
    delivery_dir: DeliveryPath | str,
    contract: Contract | None = None,
    *,
    enrolled_participant_ids: Container[str] | None = None,
    extracted_at: dt.datetime | None = None,
    row_sink: RowSink | None = None,
) -> DeliveryReport:
    """Check the delivery in ``delivery_dir`` (``<root>/<source>/<delivery_id>/``) end to end.

    Whole-delivery problems go to ``file_errors``, row problems to ``row_violations``; nothing is
    raised for bad input. ``extracted_at`` defaults to the manifest's; ``enrolled_participant_ids``
    None skips the "an enrolled participant" rule. ``row_sink`` receives every row as it is
    checked (file problems such as a wrong sha256 are only known at the end: a sink must be able
    to throw away what it received, e.g. by rolling back a transaction).
    """
    if isinstance(delivery_dir, str):
        delivery_dir = Path(delivery_dir)
    contract = contract if contract is not None else load_contract()
    delivery_id = delivery_dir.name
    source = delivery_dir.parent.name
    report = DeliveryReport(source=source, delivery_id=delivery_id)
    ctx = _Delivery(contract, source, delivery_id, report)

    spec = _check_names(contract, source, delivery_id, ctx)
    refused = escapes(delivery_dir)
    if refused:
        # Nothing of the delivery is read, not even its manifest: a link could point anywhere.
        for name, rule, detail in refused:
            ctx.error(name, rule, detail)
        return report
    manifest = _read_manifest(delivery_dir, ctx, spec)
    report.manifest = manifest
    if spec is None:
        return report
    targets = _files_to_check(delivery_dir, contract, spec, manifest, ctx)
    cutoff = extracted_at if extracted_at is not None else (manifest.extracted_at if manifest else None)
    for fspec, mfile in targets:
        checker = RowChecker(
            contract,
            source,
            fspec.name,
            delivery_id=delivery_id,
            extracted_at=cutoff,
            enrolled_participant_ids=enrolled_participant_ids,
            track_unique=True,
        )
        path = delivery_dir / fspec.name
        if not (columnar.can_take(checker, row_sink) and path.exists()) or not _columnar_checked(
            path, fspec, mfile, checker, ctx, row_sink
        ):
            _check_file(path, fspec, mfile, checker, ctx, row_sink)
    return report


def _is_link(path: Any) -> bool:
    try:
        return bool(path.is_symlink())
    except (OSError, NotImplementedError) as error:
        _reraise_outage(error)
        return False


def _reraise_outage(error: BaseException) -> None:
    """A landing zone that went down is no problem of the delivery's: the run fails, the delivery
    is left for the next (``outcomes.ingest.landing.outage``)."""
    from outcomes.ingest.landing import outage

    if outage(error):
        raise error


_REFUSED = "the whole delivery is refused unread: nothing outside a delivery is ever read"


def escapes(delivery_dir: DeliveryPath) -> list[tuple[str | None, str, str]]:
    """What in the delivery folder could make a read leave it, as (file, rule, detail): the folder
    itself a symbolic link, an entry that is a symbolic link, and on a local disk an entry that is
    a hard link (a second name of a file that may live anywhere on the file system) or that is
    neither a regular file nor a folder (a FIFO would block the reader, a device is no delivery).
    Any of them refuses the whole delivery, unread. Remote file systems are asked through fsspec
    (its ``islink``), and only what they can say is checked."""
    if _is_link(delivery_dir):
        folder = f"the delivery folder {delivery_dir.name!r} is a symbolic link"
        return [(None, "symlink", f"{folder}; {_REFUSED}")]
    try:
        entries = sorted(delivery_dir.iterdir(), key=lambda p: p.name)
    except (OSError, NotImplementedError) as error:
        _reraise_outage(error)
        return []
    refused = [(entry.name, *problem) for entry in entries if (problem := _escape(entry)) is not None]
    return [(name, rule, f"{text}; {_REFUSED}") for name, rule, text in refused]


def _escape(entry: Any) -> tuple[str, str] | None:
    """(rule, detail) when the entry of a delivery folder is not a file of its own, else None."""
    if _is_link(entry):
        return "symlink", "is a symbolic link, not a file of the delivery"
    if not isinstance(entry, Path):
        return None
    try:
        info = entry.lstat()
    except OSError:  # gone meanwhile: the check says what is missing
        return None
    if stat.S_ISDIR(info.st_mode):
        return None  # never read
    if not stat.S_ISREG(info.st_mode):
        return "not_a_file", "is not a regular file (a FIFO, socket or device)"
    if info.st_nlink > 1:
        return (
            "hard_link",
            f"is a hard link (one file with {info.st_nlink} names), not a file of the delivery's own",
        )
    return None


def _check_names(contract: Contract, source: str, delivery_id: str, ctx: _Delivery) -> SourceSpec | None:
    """The delivery folder's name and its source folder's; the source's contract, if it has one."""
    if not re.fullmatch(contract.delivery.delivery_id_pattern, delivery_id):
        ctx.error(
            None,
            "delivery_id_pattern",
            f"the delivery folder name {delivery_id!r} does not match "
            f"{contract.delivery.delivery_id_pattern}",
        )
    spec = contract.sources.get(source)
    if spec is None:
        ctx.error(
            None,
            "unknown_source",
            f"the source folder {source!r} is none of {', '.join(contract.sources)}",
        )
    return spec


def _files_to_check(
    delivery_dir: DeliveryPath,
    contract: Contract,
    spec: SourceSpec,
    manifest: Manifest | None,
    ctx: _Delivery,
) -> list[tuple[FileSpec, ManifestFile | None]]:
    """The files to read, each with what the manifest says of it; what the manifest lists wrongly
    (a file the source has not, a required file missing, a CSV it does not list) is reported."""
    if manifest is None:
        # No usable manifest: the delivery is quarantined anyway; still report what the files hold.
        return [(f, None) for f in spec.files.values() if (delivery_dir / f.name).exists()]
    manifest_name = contract.delivery.manifest.name
    listed = {f.name: f for f in manifest.files}
    for name in listed:
        if name not in spec.files:
            ctx.error(
                manifest_name,
                "unexpected_file",
                f"lists {name!r}, which is not a file of source {spec.name} ({', '.join(spec.files)})",
            )
    for fspec in spec.files.values():
        if fspec.required and fspec.name not in listed:
            ctx.error(
                manifest_name,
                "required_file_not_listed",
                f"does not list {fspec.name}, which every {spec.name} delivery must contain",
            )
    for name in _unlisted_csv(delivery_dir, listed):
        ctx.error(name, "unlisted_file", "is in the delivery folder but not in the manifest")
    return [(spec.files[n], m) for n, m in listed.items() if n in spec.files]


def _columnar_checked(
    path: Any,
    fspec: FileSpec,
    mfile: ManifestFile | None,
    checker: RowChecker,
    ctx: _Delivery,
    row_sink: RowSink | None,
) -> bool:
    """The fast path for a plain file: True when it checked the whole file. Anything else (quotes,
    a broken line, a wrong header ...) is then read again row by row from the start, which words
    every problem; the checker keeps no state across rows here (no `unique` column): it serves
    again."""
    report = ctx.report
    found = len(report.row_violations)
    done = columnar.check_file(path, fspec, checker, row_sink, report.row_violations)
    if done is not None:
        digest, rows, bad = done
        _reconcile(ctx, fspec.name, mfile, digest, rows, bad, complete=True)
        return True
    del report.row_violations[found:]
    if row_sink is not None:
        row_sink.discard(fspec.name)  # type: ignore[attr-defined]
    return False


def _unlisted_csv(delivery_dir: DeliveryPath, listed: Mapping[str, ManifestFile]) -> list[str]:
    try:
        names = sorted(p.name for p in delivery_dir.iterdir())
    except (OSError, NotImplementedError) as error:
        _reraise_outage(error)
        return []
    return [n for n in names if n.lower().endswith(".csv") and n not in listed]


@dataclass
class _Progress:
    """How far a file's stream got: data rows read, rows with a violation, and the physical line
    the last complete record ended on (where a broken record's message starts)."""

    rows: int = 0
    bad: int = 0
    end: int = 0


def _check_file(
    path: Any,
    fspec: FileSpec,
    mfile: ManifestFile | None,
    checker: RowChecker,
    ctx: _Delivery,
    row_sink: RowSink | None = None,
) -> None:
    """Stream one file: hash, decode, parse, check header and rows; compare with the manifest."""
    name = fspec.name
    if not path.exists():
        ctx.error(name, "file_missing", "is listed in the manifest but missing from the delivery")
        return
    hasher = hashlib.sha256()
    progress = _Progress()
    complete = False
    with path.open("rb") as fh:
        lines = _Lines(fh, hasher)
        reader = csv.reader(lines, strict=True)
        try:
            _read_rows(reader, lines, fspec, checker, ctx, row_sink, progress)
            complete = True
        except _Utf8Error as exc:
            ctx.error(
                name,
                "not_utf8",
                f"is not UTF-8: byte 0x{exc.byte:02x} at byte {exc.offset + 1} of line {exc.line}",
                line=exc.line,
            )
        except _CsvProblem as exc:
            ctx.error(name, "csv_parse", f"is not valid CSV: line {exc.line} {exc.detail}", line=exc.line)
        except csv.Error as exc:
            start, at = progress.end + 1, reader.line_num
            where = f"line {start}" if at <= start else f"the record starting on line {start}"
            reason = str(exc)
            if "new-line character seen in unquoted field" in reason:
                reason = "a carriage return not followed by a line feed, outside quotes"
            ctx.error(name, "csv_parse", f"is not valid CSV: {where}: {reason}", line=start)
        lines.drain()
    _reconcile(ctx, name, mfile, hasher.hexdigest(), progress.rows, progress.bad, complete)


def _read_rows(
    reader: Any,
    lines: _Lines,
    fspec: FileSpec,
    checker: RowChecker,
    ctx: _Delivery,
    row_sink: RowSink | None,
    progress: _Progress,
) -> None:
    """The header, then every row through ``checker`` and to ``row_sink``; raises on broken CSV."""
    name = fspec.name
    header = next(reader, None)
    if header is None:
        ctx.error(name, "empty_file", "is empty: no header row")
        return
    quoting = _quoting_problem(lines)
    if quoting is not None:
        raise _CsvProblem(1, quoting)
    problems = _header_problems(header, fspec)
    for rule, column, value, detail in problems:
        ctx.error(name, rule, f"header {detail}", line=1, column=column, value=value)
    check = checker.check if not problems else None
    unchecked = (
        [
            _file_violation(
                ctx.source,
                ctx.delivery_id,
                name,
                "header_unusable",
                "row not checked: the file's header does not match the contract",
            )
        ]
        if problems
        else []
    )
    keys = tuple(header)
    width = len(keys)
    violations = ctx.report.row_violations
    rows = bad = 0
    end = reader.line_num
    try:
        for fields in reader:
            start = end + 1
            end = reader.line_num
            quoting = _quoting_problem(lines)
            if quoting is not None:
                raise _CsvProblem(start, quoting)
            if len(fields) != width:
                if not fields:
                    raise _CsvProblem(start, "is empty (RFC 4180 has no blank lines)")
                raise _CsvProblem(start, f"has {len(fields)} fields, the header has {width}")
            rows += 1
            if check is not None:
                row = dict(zip(keys, fields))  # noqa: B905 (lengths checked)
                found = check(row, start)
                if found:
                    bad += 1
                    violations.extend(found)
                if row_sink is not None:
                    row_sink(name, start, row, found)
            elif row_sink is not None:  # kept (in quarantine) even though it cannot be checked
                row_sink(name, start, dict(zip(keys, fields)), unchecked)  # noqa: B905
    finally:
        progress.rows, progress.bad, progress.end = rows, bad, end


def _reconcile(
    ctx: _Delivery, name: str, mfile: ManifestFile | None, digest: str, rows: int, bad: int, complete: bool
) -> None:
    """Record a file's row counts; compare its sha256 and rows with the manifest's claims."""
    ctx.report.rows_checked[name] = rows
    ctx.report.bad_rows[name] = bad
    if mfile is None:
        return
    if digest != mfile.sha256:
        ctx.error(name, "sha256_mismatch", f"has sha256 {digest}, the manifest says {mfile.sha256}")
    if complete and rows != mfile.rows:
        ctx.error(name, "row_count_mismatch", f"has {rows} data rows, the manifest says {mfile.rows}")
