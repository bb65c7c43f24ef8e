"""Benchmark: the delivery loader against plain ``COPY`` and ``pandas.DataFrame.to_sql``.

One registry delivery of N rows (``proms.csv`` in the exact contract format, with a correct
``_manifest.json``) is written to a temporary directory, and a fresh embedded warehouse is started
under a temporary ``OUTCOMES_HOME`` (or, with ``--url``, scratch databases are created on that
server). The contenders then load the same file into an empty table, each in a child process of
its own, so that its peak RSS is its own:

- ``outcomes loader``: ``apply_delivery`` through ``loader_connection`` (the loader role): every
  row checked against the contract (the columnar check: pyarrow batches, each rule decided once
  per distinct value), the fnr pseudonymised (HMAC-SHA-256, once per distinct number), rows
  ``COPY``-ed in CSV into a temporary table, then set-based inserts into ``raw``/``pending`` and
  the ledger, in one transaction. Without a trial delivery nobody is enrolled, so every row goes
  to ``pending.registry_proms`` (as most registry rows do: they are about non-participants).
- ``plain COPY``: the file's bytes streamed 1 MiB at a time with psycopg 3 ``cursor.copy()``
  (``COPY ... FROM STDIN (FORMAT csv, HEADER true)``) into an all-text table without indexes: no
  checks, no pseudonymisation. The limit.
- ``COPY into a typed, indexed table``: the same into a table with the columns' types, an identity
  primary key and an index on the fnr: what storing the rows the way the warehouse stores them
  costs, before any check. The limit for a loader that keeps typed, indexed tables.
- ``pandas to_sql``: ``pd.read_csv(path, dtype=str)`` then ``df.to_sql(..., chunksize=...)`` on the
  warehouse's SQLAlchemy engine (psycopg 3) into an all-text table: the common hand-written loader,
  which holds the whole file in memory. Twice: ``method="multi"`` (multi-row INSERTs; by default on
  the first ``--pandas-rows`` rows only, it is that slow) and ``method=None`` (executemany).

Only the load is timed (in the child, after imports and connecting); the parent's wall clock
around each child (process start, imports, connecting) is in the notes. Peak RSS is the child's
own ``ru_maxrss``: the client side, not the PostgreSQL server. Writing the delivery is setup and
not measured. Prints a markdown table and the machine's facts; progress goes to stderr.

    .venv/bin/python bench/loader.py                          # 10,000,000 rows (what make bench runs)
    .venv/bin/python bench/loader.py --rows 200000            # a quick try
    .venv/bin/python bench/loader.py --pandas-rows 0          # method=multi on the whole file too
    .venv/bin/python bench/loader.py --only copy loader       # some contenders only
    .venv/bin/python bench/loader.py --url postgresql://postgres@127.0.0.1:5432/postgres

The delivery takes about 75 bytes a row on disk (~750 MB for 10M rows) and the warehouse several
times that; both are deleted at the end (``--keep`` keeps the delivery).
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import platform
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from outcomes.warehouse.connection import Warehouse

SOURCE = "registry"
FILE = "proms.csv"
DELIVERY_ID = "20261121T0200Z"
EXTRACTED_AT = "2026-11-21T02:00:00Z"
DEFAULT_ROWS = 10_000_000
SEED = 20261121
SCHEMA = "bench"
COLUMNS = ("form_id", "fnr", "answered_on", "item", "value", "updated_at", "is_deleted")
TYPES = ("text", "text", "date", "text", "integer", "timestamptz", "boolean")
TYPED_NOTE = "typed columns, a primary key and an index on the person (the shape of pending.registry_proms)"
COPY_CHUNK = 1 << 20
PANDAS_CHUNKSIZE = 10_000
#: With ``method="multi"`` 10,000 rows per ``INSERT ... VALUES`` would be 70,000 bind parameters
#: (7 columns), over PostgreSQL's limit of 65,535 per statement: the largest chunk that fits.
MULTI_CHUNKSIZE = min(PANDAS_CHUNKSIZE, 65_535 // len(COLUMNS))
PSEUDONYM_KEY = b"x" * 32
#: ``--only`` key -> the contender's name in the table.
CONTENDERS = {
    "copy": "plain COPY",
    "copy-typed": "COPY into a typed, indexed table",
    "loader": "outcomes loader",
    "pandas": "pandas to_sql, method=multi",
    "pandas-executemany": "pandas to_sql, method=None",
}
#: to_sql with method="multi" manages a few thousand rows/s here (about half an hour for 10M
#: rows): by default it loads only this prefix of the file (``--pandas-rows``).
DEFAULT_PANDAS_ROWS = 2_000_000

# Shape of the synthetic delivery (setup, not measured).
FNR_POOL = 4_096  # distinct people, reused across forms
VALUE_PATTERNS = 509  # precomputed answer sets (43 items each), picked per form
SKIPPED = 0.03  # share of skipped items (empty value = NULL)
DELETED = 0.005  # share of withdrawn forms (is_deleted = true)
FIRST_DAY = dt.date(2024, 1, 1).toordinal()
DAYS = (dt.date(2026, 11, 18).toordinal() - FIRST_DAY) + 1
FLUSH_FORMS = 2_000


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --- the delivery (setup) ------------------------------------------------------------------


def write_delivery(root: Path, rows: int, seed: int = SEED) -> Path:
    """``<root>/registry/<delivery_id>/`` with ``proms.csv`` of ``rows`` data rows and its manifest.

    Forms of the contract's 43 items (the last one cut short), in-range values with a few skipped,
    synthetic fnrs from a pool, dates before the delivery. Deterministic: same rows and seed, same
    bytes. About 75 bytes a row, written in constant memory.
    """
    from outcomes.contracts import load_contract
    from outcomes.contracts.fnr import synthetic_fnr

    spec = load_contract().file(SOURCE, FILE)
    if spec.column_names != COLUMNS:  # pragma: no cover - the contract changed
        raise RuntimeError(f"proms.csv columns are {spec.column_names}, expected {COLUMNS}")
    ranges = spec.item_ranges()
    rng = random.Random(seed)  # noqa: S311 (synthetic data, not cryptography)
    patterns = [
        tuple(
            f"{code},{'' if rng.random() < SKIPPED else rng.randint(lo, hi)}"
            for code, (lo, hi) in ranges.items()
        )
        for _ in range(VALUE_PATTERNS)
    ]
    born = dt.date(1950, 1, 1).toordinal()
    fnrs = [synthetic_fnr(dt.date.fromordinal(born + 4 * i), 0) for i in range(FNR_POOL)]
    days = [dt.date.fromordinal(FIRST_DAY + d).isoformat() for d in range(DAYS + 3)]
    clock = [f"T{m // 60:02d}:{m % 60:02d}:00Z" for m in range(1440)]

    delivery = root / SOURCE / DELIVERY_ID
    delivery.mkdir(parents=True)
    path = delivery / FILE
    digest = hashlib.sha256()
    width = len(ranges)
    with path.open("wb") as handle:

        def flush(chunks: list[str]) -> None:
            data = "".join(chunks).encode("ascii")
            digest.update(data)
            handle.write(data)
            chunks.clear()

        chunks = [",".join(COLUMNS) + "\n"]
        written = 0
        form = 0
        randrange, rand = rng.randrange, rng.random
        while written < rows:
            day = randrange(DAYS)
            fid = f"F{form:010d}"
            prefix = f"{fid},{fnrs[randrange(FNR_POOL)]},{days[day]},"
            stamp = f"{days[day + randrange(3)]}{clock[randrange(1440)]}"
            suffix = f",{stamp},{'true' if rand() < DELETED else 'false'}\n"
            take = min(width, rows - written)
            items = patterns[randrange(VALUE_PATTERNS)]
            chunks.append("".join([f"{prefix}{items[i]}{suffix}" for i in range(take)]))
            written += take
            form += 1
            if form % FLUSH_FORMS == 0:
                flush(chunks)
        flush(chunks)
    manifest = {
        "source": SOURCE,
        "delivery_id": DELIVERY_ID,
        "extracted_at": EXTRACTED_AT,
        "mode": "incremental",
        "files": [{"name": FILE, "rows": rows, "sha256": digest.hexdigest()}],
    }
    partial = delivery / "_manifest.json.part"
    partial.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    partial.rename(delivery / "_manifest.json")  # written last: the delivery is complete
    return delivery


# --- the warehouse for the run -------------------------------------------------------------


@contextmanager
def warehouse_for_run(url: str | None) -> Iterator[Warehouse]:
    """A fresh, migrated warehouse; gone afterwards.

    Embedded: a new server under a short temporary ``OUTCOMES_HOME`` (unix socket paths must stay
    short), stopped and deleted at the end. ``url``: scratch databases on that server, dropped at
    the end (the project's roles are cluster-wide and stay, as they do after the tests).
    """
    home = Path(tempfile.mkdtemp(prefix="oc-b-", dir="/tmp"))
    os.environ["OUTCOMES_HOME"] = str(home)  # before anything reads the settings
    scratch = f"oc_bench_loader_{os.getpid()}"
    if url is None:
        os.environ.pop("OUTCOMES_WAREHOUSE_URL", None)
    else:
        from sqlalchemy.engine import make_url

        target = make_url(url).set(database=scratch).render_as_string(hide_password=False)
        os.environ["OUTCOMES_WAREHOUSE_URL"] = target
    from outcomes.settings import load_settings
    from outcomes.warehouse import embedded
    from outcomes.warehouse.bootstrap import bootstrap

    settings = load_settings()
    try:
        yield bootstrap(settings)
    finally:
        if url is None:
            embedded.stop(settings.pgdata)
        else:
            import psycopg
            from psycopg import sql

            with psycopg.connect(url, autocommit=True) as conn:
                for name in (scratch, f"{scratch}_airflow"):
                    conn.execute(
                        sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name))
                    )
        shutil.rmtree(home, ignore_errors=True)


def prepare_table(warehouse: Warehouse, name: str, typed: bool = False) -> None:
    """An empty table with the file's columns, on a quiet server: all text without indexes, or
    (``typed``) typed with a primary key and an index on the person, as the warehouse stores them."""
    import psycopg

    if typed:
        columns = ", ".join(f"{c} {t}" for c, t in zip(COLUMNS, TYPES, strict=True))
        columns = f"line bigint generated always as identity primary key, {columns}"
    else:
        columns = ", ".join(f"{c} text" for c in COLUMNS)
    with psycopg.connect(warehouse.url(), autocommit=True) as conn:
        conn.execute(f"create schema if not exists {SCHEMA}")
        conn.execute(f"drop table if exists {SCHEMA}.{name}")
        conn.execute(f"create table {SCHEMA}.{name} ({columns})")
        if typed:
            conn.execute(f"create index on {SCHEMA}.{name} (fnr)")
    quiesce(warehouse)


def quiesce(warehouse: Warehouse) -> None:
    """Vacuum and checkpoint (not timed): what the previous contender left behind, autovacuum of
    its millions of new rows and its dirty buffers, is not charged to the next one."""
    import psycopg

    started = time.perf_counter()
    for statement in ("vacuum", "checkpoint"):
        try:
            with psycopg.connect(warehouse.url(), autocommit=True) as conn:
                conn.execute(statement)
        except psycopg.Error as error:  # e.g. a role without pg_checkpoint on an external server
            log(f"{statement} skipped: {error}")
    log(f"vacuum and checkpoint first (not timed): {time.perf_counter() - started:.1f} s")


def count(warehouse: Warehouse, query: str) -> int:
    import psycopg

    with psycopg.connect(warehouse.url()) as conn:
        row = conn.execute(query).fetchone()
    return int(row[0]) if row else 0


def facts(warehouse: Warehouse) -> str:
    import psycopg

    with psycopg.connect(warehouse.url()) as conn:
        version = conn.execute("show server_version").fetchone()
        buffers = conn.execute("show shared_buffers").fetchone()
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    kind = "embedded (pgserver)" if warehouse.embedded else "external"
    return (
        f"{os.cpu_count()} cores, {memory:.0f} GiB RAM, {platform.system()} {platform.machine()}, "
        f"Python {platform.python_version()}, PostgreSQL {version[0] if version else '?'} {kind}, "
        f"shared_buffers {buffers[0] if buffers else '?'}"
    )


# --- the contenders (each in a child process) ----------------------------------------------


def peak_kib() -> int:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak // 1024 if sys.platform == "darwin" else peak  # bytes on macOS, KiB on Linux


def child_loader(delivery: Path) -> dict[str, Any]:
    from outcomes.contracts import load_contract
    from outcomes.ingest.loader import apply_delivery
    from outcomes.ingest.pseudonym import Pseudonymiser
    from outcomes.ingest.service import loader_connection
    from outcomes.settings import load_settings

    contract = load_contract()
    pseudonymise = Pseudonymiser(PSEUDONYM_KEY)
    with loader_connection(load_settings()) as conn:
        started = time.perf_counter()
        outcome = apply_delivery(conn, delivery, pseudonymise=pseudonymise, contract=contract)
        seconds = time.perf_counter() - started
    return {
        "rows": outcome.rows_received,
        "seconds": seconds,
        "notes": (
            f"{outcome.status}: {outcome.rows_loaded:,} raw, {outcome.rows_pending:,} pending, "
            f"{outcome.rows_quarantined:,} quarantined; columnar checks + HMAC per distinct fnr + COPY "
            "straight into raw/pending"
        ),
    }


def child_copy(delivery: Path, table: str) -> dict[str, Any]:
    import psycopg

    from outcomes.settings import load_settings
    from outcomes.warehouse.connection import resolve

    warehouse = resolve(load_settings(), start=False)
    with psycopg.connect(warehouse.url()) as conn:
        started = time.perf_counter()
        with conn.cursor() as cursor, open(delivery / FILE, "rb") as handle:
            columns = ", ".join(COLUMNS)
            with cursor.copy(
                f"copy {SCHEMA}.{table} ({columns}) from stdin (format csv, header true)"
            ) as copy:
                while chunk := handle.read(COPY_CHUNK):
                    copy.write(chunk)
            rows = cursor.rowcount
        conn.commit()
        seconds = time.perf_counter() - started
    typed = table.endswith("copy_typed")
    notes = "no checks, no pseudonymisation; " + (TYPED_NOTE if typed else "text table")
    return {"rows": rows, "seconds": seconds, "notes": notes}


def child_pandas(delivery: Path, table: str, limit: int | None, multi: bool) -> dict[str, Any]:
    import pandas as pd
    from sqlalchemy import text

    from outcomes.settings import load_settings
    from outcomes.warehouse.connection import resolve

    engine = resolve(load_settings(), start=False).engine()
    with engine.connect() as conn:  # connect (and keep it pooled) outside the clock
        conn.execute(text("select 1"))
    started = time.perf_counter()
    frame = pd.read_csv(delivery / FILE, dtype=str, nrows=limit)
    parsed = time.perf_counter()
    chunksize = MULTI_CHUNKSIZE if multi else PANDAS_CHUNKSIZE
    frame.to_sql(
        table,
        engine,
        schema=SCHEMA,
        if_exists="append",
        index=False,
        method="multi" if multi else None,
        chunksize=chunksize,
    )
    seconds = time.perf_counter() - started
    engine.dispose()
    how = f"multi-row INSERTs of {chunksize:,}" if multi else f"executemany, chunks of {chunksize:,}"
    return {
        "rows": len(frame),
        "seconds": seconds,
        "notes": (
            f"read_csv {parsed - started:.1f} s + to_sql {seconds - parsed + started:.1f} s; {how}; "
            "text table"
        ),
    }


def child(argv: list[str]) -> None:
    """``loader.py _child <key> <delivery> [table] [prefix rows]``: load, print JSON."""
    key, delivery = argv[0], Path(argv[1])
    try:
        if key == "loader":
            result = child_loader(delivery)
        elif key in ("copy", "copy-typed"):
            result = child_copy(delivery, argv[2])
        elif key in ("pandas", "pandas-executemany"):
            limit = int(argv[3]) if len(argv) > 3 else None
            result = child_pandas(delivery, argv[2], limit, multi=key == "pandas")
        else:
            raise SystemExit(f"unknown contender {key!r}")
    except Exception as error:
        root: BaseException = error
        while root.__cause__ is not None:  # the driver's own words, not a 70,000-parameter statement
            root = root.__cause__
        result = {"error": f"{type(root).__name__}: {str(root).splitlines()[0][:300]}"}
    result["peak_kib"] = peak_kib()
    print(json.dumps(result), flush=True)


# --- the run -------------------------------------------------------------------------------


@dataclass
class Result:
    contender: str
    rows: int
    seconds: float
    process_seconds: float
    peak_mib: float
    notes: str

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0


def run_child(name: str, delivery: Path, *extra: str) -> tuple[dict[str, Any] | None, float, str]:
    """Run one contender in a fresh interpreter: (its JSON, wall seconds, stderr tail)."""
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "_child", name, str(delivery), *extra],
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.perf_counter() - started
    tail = "\n".join(line[:300] for line in done.stderr.strip().splitlines()[-15:])
    if done.returncode != 0 or not done.stdout.strip():
        return None, wall, tail
    report = json.loads(done.stdout.strip().splitlines()[-1])
    if "error" in report:
        return None, wall, str(report["error"])
    return report, wall, tail


def contend(key: str, warehouse: Warehouse, delivery: Path, rows: int, pandas_rows: int) -> Result:
    """Run one contender on an empty target; its row of the table."""
    name = CONTENDERS[key]
    log(f"{name}: loading ...")
    if key == "loader":
        quiesce(warehouse)
        report, wall, tail = run_child(key, delivery)
        check = (
            "select (select count(*) from pending.registry_proms) + (select count(*) from raw.registry_proms)"
            " + (select count(*) from quarantine.rows)"
        )
        return measured(name, warehouse, report, wall, tail, rows, check)
    table = "proms_" + key.replace("-", "_")
    check = f"select count(*) from {SCHEMA}.{table}"
    prepare_table(warehouse, table, typed=key == "copy-typed")
    if key == "pandas" and 0 < pandas_rows < rows:  # rows/s from a prefix, clearly labelled
        report, wall, tail = run_child(key, delivery, table, str(pandas_rows))
        label = f"{name}, first {pandas_rows:,} rows only"
        return measured(label, warehouse, report, wall, tail, pandas_rows, check)
    report, wall, tail = run_child(key, delivery, table)
    return measured(name, warehouse, report, wall, tail, rows, check)


def measured(
    label: str,
    warehouse: Warehouse,
    report: dict[str, Any] | None,
    wall: float,
    tail: str,
    expected: int,
    check: str,
) -> Result:
    """A child's report as a row; the rows it claims are checked against the target table."""
    if report is None:
        log(f"{label}: FAILED\n{tail}")
        return Result(label, 0, 0.0, wall, 0.0, f"failed: {tail.splitlines()[-1] if tail else '?'}")
    notes = str(report["notes"])
    found = count(warehouse, check)
    if found != expected or int(report["rows"]) != expected:
        notes += f"; MISMATCH: {found:,} rows in the table, {expected:,} expected"
    notes += f"; process {wall:.1f} s"
    result = Result(
        label, int(report["rows"]), float(report["seconds"]), wall, report["peak_kib"] / 1024, notes
    )
    log(
        f"{label}: {result.rows:,} rows in {result.seconds:.1f} s ({result.rows_per_s:,.0f} rows/s), "
        f"peak RSS {result.peak_mib:,.0f} MiB"
    )
    return result


def table(results: list[Result]) -> str:
    lines = [
        "| contender | rows | seconds | rows/s | peak RSS MiB | notes |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for r in results:
        lines.append(
            f"| {r.contender} | {r.rows:,} | {r.seconds:.1f} | {r.rows_per_s:,.0f} | {r.peak_mib:,.0f} "
            f"| {r.notes} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=DEFAULT_ROWS, help="rows in the delivery (10,000,000)")
    parser.add_argument(
        "--pandas-rows",
        type=int,
        default=DEFAULT_PANDAS_ROWS,
        help="to_sql with method=multi loads only this prefix of the file (2,000,000; 0: the whole file)",
    )
    parser.add_argument(
        "--only", choices=list(CONTENDERS), nargs="+", default=list(CONTENDERS), help="these contenders only"
    )
    parser.add_argument(
        "--url", default=None, help="an external PostgreSQL (a role that may create databases)"
    )
    parser.add_argument("--dir", type=Path, default=Path("/tmp"), help="where to write the delivery (/tmp)")
    parser.add_argument("--keep", action="store_true", help="keep the delivery (its path is printed)")
    args = parser.parse_args()
    if args.rows < 1:
        parser.error("--rows must be at least 1")

    root = Path(tempfile.mkdtemp(prefix="oc-bench-loader-", dir=args.dir))
    try:
        log(f"writing a registry delivery of {args.rows:,} rows under {root} ...")
        started = time.perf_counter()
        delivery = write_delivery(root, args.rows)
        size = (delivery / FILE).stat().st_size
        log(f"written: {size / 1e6:,.0f} MB in {time.perf_counter() - started:.1f} s")
        log("starting a fresh warehouse ...")
        with warehouse_for_run(args.url) as warehouse:
            machine = facts(warehouse)
            log(machine)
            results = [contend(key, warehouse, delivery, args.rows, args.pandas_rows) for key in args.only]
        print(f"# loader benchmark: one registry delivery, {args.rows:,} rows, {size / 1e6:,.0f} MB")
        print(f"# {machine}")
        print(table(results), flush=True)
    finally:
        if args.keep:
            log(f"kept the delivery: {root / SOURCE / DELIVERY_ID}")
        else:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_child":
        child(sys.argv[2:])
    else:
        main()
