"""Benchmark: synthetic source systems (``outcomes demo-sources``), throughput and peak memory.

Each size runs in a fresh child process (so its peak RSS is its own), writing to a temporary
directory that is deleted afterwards. Reports participants/s, rows/s, output size and peak RSS;
a flat peak RSS across sizes is the "constant memory" claim.

    .venv/bin/python bench/demo_sources.py                    # 1,000 / 10,000 / 100,000
    .venv/bin/python bench/demo_sources.py --sizes 1000000    # a million (minutes, ~GBs of disk)
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = """
import datetime as dt, json, sys
from pathlib import Path
from outcomes.demo.sources import generate_sources
summary = generate_sources(Path(sys.argv[1]), participants=int(sys.argv[2]), seed=42,
                           until=dt.date(2026, 11, 21))
print(json.dumps({"rows": summary.total_rows}))
"""


def run(size: int, root: Path) -> dict[str, float]:
    out = root / f"n{size}"
    started = time.perf_counter()
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(out), str(size)], capture_output=True, text=True, check=True
    )
    elapsed = time.perf_counter() - started
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    rows = json.loads(done.stdout.strip().splitlines()[-1])["rows"]
    size_bytes = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    shutil.rmtree(out)
    return {
        "participants": size,
        "seconds": elapsed,
        "participants_per_s": size / elapsed,
        "rows": rows,
        "rows_per_s": rows / elapsed,
        "megabytes": size_bytes / 1e6,
        # ru_maxrss of children is the max over all children so far: sizes run small to large.
        "peak_rss_mb": max(peak_kib, before) / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    parser.add_argument("--dir", type=Path, default=None, help="where to write (default: a temp dir)")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="oc-bench-", dir=args.dir))
    machine = platform.processor() or platform.machine()
    print(f"# demo-sources benchmark, {machine}, Python {platform.python_version()}")
    print("| participants | seconds | participants/s | rows | rows/s | output MB | peak RSS MB |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    try:
        for size in sorted(args.sizes):
            r = run(size, root)
            print(
                f"| {r['participants']:,} | {r['seconds']:.1f} | {r['participants_per_s']:,.0f} "
                f"| {r['rows']:,} | {r['rows_per_s']:,.0f} | {r['megabytes']:,.0f} "
                f"| {r['peak_rss_mb']:.0f} |",
                flush=True,
            )
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
