"""The columnar path of the contract check: a plain file, checked a batch of rows at a time.

The row-by-row check (:func:`outcomes.contracts.check.check_delivery`) costs a Python call per
rule per cell; a registry backlog has tens of millions of cells. This path parses a file with
pyarrow's multi-threaded CSV reader and decides the same rules with the same compiled code
(:class:`~outcomes.contracts.check.RowChecker`), once per distinct value instead of once per row:

- a rule of one cell depends only on that cell's text, so it runs once per distinct value of a
  column in a batch (a registry file repeats its items, values, dates and people);
- a rule across cells runs once per distinct combination of the columns it reads;
- a value in another column that is a valid fnr (which the loader must pseudonymise and flag) marks
  its row too.

Rows that break a rule, or are marked, go through the row-by-row check and sink, so their
violations and messages are exactly the row path's. The rows that keep every rule go to the sink's
``write_batch`` in one piece. Nothing else differs: the same rows are loaded, pending or
quarantined, with the same line numbers.

Only plain files take this path: UTF-8 without a byte-order mark, no double quote, carriage return
or NUL byte anywhere, no blank line, every line with the header's number of fields, a header that is the
contract's (in any order), and no ``unique`` column (those files are small). For anything else,
:func:`check_file` returns None and the caller reads the file again, row by row, from the start;
that path words every problem with its line.

Light to import: pyarrow and numpy are loaded when a file is checked.
"""

from __future__ import annotations

import csv
import hashlib
import math
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from outcomes.contracts.fnr import has_valid_check_digits

if TYPE_CHECKING:
    from outcomes.contracts.rows import RowChecker
    from outcomes.contracts.spec import FileSpec

#: Bytes of CSV read and parsed at a time (about 100,000 registry rows): memory stays flat.
BLOCK_SIZE = 8 << 20
#: The longest line (or record) either path reads. A valid one is at most 12 fields of at most
#: 128 KiB (the CSV reader's limit), quotes doubled: about 3 MiB; a longer one is refused before it
#: is held whole, so a file with no line end is never read into memory (the row path names its
#: line: ``check._Lines``).
MAX_LINE_BYTES = 4 << 20
#: Distinct values remembered per column across batches (then forgotten, to keep memory flat).
MEMO_MAX = 1 << 16
FNR = "fnr"
#: Bytes that send a file to the row-by-row path: quoting, carriage returns and NUL bytes (and
#: blank lines) are where CSV readers differ, and the row path words each problem they cause.
_NOT_PLAIN = (b'"', b"\r", b"\x00")


def _plain(piece: bytes, first: bool) -> bool:
    """Whether a piece of a file (whole lines, after the previous piece's last newline) is plain."""
    if first and piece.startswith(b"\xef\xbb\xbf"):
        return False  # a byte-order mark
    if piece.startswith(b"\n") or b"\n\n" in piece:
        return False  # a blank line
    return not any(byte in piece for byte in _NOT_PLAIN)


def _pieces(handle: Any, hasher: Any) -> Iterator[bytes | None]:
    """The file in pieces of about BLOCK_SIZE bytes that end with a whole line (the last piece
    perhaps without its newline), hashing every byte; None, and no more, once a line has run over
    MAX_LINE_BYTES with no end in sight (the row path then refuses it). Memory: one piece and one
    line's start, whatever the file."""
    carry: list[bytes] = []  # the start of a line that has not ended yet
    held = 0
    while chunk := handle.read(BLOCK_SIZE):
        hasher.update(chunk)
        cut = chunk.rfind(b"\n") + 1
        if cut == 0:  # no line ends in it: read on, up to the longest line read
            carry.append(chunk)
            held += len(chunk)
            if held > MAX_LINE_BYTES:
                yield None
                return
            continue
        yield b"".join([*carry, chunk[:cut]]) if carry else chunk[:cut]
        carry = [chunk[cut:]] if cut < len(chunk) else []
        held = len(chunk) - cut
    if held:
        yield b"".join(carry)


def _field_too_long(table: Any) -> bool:
    """Whether a field is longer than the row path's CSV reader takes (``csv.field_size_limit()``,
    128 KiB): both paths refuse the same files."""
    import pyarrow.compute as pc

    limit = csv.field_size_limit()
    for column in table.columns:
        longest = pc.max(pc.utf8_length(column)).as_py()  # characters, as csv counts
        if longest is not None and longest > limit:
            return True
    return False


def can_take(checker: RowChecker, sink: Any) -> bool:
    """Whether this path may check the checker's file for this sink (None: report only)."""
    if checker.tracks_unique:
        return False
    return sink is None or (hasattr(sink, "write_batch") and hasattr(sink, "discard"))


