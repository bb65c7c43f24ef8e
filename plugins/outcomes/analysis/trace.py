"""``outcomes trace PARTICIPANT_ID``: where one participant's published numbers came from
(docs/analysts-guide.md, "Trace a number").

For one participant: the employment outcome at each horizon and the first employment date as
published (and as a lock froze them, with ``--lock``), the record that decided the date (its
delivery and line, from ``adtte_first_employment``), every version of every employment record the
source delivered about them with its delivery, when that delivery was extracted and applied, and
whether the latest build took it (the version in ``staging``, chosen by the staging models' own
rule) or it was superseded, deleted or not yet visible; the month-by-month states; and the
questionnaire forms behind the scores, with the deliveries that carried them.

It reads ``raw`` (as the warehouse's owner): a data engineer's tool inside the secure zone. It
prints the trial's participant ID, never a pseudonym or an fnr (the warehouse holds no fnr).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from outcomes.dashboard.data import HORIZONS


class TraceError(LookupError):
    """No such participant (or lock) to trace."""


@dataclass
class Trace:
    participant_id: str
    build_id: str
    as_of: str
    participant: dict[str, Any]
    outcomes: dict[int, dict[str, Any]]
    event: dict[str, Any] | None
    records: list[dict[str, Any]]
    months: list[dict[str, Any]]
    scores: list[dict[str, Any]]
    lock: dict[str, Any] | None = None
    locked_outcomes: dict[int, dict[str, Any]] = field(default_factory=dict)
    locked_event: dict[str, Any] | None = None

    def changed(self) -> list[int]:
        """The horizons whose outcome or first employment date differ between the lock and today."""
        return [
            h
            for h in HORIZONS
            if self.lock is not None and self.locked_outcomes.get(h) != self.outcomes.get(h)
        ]


def _rows(conn: Any, query: Any, params: Any = None) -> list[dict[str, Any]]:
    from psycopg.rows import dict_row

    with conn.cursor(row_factory=dict_row) as cursor:
        return list(cursor.execute(query, params).fetchall())


def _exists(conn: Any, schema: str, table: str) -> bool:
    return conn.execute("select to_regclass(%s)", (f'"{schema}"."{table}"',)).fetchone() != (None,)


def _published(conn: Any, schema: str, participant_id: str) -> tuple[dict[str, Any], dict[int, Any], Any]:
    from psycopg import sql

    people = _rows(
        conn,
        sql.SQL("select * from {} where participant_id = %s").format(
            sql.Identifier(schema, "dim_participants")
        ),
        (participant_id,),
    )
    if not people:
        return {}, {}, None
    outcomes = {
        r["horizon_months"]: {
            "employed": r["is_employed_within"],
            "first_employment_date": r["first_employment_date"],
        }
        for r in _rows(
            conn,
            sql.SQL(
                "select horizon_months, is_employed_within, first_employment_date from {} "
                "where participant_id = %s order by horizon_months"
            ).format(sql.Identifier(schema, "fct_employment_outcomes")),
            (participant_id,),
        )
    }
    event = None
    if _exists(conn, schema, "adtte_first_employment"):
        found = _rows(
            conn,
            sql.SQL("select * from {} where participant_id = %s").format(
                sql.Identifier(schema, "adtte_first_employment")
            ),
            (participant_id,),
        )
        event = found[0] if found else None
    return people[0], outcomes, event


def _key(r: dict[str, Any]) -> tuple[Any, Any, Any]:
    return r["delivery_id"], r["source_line"], r["kind"]


def _order(r: dict[str, Any]) -> tuple[Any, Any, Any]:
    """The staging models' order of versions (macros/versions.sql): recorded, delivery, line."""
    return r["recorded_at"], r["delivery_id"], r["source_line"]


