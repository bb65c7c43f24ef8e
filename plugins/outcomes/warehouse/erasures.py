"""The auditor's record of erasures (``meta.erasure_sweeps``): which stores each erasure cleaned,
by which delivery or build, with counts, never whom (migration 0012).

The loader records what the delivery that registers an erasure deletes (``raw``, ``pending``,
``quarantine``); the build that carries it out records the locks and the history it cleaned and
the dashboard snapshots it removed (``outcomes.warehouse.locks``, ``outcomes.dashboard.tasks``).

A lock's aggregate marts counted the erased participants: they are recomputed from the lock's
own rows by the dbt models' own SQL (:func:`compile_marts`), which is why an aggregate mart
reads the row-level marts alone.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from psycopg import sql

if TYPE_CHECKING:
    from outcomes.settings import Settings
    from outcomes.warehouse.connection import Warehouse

SWEEPS = "meta.erasure_sweeps"


def record_sweeps(
    conn: Any, step: str, reference: str, participants: int, removed: Mapping[str, int], unit: str = "rows"
) -> None:
    """One row per store of ``removed`` (store -> rows or files removed), in ``conn``'s transaction.
    Nothing is recorded for no participant; a store that held nothing is recorded with 0, so the
    record says it was cleaned."""
    if participants <= 0:
        return
    with conn.cursor() as cursor:
        cursor.executemany(
            f"insert into {SWEEPS} (step, reference, participants, store, removed, unit) "
            "values (%s, %s, %s, %s, %s, %s)",
            [(step, reference, participants, store, int(n), unit) for store, n in removed.items()],
        )


#: The schema the aggregate marts' SQL is compiled against: a name no schema has, replaced by the
#: schema whose rows they are recomputed from (a lock's).
INPUTS = "erasure_inputs"
_RELATION = re.compile(r'"(?:[^"]|"")+"\."((?:[^"]|"")+)"\."((?:[^"]|"")+)"')


class AggregateError(RuntimeError):
    """An aggregate that cannot be recomputed from the rows it is kept with."""


def _target(settings: Settings) -> Path:
    """dbt's target directory for the erasures' compile (its own: the build's stays untouched)."""
    return settings.home / "dbt" / "erasure"


def compile_marts(settings: Settings, warehouse: Warehouse) -> dict[str, str]:
    """The SQL of every mart, compiled by dbt with the marts in the stand-in schema
    :data:`INPUTS`: each aggregate's own rule, from its one home in the dbt project."""
    from outcomes.transform.dbt import run_dbt

    target = _target(settings)
    shutil.rmtree(target / "compiled", ignore_errors=True)  # only this compile's SQL is read
    done = run_dbt(
        settings,
        warehouse,
        ["compile", "--select", "path:models/marts", "--exclude", "resource_type:test"],
        marts_schema=INPUTS,
        target_dir=target,
    )
    if not done.success:
        raise AggregateError("could not compile the marts: " + "; ".join(done.failures))
    return {
        path.stem: path.read_text(encoding="utf-8")
        for path in (target / "compiled").rglob("*.sql")
        if "models" in path.parts
    }


def in_schema(query: str, schema: str) -> str:
    """``query`` (from :func:`compile_marts`) reading the tables of ``schema``."""
    quoted = '"' + schema.replace('"', '""') + '"'
    return _RELATION.sub(lambda m: f'{quoted}."{m.group(2)}"', query)


def with_inputs(query: str, relation: Callable[[str], str]) -> str:
    """``query`` (from :func:`compile_marts`) reading, for each mart it reads, the SQL
    ``relation(mart)`` (a table's name, or a parenthesised query with an alias)."""
    return _RELATION.sub(lambda m: relation(m.group(2).replace('""', '"')), query)


class Aggregates:
    """The aggregate marts' rules for an erasure, from the dbt project: each model's SQL
    (:func:`compile_marts`, compiled on first use, a few seconds, and only when an erasure is
    queued) and each history snapshot's unique key."""

    def __init__(self, settings: Settings, warehouse: Warehouse) -> None:
        self.settings = settings
        self.warehouse = warehouse
        self._queries: dict[str, str] = {}

    def prepare(self) -> None:
        """Compile every mart now (before a transaction that would wait for it)."""
        if not self._queries:
            self._queries = compile_marts(self.settings, self.warehouse)

    def queries(self, tables: Iterable[str]) -> dict[str, str]:
        """The SQL of the aggregates ``tables``; refuses one that reads anything but the marts."""
        self.prepare()
        wanted = set(tables)
        if missing := wanted - set(self._queries):
            raise AggregateError(f"no dbt model of the marts for the aggregate table(s) {sorted(missing)}")
        for name in sorted(wanted):
            outside = sorted(
                {m.group(0) for m in _RELATION.finditer(self._queries[name]) if m.group(1) != INPUTS}
            )
            if outside:
                raise AggregateError(f"the aggregate {name} reads {outside}, not only the row-level marts")
        return {name: self._queries[name] for name in wanted}

    def history_key(self, table: str) -> list[str]:
        """The unique key of the history snapshot kept as ``history.<table>``."""
        manifest = _target(self.settings) / "manifest.json"
        if not manifest.exists():
            self.prepare()  # a compile writes the manifest
        parsed = json.loads(manifest.read_text(encoding="utf-8"))
        # snapshots are enabled only with the published marts (dbt_project.yml): disabled here
        nodes = [*parsed["nodes"].values(), *(n for ns in parsed.get("disabled", {}).values() for n in ns)]
        for node in nodes:
            if (
                node["resource_type"] == "snapshot"
                and node.get("alias") == table
                and node["schema"] == "history"
            ):
                key = node["config"]["unique_key"]
                return [key] if isinstance(key, str) else list(key)
        raise AggregateError(f"no history snapshot is kept as history.{table}")


# --- the history's aggregates ---------------------------------------------------------------
#
# history.agg_employment_rates keeps every version of an aggregate mart, one per change across the
# nightly builds. Each version counted the participants of its builds, an erased one among them;
# the last version before the erasure beside the first after it would tell their outcome. So the
# versions are counted again, build by build, from the row-level history without them: the state
# of build k is what the history held at the moment the next build published (or now, for the last).
# Times compare as dbt writes them (``timestamp``, in the session's time zone, the server's
# default, as ``published_at::timestamp`` is read here): neither dbt's profile nor this connection
# sets one.

_DBT = ("dbt_scd_id", "dbt_updated_at", "dbt_valid_from", "dbt_valid_to")
#: A version is valid at a moment from its start (excluded) to its end (included): a version that
#: ends at a build's publish (a boundary the recount made) is the state the build before it left.
_VALID_AT = "{t}.dbt_valid_from < {at} and ({t}.dbt_valid_to is null or {t}.dbt_valid_to >= {at})"


@dataclass
class HistoryPlan:
    """What an erasure changes in the history's aggregates, read before its rows are deleted."""

    moments: list[Any]  # per published build: the moment its state is read at ('infinity': now)
    published: list[Any]  # per published build: when it was published
    #: per row-level history table: (build index, the erased row's columns) for each build whose
    #: state held an erased participant's row
    erased: dict[str, list[tuple[int, dict[str, Any]]]] = field(default_factory=dict)
    aggregates: list[str] = field(default_factory=list)


def columns_of(conn: Any, schema: str, table: str) -> list[str]:
    """The columns of ``schema.table`` in their order."""
    return [
        r[0]
        for r in conn.execute(
            "select column_name from information_schema.columns "
            "where table_schema = %s and table_name = %s order by ordinal_position",
            (schema, table),
        ).fetchall()
    ]


def history_plan(conn: Any, erased: str) -> HistoryPlan | None:
    """Which builds' states of the history held the ``erased`` participants (a subquery of their
    IDs; None: nothing to count again). Run before their history rows are deleted."""
    tables = {
        t: columns_of(conn, "history", t)
        for (t,) in conn.execute(
            "select table_name from information_schema.tables where table_schema = 'history' order by 1"
        ).fetchall()
    }
    aggregates = [
        t for t, cols in tables.items() if "participant_id" not in cols and "dbt_valid_from" in cols
    ]
    if not aggregates:
        return None
    published = [
        r[0] for r in conn.execute("select published_at::timestamp from meta.published_builds order by 1")
    ]
    if not published:
        return None
    moments = [*published[1:], "infinity"]
    plan = HistoryPlan(moments=moments, published=published, aggregates=aggregates)
    for table, cols in tables.items():
        if "participant_id" not in cols or "dbt_valid_from" not in cols:
            continue
        keep = [c for c in cols if c not in _DBT]
        rows = _rows_at(conn, table, keep, moments, "h.participant_id in " + erased)
        if rows:
            plan.erased[table] = [(int(r[0]), dict(zip(keep, r[1:], strict=True))) for r in rows]
    return plan if plan.erased else None


def recount_history(conn: Any, plan: HistoryPlan, aggregates: Aggregates) -> int:
    """Count every history aggregate again, for the builds whose state held an erased
    participant, from the row-level history left (their rows deleted by now); the versions of the
    keys concerned are rewritten, one per run of builds with the same values. Returns the
    versions written."""
    written = 0
    queries = aggregates.queries(plan.aggregates)
    for table in plan.aggregates:
        key = aggregates.history_key(table)
        columns = columns_of(conn, "history", table)
        values = [c for c in columns if c not in key and c not in _DBT]
        # the keys, per build, whose group held an erased participant's row
        touched: dict[int, set[tuple[Any, ...]]] = {}
        for rows in plan.erased.values():
            for k, row in rows:
                if all(c in row for c in key):
                    touched.setdefault(k, set()).add(tuple(row[c] for c in key))
        if not touched:
            continue
        keys = set().union(*touched.values())
        old = _states_at(conn, table, key, values, plan.moments)
        new: dict[int, dict[tuple[Any, ...], tuple[Any, ...]]] = {}
        for k in sorted(touched):
            query = with_inputs(queries[table], partial(_history_at, conn, plan.moments[k]))
            found = conn.execute(
                sql.SQL("select {} from ({}) as counted").format(
                    sql.SQL(", ").join(sql.Identifier(c) for c in key + values),
                    sql.SQL(query),
                )
            ).fetchall()
            new[k] = {tuple(r[: len(key)]): tuple(r[len(key) :]) for r in found}
        versions = conn.execute(
            sql.SQL("select {}, dbt_valid_from, dbt_valid_to from {}").format(
                sql.SQL(", ").join(sql.Identifier(c) for c in key), sql.Identifier("history", table)
            )
        ).fetchall()
        by_key: dict[tuple[Any, ...], list[tuple[Any, Any]]] = {}
        for row in versions:
            by_key.setdefault(tuple(row[: len(key)]), []).append((row[-2], row[-1]))
        rewritten = []
        for item in sorted(keys, key=repr):
            states = [
                new[k].get(item) if k in new and item in touched[k] else old[k].get(item)
                for k in range(len(plan.moments))
            ]
            rewritten.extend(_versions(item, states, plan, by_key.get(item, [])))
        _replace(conn, table, key, values, keys, rewritten)
        written += len(rewritten)
    return written


def _history_at(conn: Any, at: Any, mart: str) -> str:
    """The row-level history of ``mart`` as it stood at ``at``, as a relation named ``mart``."""
    valid = _VALID_AT.format(t="h", at="{at}")
    return (
        sql.SQL("(select * from {} as h where " + valid + ") as {}")
        .format(
            sql.Identifier("history", mart),
            sql.Identifier(mart),
            at=sql.Composed([sql.Literal(str(at)), sql.SQL("::timestamp")]),
        )
        .as_string(conn)
    )


def _rows_at(conn: Any, table: str, columns: list[str], moments: list[Any], where: str = "true") -> list[Any]:
    """The rows of ``history.<table>`` (``columns``) valid at each moment, each led by the
    moment's index; ``where``: a condition on them (alias ``h``)."""
    return conn.execute(
        sql.SQL(
            "select k - 1, {cols} from unnest(%s::timestamp[]) with ordinality as m (at, k) "
            "join {table} as h on " + _VALID_AT.format(t="h", at="m.at") + " where " + where
        ).format(
            cols=sql.SQL(", ").join(sql.Identifier("h", c) for c in columns),
            table=sql.Identifier("history", table),
        ),
        ([str(m) for m in moments],),
    ).fetchall()


def _states_at(
    conn: Any, table: str, key: list[str], values: list[str], moments: list[Any]
) -> list[dict[tuple[Any, ...], tuple[Any, ...]]]:
    """Per build, the history aggregate's rows (key -> values) valid at its moment."""
    rows = _rows_at(conn, table, key + values, moments)
    states: list[dict[tuple[Any, ...], tuple[Any, ...]]] = [{} for _ in moments]
    for row in rows:
        states[int(row[0])][tuple(row[1 : 1 + len(key)])] = tuple(row[1 + len(key) :])
    return states


def _versions(
    item: tuple[Any, ...], states: list[Any], plan: HistoryPlan, kept: list[tuple[Any, Any]]
) -> list[tuple[tuple[Any, ...], tuple[Any, ...], Any, Any]]:
    """The versions of one key from its state per build (None: absent): one per run of equal
    states. Build k's snapshot ran between its publish and the next build's, so a version of
    before that began (or ended) in that window keeps its time; a boundary the recount makes
    takes the build's publish."""
    n = len(plan.published)

    def within(t: Any, k: int) -> bool:
        after, until = plan.published[k], plan.published[k + 1] if k + 1 < n else None
        return t is not None and t >= after and (until is None or t < until)

    def began(k: int) -> Any:
        return min((f for f, _ in kept if within(f, k)), default=plan.published[k])

    def ended(k: int) -> Any:
        return min((t for _, t in kept if within(t, k)), default=plan.published[k])

    runs: list[tuple[int, Any]] = []
    for k, state in enumerate(states):
        if not runs or runs[-1][1] != state:
            runs.append((k, state))
    out = []
    for i, (k, state) in enumerate(runs):
        if state is None:
            continue
        if i + 1 == len(runs):
            ends = None  # the last build's state is today's: still current
        else:
            following, then = runs[i + 1]
            ends = began(following) if then is not None else ended(following)
        out.append((item, state, began(k), ends))
    return out


def _replace(
    conn: Any,
    table: str,
    key: list[str],
    values: list[str],
    keys: set[tuple[Any, ...]],
    versions: list[tuple[tuple[Any, ...], tuple[Any, ...], Any, Any]],
) -> None:
    """Delete every version of ``keys`` from ``history.<table>`` and write ``versions``."""
    target = sql.Identifier("history", table)
    match = sql.SQL(" and ").join(
        sql.SQL("{} is not distinct from %s").format(sql.Identifier(c)) for c in key
    )
    with conn.cursor() as cursor:
        cursor.executemany(sql.SQL("delete from {} where {}").format(target, match), [list(k) for k in keys])
        cursor.executemany(
            sql.SQL(
                "insert into {} ({}, dbt_scd_id, dbt_updated_at, dbt_valid_from, dbt_valid_to) "
                "values ({}, md5(%s), %s, %s, %s)"
            ).format(
                target,
                sql.SQL(", ").join(sql.Identifier(c) for c in key + values),
                sql.SQL(", ").join(sql.Placeholder() for _ in key + values),
            ),
            [
                [*item, *state, f"{item!r}|{valid_from}", valid_from, valid_from, valid_to]
                for item, state, valid_from, valid_to in versions
            ],
        )