def check_file(
    path: Any, fspec: FileSpec, checker: RowChecker, sink: Any, violations: list[Any]
) -> tuple[str, int, int] | None:
    """Check (and hand to ``sink``) every row of a plain file: (sha256, data rows, bad rows).

    None when the file is not plain (see the module's doc): the caller then discards what the
    sink received for this file and checks it row by row. The violations of bad rows, found by the
    row path's own code (``checker.check``), are appended to ``violations`` in line order.
    """
    import pyarrow as pa
    from pyarrow import csv as pacsv

    from outcomes.contracts.header import header_problems

    hasher = hashlib.sha256()
    batches = _Batches(checker, fspec, sink, violations)
    header: list[str] | None = None
    options: tuple[Any, Any, Any] | None = None
    with path.open("rb") as handle:
        for piece in _pieces(handle, hasher):
            if piece is None or not _plain(piece, first=header is None):
                return None  # (a line too long: the row path names it)
            if header is None:  # the first piece starts with the header line
                line, _, piece = piece.partition(b"\n")
                try:
                    header = line.decode("utf-8").split(",")
                except UnicodeDecodeError:
                    return None
                if header_problems(header, fspec):
                    return None
                options = (
                    pacsv.ReadOptions(column_names=header, use_threads=True),
                    pacsv.ParseOptions(quote_char=False, ignore_empty_lines=False),
                    pacsv.ConvertOptions(
                        column_types={name: pa.string() for name in header},
                        strings_can_be_null=False,
                        quoted_strings_can_be_null=False,
                    ),
                )
                if not piece:
                    continue
            assert options is not None
            try:  # the piece is in memory: pyarrow parses it on its threads, with no Python calls
                table = pacsv.read_csv(
                    pa.py_buffer(piece),
                    read_options=options[0],
                    parse_options=options[1],
                    convert_options=options[2],
                )
            except (pa.ArrowException, UnicodeDecodeError):  # a wrong field count, bad UTF-8
                return None
            if _field_too_long(table):  # the row path names the line, as its reader refuses it
                return None
            for batch in table.to_batches():
                batches.take(batch)
    if header is None:
        return None  # an empty file: the row path words it
    return hasher.hexdigest(), batches.rows, batches.bad


class _Batches:
    """The checks of one file, batch by batch, with memos of the verdicts per distinct value."""

    def __init__(self, checker: RowChecker, fspec: FileSpec, sink: Any, violations: list[Any]) -> None:
        self.checker = checker
        self.violations = violations
        self.fspec = fspec
        self.sink = sink
        self.names = fspec.column_names
        self.memos: dict[str, dict[str, tuple[bool, Any]]] = {name: {} for name in self.names}
        self.rows = 0
        self.bad = 0

    def _verdicts(self, name: str, values: list[str]) -> tuple[list[bool], list[Any]]:
        """(fine, typed value) per distinct value of one column of a batch."""
        memo = self.memos[name]
        if len(memo) > MEMO_MAX:
            memo.clear()
        keeps = self.checker.cell_keeps_rules
        fine: list[bool] = []
        typed: list[Any] = []
        for raw in values:
            verdict = memo.get(raw)
            if verdict is None:
                ok, value = keeps(name, raw)
                # A valid fnr outside the fnr column: the loader pseudonymises and flags it.
                if ok and name != FNR and has_valid_check_digits(raw):
                    ok = False
                verdict = memo[raw] = (ok, value)
            fine.append(verdict[0])
            typed.append(verdict[1])
        return fine, typed

    def take(self, batch: Any) -> None:
        import numpy as np
        import pyarrow.compute as pc

        n = batch.num_rows
        if n == 0:
            return
        first_line = self.rows + 2  # plain files: one physical line per record, after the header
        self.rows += n
        bad = np.zeros(n, dtype=bool)
        codes: dict[str, tuple[Any, list[Any]]] = {}
        rule_columns = self.checker.row_rule_columns
        for name in self.names:
            encoded = pc.dictionary_encode(batch.column(name))
            indices = encoded.indices.to_numpy(zero_copy_only=False)
            fine, typed = self._verdicts(name, encoded.dictionary.to_pylist())
            bad |= ~np.asarray(fine, dtype=bool)[indices]
            if name in rule_columns:
                codes[name] = (indices, typed)
        if rule_columns:
            bad |= ~self._row_rules_hold(n, codes, rule_columns)
        lines = np.arange(first_line, first_line + n, dtype=np.int64)
        if bad.any():
            self._row_by_row(batch, lines, bad)
        if self.sink is not None and not bad.all():
            good = ~bad
            self.sink.write_batch(self.fspec.name, lines[good], batch.filter(good))

    def _row_rules_hold(
        self, n: int, codes: dict[str, tuple[Any, list[Any]]], columns: tuple[str, ...]
    ) -> Any:
        """Per row: whether the rules across cells hold, decided once per distinct combination of
        the values of ``columns``."""
        import numpy as np

        sizes = [len(codes[c][1]) for c in columns]
        if math.prod(sizes) < 2**62:  # one int64 key per row: a 1-D sort, fast
            key = np.zeros(n, dtype=np.int64)
            for c, size in zip(columns, sizes, strict=True):
                key = key * size + codes[c][0]
            _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
        else:
            stacked = np.stack([codes[c][0] for c in columns], axis=1)
            _, first, inverse = np.unique(stacked, axis=0, return_index=True, return_inverse=True)
        holds = np.fromiter(
            (
                self.checker.row_rules_hold({c: codes[c][1][codes[c][0][row]] for c in columns})
                for row in first.tolist()
            ),
            dtype=bool,
            count=len(first),
        )
        return holds[inverse.reshape(-1)]

    def _row_by_row(self, batch: Any, lines: Any, bad: Any) -> None:
        """The rows the batch checks did not pass: checked and handed on exactly as row by row."""
        import numpy as np

        where = np.flatnonzero(bad)
        check = self.checker.check
        for index, row in zip(where.tolist(), batch.take(where).to_pylist(), strict=True):
            line = int(lines[index])
            found = check(row, line)
            if found:
                self.bad += 1
                self.violations.extend(found)
            if self.sink is not None:
                self.sink(self.fspec.name, line, row, found)