def _records(conn: Any, participant_id: str) -> list[dict[str, Any]]:
    """Every version of the participant's employment records, oldest delivery first, with the
    delivery's times and whether the latest build took it (staging holds the versions it chose)."""
    in_effect = (
        {
            (r["delivery_id"], r["source_line"], r["kind"])
            for r in _rows(
                conn,
                """
            select delivery_id, source_line, 'job' as kind from staging.stg_employment__jobs
            where participant_id = %(p)s
            union all
            select delivery_id, source_line, 'checkpoint' from staging.stg_employment__checkpoints
            where participant_id = %(p)s
            """,
                {"p": participant_id},
            )
        }
        if _exists(conn, "staging", "stg_employment__jobs")
        else set()
    )
    found = _rows(
        conn,
        """
        select 'job' as kind, 'job ' || j.job_id as record, j.job_id as sort_key,
               j.delivery_id, j.source_line, j.recorded_at,
               j.job_type || ' from ' || j.start_date || coalesce(' to ' || j.end_date, '')
               || ', ' || j.hours_per_week || ' h/week' as says,
               j.is_deleted, d.status, d.extracted_at, d.applied_at
        from raw.employment_jobs j join meta.deliveries d
          on d.source = 'employment' and d.delivery_id = j.delivery_id
        where j.participant_id = %(p)s
        union all
        select 'checkpoint', 'checkpoint month ' || c.checkpoint_month,
               lpad(c.checkpoint_month::text, 3, '0'),
               c.delivery_id, c.source_line,
               c.recorded_at, c.status || ' on ' || c.assessed_on
               || coalesce(', ' || c.hours_per_week || ' h/week', ''),
               false, d.status, d.extracted_at, d.applied_at
        from raw.employment_checkpoints c join meta.deliveries d
          on d.source = 'employment' and d.delivery_id = c.delivery_id
        where c.participant_id = %(p)s
        order by kind, sort_key, recorded_at, delivery_id, source_line
        """,
        {"p": participant_id},
    )
    chosen = {r["record"]: r for r in found if _key(r) in in_effect}
    for r in found:
        current = chosen.get(r["record"])
        if current is r:
            r["state"] = "in effect"
        elif current is None:
            r["state"] = "deletion" if r["is_deleted"] else "not in effect (deleted, or outside the cohort)"
        elif _order(r) < _order(current):
            r["state"] = "superseded"
        else:  # a later version the last build did not take (extracted after its as-of date)
            r["state"] = "later than the last build"
    return found


def trace(conn: Any, participant_id: str, lock: str | None = None) -> Trace:
    """Everything ``outcomes trace`` shows for ``participant_id`` (``conn`` as the owner)."""
    from outcomes.warehouse.locks import schema_for
    from outcomes.warehouse.publish import PUBLISHED, schema_build_id

    participant, outcomes, event = _published(conn, PUBLISHED, participant_id)
    if not participant:
        raise TraceError(f"participant {participant_id!r} is not in the published marts")
    build_id = schema_build_id(conn, PUBLISHED) or "?"
    (as_of,) = conn.execute(
        "select as_of_date::text from meta.published_builds where build_id = %s", (build_id,)
    ).fetchone() or ("?",)
    months = _rows(
        conn,
        "select month_index, checkpoint_date, is_observed, is_employed, benefit_on_checkpoint, "
        "benefit_grade_pct, work_participation_state from marts.fct_participant_months "
        "where participant_id = %s order by month_index",
        (participant_id,),
    )
    scores = _rows(
        conn,
        """
        select s.timepoint_months, s.form_id, s.answered_on, s.odi_pct, s.nrs_pain_intensity, s.eq5d_index,
               (select string_agg(f.delivery_id || ' (updated ' || f.updated_at::date || ')', ', '
                                  order by f.delivery_id)
                from raw.registry_form_rows f where f.form_id = s.form_id) as deliveries
        from marts.fct_prom_scores s where s.participant_id = %s order by s.timepoint_months
        """,
        (participant_id,),
    )
    found = Trace(
        participant_id=participant_id,
        build_id=build_id,
        as_of=as_of,
        participant=participant,
        outcomes=outcomes,
        event=event,
        records=_records(conn, participant_id),
        months=months,
        scores=scores,
    )
    if lock is not None:
        locked = _rows(
            conn, "select name, build_id, as_of_date, created_at from meta.locks where name = %s", (lock,)
        )
        if not locked:
            raise TraceError(f"there is no lock {lock!r} (`outcomes lock list`)")
        found.lock = locked[0]
        _, found.locked_outcomes, found.locked_event = _published(conn, schema_for(lock), participant_id)
    return found


