"""The delivery history of the four synthetic source systems, and the files that carry it.

Schedule (all times UTC, ``S = until - history_days``):

========== ===================================== ======= =============
source     deliveries                            hour    mode
========== ===================================== ======= =============
trial      S, then every 7 days back from until  01:00   full
registry   every night S .. until                02:00   incremental
welfare    S, then every Monday after S          03:00   incremental
employment every night S .. until                04:00   incremental
========== ===================================== ======= =============

The first delivery of each source is the *backlog*: everything recorded up to its extraction
time. A record version goes to the first delivery whose extraction time is at or after its version
timestamp (``updated_at``, ``registered_at``, ``recorded_at``); a version stamped after the last
delivery has not been extracted yet and is not written. A ``full`` (trial) delivery instead holds
every participant as known at its extraction time.

Every delivery file is open for writing during the whole run, but holds no OS file handle: rows go
through ``csv.writer`` into an in-memory buffer which, past a row limit, is hashed (sha256) and
appended to the file; rows are counted on the way. Memory is therefore bounded by (number of files
x buffer limit), never by the number of rows, and at most one file handle is open at a time
however long the history is. ``_manifest.json`` is written last, after every CSV of its delivery
is complete, and atomically (temporary name, then rename), so its presence means "complete".
"""

from __future__ import annotations

import csv
import hashlib
import json
from bisect import bisect_left
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from outcomes.contracts.registry import source as registered
from outcomes.demo.dates import MINUTES_PER_DAY, date_text, timestamp_text, weekday

ENROLMENT_COLUMNS = (
    "participant_id",
    "fnr",
    "study",
    "site",
    "randomised_on",
    "arm",
    "sex",
    "birth_year",
    "intervention_ended_on",
    "followup_ended_on",
    "followup_end_reason",
    "erase",
)
PROMS_COLUMNS = ("form_id", "fnr", "answered_on", "item", "value", "updated_at", "is_deleted")
SPELL_COLUMNS = ("spell_id", "fnr", "benefit", "grade_pct", "from_date", "to_date", "registered_at", "status")
CHECKPOINT_COLUMNS = (
    "participant_id",
    "checkpoint_month",
    "assessed_on",
    "status",
    "hours_per_week",
    "recorded_at",
)
JOB_COLUMNS = (
    "job_id",
    "participant_id",
    "start_date",
    "end_date",
    "job_type",
    "hours_per_week",
    "recorded_at",
    "is_deleted",
)

#: Total budget for the in-memory buffers of all delivery files, in rows (~80 bytes each), and
#: the per-file bounds.
BUFFER_BUDGET_ROWS = 1_000_000
MAX_BUFFER_ROWS = 16_384
MIN_BUFFER_ROWS = 512

Row = Sequence[str]


@dataclass(frozen=True, slots=True)
class SourceSpec:
    """One simulated source system: its name, extraction hour, mode and files (name -> columns,
    in the order its generator writes them; the contract accepts any order)."""

    name: str
    hour: int
    mode: str
    files: tuple[tuple[str, tuple[str, ...]], ...]


def _simulated(name: str, *files: tuple[str, tuple[str, ...]]) -> SourceSpec:
    """The simulated system of a registered source: it extracts at its ingest DAG's scheduled hour
    (the contract's schedule), in the contract's mode."""
    spec = registered(name)
    return SourceSpec(name, int(spec.schedule.split()[1]), spec.mode, files)


TRIAL = _simulated("trial", ("enrolment.csv", ENROLMENT_COLUMNS))
REGISTRY = _simulated("registry", ("proms.csv", PROMS_COLUMNS))
WELFARE = _simulated("welfare", ("benefit_spells.csv", SPELL_COLUMNS))
EMPLOYMENT = _simulated("employment", ("checkpoints.csv", CHECKPOINT_COLUMNS), ("jobs.csv", JOB_COLUMNS))
SOURCES = (TRIAL, REGISTRY, WELFARE, EMPLOYMENT)


def delivery_days(source: SourceSpec, start: int, until: int) -> list[int]:
    """The days (ordinals) on which ``source`` delivers, backlog first, last one at or before until."""
    if source is TRIAL:
        weekly = range(until, start, -7)
        return [start, *sorted(weekly)]
    if source is WELFARE:
        return [start, *(day for day in range(start + 1, until + 1) if weekday(day) == 0)]
    return list(range(start, until + 1))


def delivery_id(day: int, hour: int) -> str:
    """``YYYYMMDDTHHMMZ``, the contract's delivery id for an extraction at ``hour``:00 UTC."""
    return f"{date_text(day).replace('-', '')}T{hour:02d}00Z"


@dataclass(frozen=True, slots=True)
class FileEntry:
    """A finished delivery file, as its manifest lists it."""

    name: str
    rows: int
    sha256: str


class _Chunks(list[str]):
    """A list of text chunks that ``csv.writer`` can write into (``write`` is ``list.append``)."""

    write = list.append


