"""Check a delivery against its source contract: whole-delivery checks, then every row, streamed.

The checker is four modules, by responsibility: :mod:`~outcomes.contracts.report` (what a check
finds, and the wording of every message), :mod:`~outcomes.contracts.values` (typed cells),
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
import json
import re
from collections.abc import Callable, Container, Iterator, Mapping
from dataclasses import dataclass
from typing import IO, Any, Protocol

from outcomes.contracts import columnar
from outcomes.contracts.report import (
    DeliveryReport,
    Manifest,
    ManifestFile,
    RowInvalid,
    Violation,
    _file_violation,
    looks_like_fnr,
)
from outcomes.contracts.rows import RowChecker
from outcomes.contracts.spec import (
    Contract,
    FileSpec,
    ManifestField,
    SourceSpec,
    load_contract,
)
from outcomes.contracts.values import _parse_timestamp, parse_timestamp

__all__ = [
    "DeliveryPath",
    "DeliveryReport",
    "Manifest",
    "ManifestFile",
    "RowChecker",
    "RowInvalid",
    "Violation",
    "check_delivery",
    "parse_timestamp",
]


# --- the delivery --------------------------------------------------------------------------


class DeliveryPath(Protocol):
    """The little of a path the checker uses: ``pathlib.Path``, ``upath.UPath`` and Airflow's
    ``ObjectStoragePath`` all fit, so deliveries can live on any fsspec file system."""

    @property
    def name(self) -> str: ...

    @property
    def parent(self) -> Any: ...

    def __truediv__(self, key: str) -> Any: ...

    def exists(self) -> bool: ...

    def iterdir(self) -> Any: ...

    def open(self, mode: str) -> Any: ...


class _Utf8Error(Exception):
    def __init__(self, line: int, offset: int, byte: int) -> None:
        super().__init__(line)
        self.line, self.offset, self.byte = line, offset, byte


class _Lines:
    """Decoded lines of a binary file, hashing every byte and counting physical lines."""

    def __init__(self, fh: IO[bytes], hasher: Any) -> None:
        self.fh = fh
        self.hasher = hasher

    def __iter__(self) -> Iterator[str]:
        update = self.hasher.update
        for count, raw in enumerate(self.fh, 1):
            update(raw)
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise _Utf8Error(count, exc.start, raw[exc.start]) from None
            if count == 1 and text.startswith("\ufeff"):
                text = text[1:]
            yield text

    def drain(self) -> None:
        """Hash what was not read (after a parse error), so sha256 can still be compared."""
        for chunk in iter(lambda: self.fh.read(1 << 20), b""):
            self.hasher.update(chunk)


class _CsvProblem(Exception):
    def __init__(self, line: int, detail: str) -> None:
        super().__init__(detail)
        self.line, self.detail = line, detail


class _Delivery:
    """State while checking one delivery: the report and violation helpers."""

    def __init__(self, contract: Contract, source: str, delivery_id: str, report: DeliveryReport) -> None:
        self.contract = contract
        self.source = source
        self.delivery_id = delivery_id
        self.report = report

    def error(self, file: str | None, rule: str, detail: str, **where: Any) -> None:
        self.report.file_errors.append(
            _file_violation(self.source, self.delivery_id, file, rule, detail, **where)
        )


#: Called for every data row of a file whose header is right: (file, line, row, violations).
#: ``row`` maps the header's column names to the raw field text; ``violations`` is empty for a
#: valid row. A loader passes one to stream rows into the database while they are checked.
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
        from pathlib import Path

        delivery_dir = Path(delivery_dir)
    contract = contract if contract is not None else load_contract()
    delivery_id = delivery_dir.name
    source = delivery_dir.parent.name
    report = DeliveryReport(source=source, delivery_id=delivery_id)
    ctx = _Delivery(contract, source, delivery_id, report)

    spec = _check_names(contract, source, delivery_id, ctx)
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
    except (OSError, NotImplementedError):
        return []
    return [n for n in names if n.lower().endswith(".csv") and n not in listed]


def _check_field(value: Any, spec: ManifestField, path: str, problems: list[tuple[str, str]]) -> None:
    """Check one manifest value against its declared field; append (key, problem)."""
    if spec.type == "text":
        if not isinstance(value, str) or not value:
            problems.append((path, "must be a non-empty string"))
            return
        if spec.enum is not None and value not in spec.enum:
            problems.append((path, f"must be one of {', '.join(spec.enum)}, got {value!r}"))
        if spec.regex is not None and not re.fullmatch(spec.regex, value):
            problems.append((path, f"must match {spec.regex}"))
    elif spec.type == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            problems.append((path, "must be an integer"))
        elif spec.min is not None and value < spec.min:
            problems.append((path, f"must be >= {spec.min}"))
    elif spec.type == "timestamp":
        if not isinstance(value, str) or parse_timestamp(value) is None:
            problems.append((path, "must be an ISO 8601 timestamp with an offset or Z"))
    elif spec.type == "list" and not isinstance(value, list):
        problems.append((path, "must be a list"))


def _check_keys(
    doc: dict[str, Any], fields: tuple[ManifestField, ...], additional: bool, prefix: str
) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    for f in fields:
        if f.name not in doc:
            problems.append((prefix + f.name, "is missing"))
        else:
            _check_field(doc[f.name], f, prefix + f.name, problems)
    if not additional:
        known = {f.name for f in fields}
        for key in doc:
            if key not in known:
                problems.append((prefix + str(key), "is not a manifest key"))
    return problems


def _read_manifest(delivery_dir: DeliveryPath, ctx: _Delivery, spec: SourceSpec | None) -> Manifest | None:
    """Parse and validate ``_manifest.json``; report problems and return None when unusable."""
    mspec = ctx.contract.delivery.manifest
    name = mspec.name
    doc = _manifest_json(delivery_dir / name, name, ctx)
    if doc is None:
        return None
    problems = _check_keys(doc, mspec.fields, mspec.additional_keys, "")
    entries = _manifest_files(doc.get("files"), mspec, problems)
    for key, problem in problems:
        ctx.error(name, "manifest_schema", f"key {key} {problem}", column=key)
    if problems:
        return None
    manifest = Manifest(
        source=doc["source"],
        delivery_id=doc["delivery_id"],
        extracted_at=_parse_timestamp(doc["extracted_at"]),
        mode=doc["mode"],
        files=tuple(entries),
    )
    _check_manifest_says(manifest, name, ctx, spec)
    return manifest


def _manifest_json(path: Any, name: str, ctx: _Delivery) -> dict[str, Any] | None:
    """The manifest as a JSON object; None (reported) when it is missing or does not parse."""
    if not path.exists():
        ctx.error(name, "manifest_missing", "is missing: the delivery is not complete")
        return None
    with path.open("rb") as fh:
        data = fh.read()
    try:
        doc = json.loads(data.decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        ctx.error(name, "manifest_unparseable", f"is not UTF-8 (bad byte at offset {exc.start})")
        return None
    except json.JSONDecodeError as exc:
        ctx.error(
            name,
            "manifest_unparseable",
            f"is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}",
            line=exc.lineno,
        )
        return None
    if not isinstance(doc, dict):
        ctx.error(name, "manifest_schema", f"must be a JSON object, not {type(doc).__name__}")
        return None
    return doc


def _manifest_files(files: Any, mspec: Any, problems: list[tuple[str, str]]) -> list[ManifestFile]:
    """The manifest's file entries; each problem of one is added to ``problems``."""
    entries: list[ManifestFile] = []
    if not isinstance(files, list):
        return entries  # the key check reports it
    seen: set[str] = set()
    for i, entry in enumerate(files):
        prefix = f"files[{i}]."
        if not isinstance(entry, dict):
            problems.append((f"files[{i}]", "must be an object"))
            continue
        found = _check_keys(entry, mspec.file_fields, mspec.additional_keys, prefix)
        problems.extend(found)
        if found:
            continue
        if entry["name"] in seen:
            problems.append((prefix + "name", f"lists {entry['name']!r} twice"))
        seen.add(entry["name"])
        entries.append(ManifestFile(entry["name"], entry["rows"], entry["sha256"].lower()))
    return entries


