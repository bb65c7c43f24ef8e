"""The benchmark suite (``make bench``): every figure of bench/README.md, measured side by side.

    .venv/bin/python bench/run.py                    # full: ~1.5 h, 1,000 / 10,000 / 100,000 participants
    .venv/bin/python bench/run.py --scale small      # the quick variant CI runs (no timing assertions)
    .venv/bin/python bench/run.py --million          # full, plus 1,000,000 participants (disk permitting)
    .venv/bin/python bench/run.py --only loader      # some parts only: loader build overhead parse

Parts (each a ratio measured in the same run, each figure a median over ``--repeats`` runs):

- ``loader``: one registry delivery loaded by the project's loader, by plain ``COPY`` (the limit),
  by ``COPY`` into a typed, indexed table (the limit with the warehouse's storage) and by
  ``pandas.DataFrame.to_sql`` with its default method (what people hand-write), in rounds (one of
  each per round): rows/s and peak RSS, ``loader_vs_copy``, ``loader_vs_copy_typed`` and
  ``loader_vs_pandas``; the loader's peak RSS at a tenth of the rows too (flat memory: the two
  are equal).
- ``build``: at each cohort size, the first ``outcomes run``, an incremental night (the last
  night's deliveries after a full build, ``outcomes run`` end to end) and the nightly build
  (``outcomes rebuild``: dbt, gate, publish, history, dashboard, docs, each stage's time from
  Airflow's record of the run); the growth exponent of the build's time against participants
  (least squares of log time on log participants); checksums of every published mart.
- ``overhead``: ``outcomes run`` at trial size against the same work called directly in one process.
- ``parse``: every DAG file's parse time, as the dag-processor parses it.

Writes ``bench/results/latest.json`` (``latest-small.json`` for the small scale) and, at full
scale, the results table of ``bench/README.md`` (between its ``bench:results`` markers). Progress
goes to stderr.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import platform
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import loader  # noqa: E402  (bench/loader.py, beside this file)
import nightly  # noqa: E402

#: The settings a results file records (tuning, no secret): the results file is committed.
BENCH_SETTINGS = ("OUTCOMES_DBT_EXECUTION", "OUTCOMES_DBT_THREADS")

PARTS = ("loader", "build", "modes", "overhead", "parse")
README_START = "<!-- bench:results:start -->"
README_END = "<!-- bench:results:end -->"


@dataclass(frozen=True)
class Scale:
    loader_rows: int
    build_sizes: tuple[int, ...]
    repeats: int
    modes_participants: int
    modes: tuple[tuple[str, str], ...] = nightly.MODES
    trial_participants: int = 58
    #: the modes on the warehouse of the build part's first size (no setup of their own)
    modes_on_build: bool = False


SCALES = {
    # proves that every part still runs: small enough for CI, too small for conclusions
    "small": Scale(
        loader_rows=200_000,
        build_sizes=(1_000,),
        repeats=1,
        modes_participants=1_000,
        # the build part's rebuild is the default mode's run: only the other one here
        modes=(("watcher", "4"),),
        modes_on_build=True,
    ),
    "full": Scale(
        loader_rows=10_000_000, build_sizes=(1_000, 10_000, 100_000), repeats=3, modes_participants=10_000
    ),
}
MILLION = 1_000_000
#: Bytes of free disk a million participants need: ~22 GB of deliveries and several times that
#: in the warehouse (measured: 2.3 GB of deliveries per 100,000 participants).
MILLION_DISK = 150 * 10**9

log = nightly.log


# --- the loader, side by side ---------------------------------------------------------------


def reset_loader_tables(warehouse: Any) -> None:
    """Empty what the loader wrote, so that the next round loads the same delivery anew (an
    applied delivery is otherwise a duplicate, rightly, and changes nothing)."""
    import psycopg

    with psycopg.connect(warehouse.url(), autocommit=True) as conn:
        conn.execute(
            "truncate pending.registry_proms, raw.registry_proms, quarantine.rows, "
            "quarantine.delivery_problems, meta.delivery_events, meta.deliveries"
        )


def loader_part(rows: int, repeats: int, root: Path) -> dict[str, Any]:
    keys = ("copy", "copy-typed", "loader", "pandas-executemany")
    work = Path(tempfile.mkdtemp(prefix="oc-bl-", dir=root))
    small_rows = max(rows // 10, 1)
    try:
        log(f"loader: writing registry deliveries of {rows:,} and {small_rows:,} rows ...")
        delivery = loader.write_delivery(work / "full", rows)
        small = loader.write_delivery(work / "tenth", small_rows)
        size = (delivery / loader.FILE).stat().st_size
        runs: dict[str, list[loader.Result]] = {k: [] for k in keys}
        tenth: list[loader.Result] = []
        with loader.warehouse_for_run(None) as warehouse:
            machine = loader.facts(warehouse)
            for round_ in range(repeats):
                log(f"loader: round {round_ + 1}/{repeats}")
                for key in keys:
                    if key == "loader":
                        reset_loader_tables(warehouse)
                    runs[key].append(loader.contend(key, warehouse, delivery, rows, 0))
                reset_loader_tables(warehouse)
                tenth.append(loader.contend("loader", warehouse, small, small_rows, 0))
        med = nightly.median
        figures = {
            loader.CONTENDERS[k]: {
                "rows": rows,
                "seconds": round(med([r.seconds for r in rs]), 2),
                "rows_per_s": round(med([r.rows_per_s for r in rs])),
                "peak_rss_mib": round(med([r.peak_mib for r in rs]), 1),
                "runs_rows_per_s": [round(r.rows_per_s) for r in rs],
                "notes": rs[-1].notes,
            }
            for k, rs in runs.items()
        }
        failed = [name for name, f in figures.items() if "failed" in f["notes"] or "MISMATCH" in f["notes"]]
        if failed:
            raise RuntimeError(f"loader benchmark: {', '.join(failed)} failed or loaded the wrong rows")
        ours = figures[loader.CONTENDERS["loader"]]
        return {
            "machine": machine,
            "rows": rows,
            "file_mb": round(size / 1e6, 1),
            "repeats": repeats,
            "contenders": figures,
            "loader_vs_copy": round(ours["rows_per_s"] / figures["plain COPY"]["rows_per_s"], 3),
            # the same limit with the warehouse's storage: typed, a primary key, the person indexed
            "loader_vs_copy_typed": round(
                ours["rows_per_s"] / figures[loader.CONTENDERS["copy-typed"]]["rows_per_s"], 3
            ),
            "loader_vs_pandas": round(
                ours["rows_per_s"] / figures[loader.CONTENDERS["pandas-executemany"]]["rows_per_s"], 2
            ),
            "loader_peak_rss_mib_at_tenth": round(med([r.peak_mib for r in tenth]), 1),
            "tenth_rows": small_rows,
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)


# --- the nightly build at scale -------------------------------------------------------------


def growth_exponent(points: list[tuple[int, float]]) -> float | None:
    """b in time = a * participants^b, least squares on the logs (None with fewer than 2 sizes)."""
    if len(points) < 2:
        return None
    xs = [math.log(n) for n, _ in points]
    ys = [math.log(max(t, 1e-9)) for _, t in points]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    return round(sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx, 2)


def growth(sizes: list[dict[str, Any]]) -> dict[str, Any]:
    """Growth exponents of the nightly build and of its dbt stage, over the sizes measured."""
    done = [r for r in sizes if "build" in r]
    return {
        "growth_exponent_build": growth_exponent([(r["participants"], r["build"]["wall_s"]) for r in done]),
        "growth_exponent_dbt": growth_exponent(
            [(r["participants"], r["build"]["stages_s"]["dbt"]) for r in done]
        ),
    }


def modes_part(scale: Scale, repeats: int, root: Path) -> dict[str, Any]:
    participants = scale.modes_participants
    return {"participants": participants, "variants": nightly.modes(root, participants, repeats, scale.modes)}


def overhead_part(participants: int, repeats: int, root: Path) -> dict[str, Any]:
    runs, directs = [], []
    for i in range(repeats):
        log(f"overhead {i + 1}/{repeats}: outcomes run at {participants} participants ...")
        runs.append(nightly.orchestrated(root, participants))
        log(f"  outcomes run {runs[-1]['wall_s']} s; the same work called directly ...")
        directs.append(nightly.direct(root, participants))
        log(f"  direct {directs[-1]['wall_s']} s")
    same = all(r["checksums"] == d["checksums"] for r, d in zip(runs, directs, strict=True))
    if not same:
        raise RuntimeError("outcomes run and the direct calls published different marts")
    run_s = nightly.median([r["wall_s"] for r in runs])
    direct_s = nightly.median([d["wall_s"] for d in directs])
    return {
        "participants": participants,
        "repeats": repeats,
        "outcomes_run_s": round(run_s, 2),
        "direct_s": round(direct_s, 2),
        "run_vs_direct": round(run_s / direct_s, 2),
        "outcomes_run_stages_s": runs[-1]["stages_s"],
        "outcomes_run_ingest_s": runs[-1]["ingest_s"],
        "direct_steps_s": directs[-1]["steps_s"],
        "same_marts": same,
    }


def parse_part(repeats: int, root: Path) -> dict[str, Any]:
    log("parse times of the DAG files ...")
    times = nightly.parse_times(root, HERE.parent / "dags", max(repeats, 3))
    return {"seconds": times, "slowest_s": max(times.values()), "repeats": max(repeats, 3)}


# --- facts, results, README ---------------------------------------------------------------


def versions() -> dict[str, str]:
    from importlib.metadata import version

    names = (
        "apache-airflow",
        "dbt-core",
        "dbt-postgres",
        "astronomer-cosmos",
        "great-expectations",
        "psycopg",
        "pgserver",
        "pyarrow",
        "pandas",
    )
    out = {"python": platform.python_version()}
    for name in names:
        try:
            out[name] = version(name)
        except Exception:
            out[name] = "not installed"
    return out


def machine() -> dict[str, Any]:
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {
        "cores": os.cpu_count(),
        "memory_gib": round(memory),
        "system": f"{platform.system()} {platform.machine()}",
        "postgresql": "embedded (pgserver), default settings",
    }


def fmt_s(value: float) -> str:
    return f"{value:,.1f} s" if value < 120 else f"{value / 60:,.1f} min"


def markdown(results: dict[str, Any]) -> str:
    """The results as Markdown tables (what bench/README.md shows between its markers)."""
    out = [
        f"Measured {results['date']} with `{results['command']}` on {results['machine']['cores']} cores, "
        f"{results['machine']['memory_gib']} GiB, {results['machine']['system']}; "
        + ", ".join(f"{k} {v}" for k, v in results["versions"].items())
        + f". Medians over {results['repeats']} run(s).",
        "",
    ]
    for name in ("loader", "overhead", "modes", "parse"):
        if "error" in results.get(name, {}):
            out += [f"**{name}**: FAILED ({results[name]['error'].splitlines()[0]})", ""]
    if "loader" in results and "error" not in results["loader"]:
        lo = results["loader"]
        out += [
            f"**Ingest**: one registry delivery of {lo['rows']:,} rows ({lo['file_mb']:,} MB), each "
            "contender in a child process of its own, in rounds.",
            "",
            "| contender | rows/s | seconds | peak RSS MiB |",
            "|---|---:|---:|---:|",
        ]
        for name, f in lo["contenders"].items():
            out.append(f"| {name} | {f['rows_per_s']:,} | {f['seconds']:,.1f} | {f['peak_rss_mib']:,.0f} |")
        out += [
            "",
            f"`loader_vs_copy` = **{lo['loader_vs_copy']}**, "
            f"`loader_vs_copy_typed` = **{lo.get('loader_vs_copy_typed', '-')}**, "
            f"`loader_vs_pandas` = **{lo['loader_vs_pandas']}**; the loader's peak RSS at "
            f"{lo['tenth_rows']:,} rows: {lo['loader_peak_rss_mib_at_tenth']:,.0f} MiB.",
            "",
        ]
    if "build" in results:
        bu = results["build"]
        out += [
            "**The nightly build** (`outcomes rebuild`: every stage of `build_outcomes`), the first "
            "`outcomes run` (ingest of the backlog + build) and an incremental night (the last "
            "night's deliveries, `outcomes run` end to end):",
            "",
            "| participants | rows | nightly build | dbt | effects | gate | publish | history | dashboard "
            "| docs | orchestration | first run (ingest) | incremental night (new rows) |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for r in bu["sizes"]:
            if "error" in r:
                out.append(f"| {r['participants']:,} | FAILED: {r['error'].splitlines()[0][:200]} |")
                continue
            b, st, inc, first = r["build"], r["build"]["stages_s"], r["incremental_night"], r["first_run"]
            out.append(
                f"| {r['participants']:,} | {r['rows']:,} | **{fmt_s(b['wall_s'])}** | {fmt_s(st['dbt'])} "
                f"| {fmt_s(st['effects'])} | {fmt_s(st['gate'])} | {fmt_s(st['publish'])} "
                f"| {fmt_s(st['history'])} "
                f"| {fmt_s(st['dashboard'])} | {fmt_s(st['docs'])} | {fmt_s(b['orchestration_s'])} "
                f"| {fmt_s(first['wall_s'])} ({fmt_s(first['ingest_s'])}) "
                f"| {fmt_s(inc['wall_s'])} ({inc['new_rows']:,}, {inc['new_rows_pct']} %) |"
            )
        out += [
            "",
            f"Growth exponent of the nightly build's time against participants: "
            f"**{bu['growth_exponent_build']}** (dbt alone: {bu['growth_exponent_dbt']}).",
            "",
        ]
    if "modes" in results and "error" not in results["modes"]:
        mo = results["modes"]
        out += [
            f"**How Cosmos runs dbt** (`OUTCOMES_DBT_EXECUTION`, `OUTCOMES_DBT_THREADS`): the nightly build "
            f"at {mo['participants']:,} participants, one of each per round on one warehouse, same marts:",
            "",
            "| execution | threads | nightly build | dbt stage | orchestration |",
            "|---|---:|---:|---:|---:|",
        ]
        for v in mo["variants"]:
            b = v["build"]
            out.append(
                f"| {v['execution']} | {v['threads']} | {fmt_s(b['wall_s'])} | {fmt_s(b['stages_s']['dbt'])} "
                f"| {fmt_s(b['orchestration_s'])} |"
            )
        out.append("")
    if "overhead" in results and "error" not in results["overhead"]:
        ov = results["overhead"]
        out += [
            f"**Orchestration overhead** at trial size ({ov['participants']} randomised + the "
            "8-person pilot): "
            f"`outcomes run` {fmt_s(ov['outcomes_run_s'])} against {fmt_s(ov['direct_s'])} for the same work "
            f"called directly in one process: **{ov['run_vs_direct']}x** (same marts: {ov['same_marts']}).",
            "",
        ]
    if "parse" in results and "error" not in results["parse"]:
        pa = results["parse"]
        out += [
            "**DAG parse times** (median, a fresh child per parse):",
            "",
            "| DAG file | seconds |",
            "|---|---:|",
        ]
        out += [f"| `{name}` | {s:.3f} |" for name, s in pa["seconds"].items()]
        out.append("")
    return "\n".join(out)


def update_readme(text: str) -> None:
    path = HERE / "README.md"
    readme = path.read_text(encoding="utf-8")
    start, end = readme.index(README_START) + len(README_START), readme.index(README_END)
    path.write_text(readme[:start] + "\n" + text + "\n" + readme[end:], encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scale", choices=list(SCALES), default="full")
    parser.add_argument("--only", nargs="+", choices=PARTS, default=list(PARTS))
    parser.add_argument("--repeats", type=int, default=None, help="runs per figure (small 1, full 3)")
    parser.add_argument("--sizes", type=int, nargs="+", default=None, help="cohort sizes of the build part")
    parser.add_argument("--million", action="store_true", help="add 1,000,000 participants (disk permitting)")
    parser.add_argument("--dir", type=Path, default=Path("/tmp"), help="scratch space (/tmp)")
    parser.add_argument("--out", type=Path, default=None, help="results JSON (bench/results/latest*.json)")
    args = parser.parse_args()

    scale = SCALES[args.scale]
    repeats = args.repeats or scale.repeats
    sizes = tuple(args.sizes or scale.build_sizes)
    if args.million:
        free = shutil.disk_usage(args.dir).free
        if free >= MILLION_DISK:
            sizes += (MILLION,)
        else:
            log(
                f"1,000,000 participants skipped: {free / 1e9:.0f} GB free, "
                f"{MILLION_DISK / 1e9:.0f} GB needed"
            )
    command = "make bench" + ("" if args.scale == "full" else f" BENCH_SCALE={args.scale}")
    results: dict[str, Any] = {
        "date": dt.date.today().isoformat(),
        "scale": args.scale,
        "command": command
        if args.only == list(PARTS) and not args.sizes
        else "bench/run.py " + " ".join(sys.argv[1:]),
        "repeats": repeats,
        "machine": machine(),
        "versions": versions(),
        # the settings that change how dbt runs, by name: never the profile's connection (its password)
        "settings": {k: os.environ[k] for k in BENCH_SETTINGS if k in os.environ},
    }
    out = args.out or HERE / "results" / (
        "latest.json" if args.scale == "full" else f"latest-{args.scale}.json"
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="ocb-", dir=args.dir))
    started = time.perf_counter()
    failed: list[str] = []

    def save() -> None:
        """The results so far: a part that fails, or a run stopped half-way, keeps the rest."""
        results["seconds"] = round(time.perf_counter() - started, 1)
        out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")

    def measure(name: str, how: Any) -> dict[str, Any]:
        try:
            return dict(how())
        except Exception as error:  # recorded, and the run goes on to the next part
            log(f"{name} FAILED: {error}")
            failed.append(name)
            return {"error": f"{type(error).__name__}: {error}"[:2000]}

    try:
        if "loader" in args.only:
            results["loader"] = measure("loader", lambda: loader_part(scale.loader_rows, repeats, root))
            save()
        if "overhead" in args.only:
            results["overhead"] = measure(
                "overhead", lambda: overhead_part(scale.trial_participants, repeats, root)
            )
            save()
        modes_later = "modes" in args.only
        if "build" in args.only:
            results["build"] = {"sizes": []}
            for n in sizes:
                after = None
                if modes_later and scale.modes_on_build and n == sizes[0]:
                    modes_later = False  # the modes run on this warehouse, after its builds

                    def after(home: nightly.Home, n: int = n) -> dict[str, Any]:
                        def variants() -> dict[str, Any]:
                            return {
                                "participants": n,
                                "variants": nightly.modes_on(home, repeats, scale.modes),
                            }

                        return measure("modes", variants)

                size = measure(
                    f"build at {n:,}", lambda n=n, after=after: nightly.nightly(root, n, repeats, after=after)
                )
                if "after" in size:
                    results["modes"] = size.pop("after")
                results["build"]["sizes"].append({"participants": n, **size})
                results["build"].update(growth(results["build"]["sizes"]))
                save()
        if modes_later:
            results["modes"] = measure("modes", lambda: modes_part(scale, repeats, root))
            save()
        if "parse" in args.only:
            results["parse"] = measure("parse", lambda: parse_part(repeats, root))
    finally:
        shutil.rmtree(root, ignore_errors=True)
        save()
    text = markdown(results)
    print(text)
    if args.scale == "full" and args.out is None:
        update_readme(text)
    log(f"done in {fmt_s(results['seconds'])}: {out}")
    if failed:
        raise SystemExit(f"failed: {', '.join(failed)} (their errors are in {out})")


if __name__ == "__main__":
    main()