class CsvSink:
    """One delivery file being written: buffered CSV text, running sha256 and data-row count.

    Text is collected as a list of chunks (appending is O(1), no copying) and joined, encoded,
    hashed and appended to the file once ``limit_rows`` rows are pending."""

    __slots__ = ("_chunks", "_hash", "_limit", "_pending", "_writer", "path", "rows")

    def __init__(self, path: Path, columns: Sequence[str], limit_rows: int) -> None:
        self.path = path
        self.rows = 0
        self._hash = hashlib.sha256()
        self._limit = limit_rows
        self._pending = 0
        self._chunks = _Chunks()
        self._writer = csv.writer(self._chunks, lineterminator="\n")
        self._writer.writerow(columns)
        path.write_bytes(b"")  # truncate whatever a previous run left under this name
        self.flush()

    def write_one(self, row: Row) -> None:
        """Append one data row (strings; "" is NULL), quoted by ``csv.writer`` as needed."""
        self._writer.writerow(row)
        self._added(1)

    def write_lines(self, text: str, rows: int) -> None:
        """Append ``rows`` data rows already formatted as CSV lines (``\\n``-terminated).

        Only for rows whose fields can never need quoting (digits, codes, ISO dates): the hot
        path of the registry's item rows, several times faster than ``csv.writer``."""
        self._chunks.append(text)
        self._added(rows)

    def _added(self, rows: int) -> None:
        self.rows += rows
        self._pending += rows
        if self._pending >= self._limit:
            self.flush()

    def flush(self) -> None:
        """Hash the pending text and append it to the file."""
        data = "".join(self._chunks).encode("utf-8")
        self._chunks.clear()
        self._pending = 0
        if data:
            self._hash.update(data)
            with open(self.path, "ab") as handle:
                handle.write(data)

    def close(self) -> FileEntry:
        """Flush what is left; the manifest entry of the finished file."""
        self.flush()
        return FileEntry(self.path.name, self.rows, self._hash.hexdigest())


class SourceOutput:
    """All deliveries of one source: routing of record versions and, at the end, the manifests."""

    def __init__(self, spec: SourceSpec, root: Path, days: Sequence[int], buffer_limit: int) -> None:
        self.spec = spec
        self.days = tuple(days)
        self.extracted = tuple(day * MINUTES_PER_DAY + spec.hour * 60 for day in days)
        self.ids = tuple(delivery_id(day, spec.hour) for day in days)
        self.directories = tuple(root / spec.name / ident for ident in self.ids)
        self.sinks: dict[str, list[CsvSink]] = {name: [] for name, _ in spec.files}
        for directory in self.directories:
            directory.mkdir(parents=True, exist_ok=True)
            # A manifest left by an earlier run would vouch for files about to be rewritten.
            (directory / "_manifest.json").unlink(missing_ok=True)
            for name, columns in spec.files:
                self.sinks[name].append(CsvSink(directory / name, columns, buffer_limit))

    @property
    def backlog_extracted(self) -> int:
        """Extraction timestamp of the first (backlog) delivery."""
        return self.extracted[0]

    @property
    def last_extracted(self) -> int:
        """Extraction timestamp of the last delivery: versions stamped later are not written."""
        return self.extracted[-1]

    def index_for(self, ts: int) -> int | None:
        """The delivery that carries a version stamped ``ts``, or None if none extracted it yet."""
        i = bisect_left(self.extracted, ts)
        return i if i < len(self.extracted) else None

    def route_lines(self, file: str, ts: int, text: str, rows: int) -> None:
        """Write pre-formatted lines (see :meth:`CsvSink.write_lines`), versions stamped ``ts``,
        into the delivery that extracts them, if any (see :meth:`index_for`)."""
        i = bisect_left(self.extracted, ts)
        if i < len(self.extracted):
            self.sinks[file][i].write_lines(text, rows)

    def route_one(self, file: str, ts: int, row: Row) -> None:
        """Write one row (strings, "" = NULL), a version stamped ``ts``, into the delivery that
        extracts it, if any (see :meth:`index_for`)."""
        i = bisect_left(self.extracted, ts)
        if i < len(self.extracted):
            self.sinks[file][i].write_one(row)

    def finish(self) -> list[list[FileEntry]]:
        """Close every file, then write each delivery's manifest; the entries per delivery."""
        entries: list[list[FileEntry]] = []
        for i in range(len(self.days)):
            files = [self.sinks[name][i].close() for name, _ in self.spec.files]
            entries.append(files)
        for i, files in enumerate(entries):
            _write_manifest(self.directories[i], self._manifest(i, files))
        return entries

    def _manifest(self, i: int, files: Iterable[FileEntry]) -> dict[str, object]:
        return {
            "source": self.spec.name,
            "delivery_id": self.ids[i],
            "extracted_at": timestamp_text(self.extracted[i]),
            "mode": self.spec.mode,
            "files": [{"name": f.name, "rows": f.rows, "sha256": f.sha256} for f in files],
        }


def buffer_limit(n_files: int) -> int:
    """Rows buffered per file, keeping all buffers together within :data:`BUFFER_BUDGET_ROWS`."""
    return max(MIN_BUFFER_ROWS, min(MAX_BUFFER_ROWS, BUFFER_BUDGET_ROWS // max(1, n_files)))


def _write_manifest(directory: Path, manifest: dict[str, object]) -> None:
    text = json.dumps(manifest, indent=2, ensure_ascii=False) + "\n"
    partial = directory / "_manifest.json.partial"
    partial.write_bytes(text.encode("utf-8"))
    partial.replace(directory / "_manifest.json")