def _check_manifest_says(manifest: Manifest, name: str, ctx: _Delivery, spec: SourceSpec | None) -> None:
    """The manifest names the delivery's own folder, source and mode."""
    if manifest.source != ctx.source:
        ctx.error(
            name,
            "manifest_source_mismatch",
            f"says source {manifest.source!r}, but the delivery is in folder {ctx.source!r}",
            column="source",
            value=manifest.source,
        )
    if manifest.delivery_id != ctx.delivery_id:
        ctx.error(
            name,
            "manifest_delivery_id_mismatch",
            f"says delivery_id {manifest.delivery_id!r}, but the folder is {ctx.delivery_id!r}",
            column="delivery_id",
            value=manifest.delivery_id,
        )
    if spec is not None and manifest.mode != spec.mode:
        ctx.error(
            name,
            "manifest_mode_mismatch",
            f"says mode {manifest.mode!r}, but source {spec.name} delivers {spec.mode!r}",
            column="mode",
            value=manifest.mode,
        )


def _header_problems(header: list[str], fspec: FileSpec) -> list[tuple[str, str, str | None, str]]:
    """(rule, column, value, detail) for each way the header differs from the contract."""
    import difflib

    expected = fspec.column_names
    problems: list[tuple[str, str, str | None, str]] = []
    seen: set[str] = set()
    for h in header:
        if h in seen:
            problems.append(("header_duplicate_column", h, h, f"names column {h!r} twice"))
        seen.add(h)
    missing = [c for c in expected if c not in seen]
    extra = [h for h in dict.fromkeys(header) if h not in expected]
    for h in list(extra):
        close = difflib.get_close_matches(h, missing, n=1, cutoff=0.6)
        if close:
            extra.remove(h)
            missing.remove(close[0])
            shown = "a redacted name" if looks_like_fnr(h) else repr(h)
            problems.append(
                ("header_misspelt_column", close[0], h, f"has {shown} where the contract has {close[0]!r}")
            )
    for c in missing:
        problems.append(("header_missing_column", c, None, f"lacks column {c!r}"))
    for h in extra:
        shown = "a redacted name" if looks_like_fnr(h) else repr(h)
        problems.append(("header_extra_column", h, h, f"has column {shown}, which is not in the contract"))
    return problems


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
            _read_rows(reader, fspec, checker, ctx, row_sink, progress)
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