def _text(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dt.datetime):  # to the minute, in UTC: the tables stay narrow
        return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M")
    return str(value)


def render(found: Trace, console: Any) -> None:
    """``found`` as ``outcomes trace`` prints it."""
    from rich.table import Table

    p = found.participant
    console.print(
        f"[bold]{found.participant_id}[/]: {p['study']} {p['arm']}, randomised {p['randomised_on']}, "
        f"observed until {p['observed_until']}"
        + (
            f", follow-up ended {p['followup_ended_on']} ({p['followup_end_reason']})"
            if p["followup_ended_on"]
            else ""
        )
    )
    console.print(f"published build {found.build_id}, as of {found.as_of}")
    outcome = Table("months", "employed within", "first employment date", title="Employment outcome")
    if found.lock is not None:
        outcome.add_column(f"lock {found.lock['name']} (as of {found.lock['as_of_date']})")
    for h in HORIZONS:
        now = found.outcomes.get(h, {})
        cells = [str(h), _text(now.get("employed")), _text(now.get("first_employment_date"))]
        if found.lock is not None:
            then = found.locked_outcomes.get(h)
            cells.append(
                "not in the lock"
                if then is None
                else f"{_text(then['employed'])}, {_text(then['first_employment_date'])}"
                + ("  [bold]changed[/]" if then != now else "")
            )
        outcome.add_row(*cells)
    console.print(outcome)
    e = found.event
    if e is not None and e.get("is_event"):
        console.print(
            f"first employment {e['event_date']} (day {e['analysis_days']}): {e['event_record']}, "
            f"employment delivery {e['event_delivery_id']} line {e['event_source_line']}"
        )
    elif e is not None:
        console.print(f"no employment within 24 months: censored {e['censored_on']} ({e['censor_reason']})")

    def since_lock(r: dict[str, Any]) -> bool:
        """A version the lock could not see: extracted after its as-of day, or applied after it was made."""
        if found.lock is None:
            return False
        cutoff = dt.datetime.combine(found.lock["as_of_date"] + dt.timedelta(days=1), dt.time(), dt.UTC)
        late = r["applied_at"] is not None and r["applied_at"] > found.lock["created_at"]
        return r["extracted_at"] >= cutoff or late

    records = Table(title="Employment source: every version delivered (times UTC)")
    for name in ("record", "version says", "recorded", "delivery", "line", "extracted", "applied"):
        records.add_column(name)
    records.add_column("state", no_wrap=True)
    for r in found.records:
        state = r["state"] + ("  [bold]since the lock[/]" if since_lock(r) else "")
        records.add_row(
            r["record"],
            r["says"],
            _text(r["recorded_at"]),
            r["delivery_id"],
            str(r["source_line"]),
            _text(r["extracted_at"]),
            _text(r["applied_at"]),
            state,
        )
    console.print(records)
    months = Table("k", "checkpoint", "observed", "employed", "benefit", "grade %", "state", title="Months")
    for m in found.months:
        months.add_row(
            str(m["month_index"]),
            _text(m["checkpoint_date"]),
            _text(m["is_observed"]),
            _text(m["is_employed"]),
            _text(m["benefit_on_checkpoint"]),
            _text(m["benefit_grade_pct"]),
            _text(m["work_participation_state"]),
        )
    console.print(months)
    scores = Table(
        "months",
        "form",
        "answered",
        "ODI %",
        "NRS intensity",
        "EQ-5D index",
        "registry deliveries",
        title="Questionnaires (fct_prom_scores)",
    )
    for s in found.scores:
        scores.add_row(
            str(s["timepoint_months"]),
            _text(s["form_id"]),
            _text(s["answered_on"]),
            _text(s["odi_pct"]),
            _text(s["nrs_pain_intensity"]),
            _text(s["eq5d_index"]),
            _text(s["deliveries"]),
        )
    console.print(scores)
