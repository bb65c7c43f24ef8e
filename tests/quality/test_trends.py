"""Every expectation's history across builds (``outcomes.quality.trends``) and the quality page
made of it (``outcomes.quality.page``): three builds written by the real ledger writers (the gate's
``record``, the real ``publish``) into a database of their own, with deliveries arriving between
them; the page is read for what an on-call engineer asks of it: when did this start failing, and
which delivery moved it."""

from __future__ import annotations

import datetime as dt
import re
import secrets
from collections.abc import Iterator

import psycopg
import pytest
from support.builds import scratch_database

from outcomes.quality.gate import ExpectationOutcome, GateReport, new_build_id, record
from outcomes.quality.page import chart, expectation_page, overview_page, strip
from outcomes.quality.trends import QualityHistory, observed_number, read_history
from outcomes.warehouse.connection import Role, Warehouse
from outcomes.warehouse.publish import CANDIDATE, prepare_candidate, publish

HOSTILE = '<script>alert("x")</script>'


def outcome(name: str, success: bool, observed: str, severity: str = "warn") -> ExpectationOutcome:
    dataset = name.split(".")[0]
    return ExpectationOutcome(
        dataset, name, "expect_no_violations", severity, success, observed, f"{name} holds"
    )


def deliver(
    conn: psycopg.Connection, source: str, delivery: str, extracted: str, applied: str = "now()"
) -> None:
    conn.execute(
        "insert into meta.deliveries (source, delivery_id, extracted_at, status, applied_at) "
        f"values (%s, %s, %s, 'loaded', {applied})",
        (source, delivery, dt.datetime.fromisoformat(extracted).replace(tzinfo=dt.UTC)),
    )


def gate(scratch: Warehouse, as_of: dt.date, outcomes: list[ExpectationOutcome], *, publish_it: bool) -> str:
    report = GateReport(build_id=new_build_id(), as_of=as_of, outcomes=outcomes, seconds=1.0)
    record(scratch, report)
    if publish_it:
        prepare_candidate(scratch)
        with psycopg.connect(scratch.url(), autocommit=True) as conn:
            conn.execute(f"set role {Role.OWNER}")
            conn.execute(f"create table {CANDIDATE}.dim_participants (participant_id text)")
        publish(scratch, build_id=report.build_id, as_of=as_of, gate_result=report.status, gate_summary={})
    return report.build_id


@pytest.fixture(scope="module")
def ledger(warehouse: Warehouse) -> Iterator[tuple[Warehouse, list[str]]]:
    """Build 1 passes and is published; a delivery arrives; build 2 warns (X fails) and is
    published; another arrives; build 3 is blocked (Y fails an error) and not published; a fourth
    delivery arrives after build 3's gate ran."""
    with scratch_database(warehouse, f"{warehouse.database}_trends_{secrets.token_hex(3)}") as scratch:
        with psycopg.connect(scratch.url(), autocommit=True) as conn:
            conn.execute(f"set role {Role.LOADER}")
            deliver(conn, "trial", "t1", "2026-11-01T04:00")
            deliver(conn, "employment", "e1", "2026-11-01T04:00")
            b1 = gate(
                scratch,
                dt.date(2026, 11, 1),
                [outcome("x.rows", True, "0"), outcome("y.rate", True, "95.0", "error")],
                publish_it=True,
            )
            deliver(conn, "employment", "e2", "2026-11-02T04:00")
            b2 = gate(
                scratch,
                dt.date(2026, 11, 2),
                [
                    outcome("x.rows", False, '2 row(s): [{"mart": "a"}, {"mart": "b"}]'),
                    outcome("y.rate", True, "94.0", "error"),
                    outcome("z.drift", True, "0"),
                ],
                publish_it=True,
            )
            deliver(conn, "employment", "e3", "2026-11-03T04:00")
            b3 = gate(
                scratch,
                dt.date(2026, 11, 3),
                [
                    outcome("x.rows", False, f"3 row(s): {HOSTILE}"),
                    outcome("y.rate", False, "80.0", "error"),
                    outcome("z.drift", True, "0"),
                ],
                publish_it=False,
            )
            deliver(conn, "registry", "r4", "2026-11-03T05:00", applied="now() + interval '1 hour'")
        yield scratch, [b1, b2, b3]


@pytest.fixture(scope="module")
def history(ledger: tuple[Warehouse, list[str]]) -> QualityHistory:
    return read_history(ledger[0])


def test_every_build_is_read_with_the_deliveries_new_in_it(
    history: QualityHistory, ledger: tuple[Warehouse, list[str]]
) -> None:
    _, ids = ledger
    assert [b.build_id for b in history.builds] == ids
    assert [(b.status, b.published) for b in history.builds] == [
        ("passed", True),
        ("warned", True),
        ("blocked", False),
    ]
    assert [b.new_deliveries for b in history.builds] == [
        ("employment/e1", "trial/t1"),
        ("employment/e2",),
        ("employment/e3",),  # not r4: it was applied after build 3's gate ran
    ]
    # published builds: what the publish recorded; the blocked one: inferred, and said so
    assert [b.deliveries_recorded for b in history.builds] == [True, True, False]
    assert history.latest is not None and history.latest.build_id == ids[2]
    assert history.last_published is not None and history.last_published.build_id == ids[1]


def test_when_an_expectation_started_failing_and_which_delivery_moved_it(history: QualityHistory) -> None:
    b1, b2, b3 = history.builds
    x, y, z = (history.expectations[n] for n in ("x.rows", "y.rate", "z.drift"))
    assert [p.success for p in x.points] == [True, False, False]
    assert x.failing_since == b2  # failing since build 2, which brought employment/e2
    assert x.last_change is not None and x.last_change.build == b3  # 2 violations became 3
    assert [p.value for p in x.points] == [0.0, 2.0, 3.0]
    assert y.failing_since == b3 and y.last_change is not None and y.last_change.build == b3
    assert y.last_change.build.new_deliveries == ("employment/e3",)
    assert [p.success for p in z.points] == [None, True, True]  # not run in build 1
    assert z.failing_since is None and z.last_change is None and z.failures == 0
    # the latest build's results: failed errors, failed warnings, then the rest
    assert [h.name for h in history.latest_results()] == ["y.rate", "x.rows", "z.drift"]
    assert b1.build_id < b2.build_id < b3.build_id


def test_observed_values_become_numbers_only_when_they_are_one() -> None:
    assert observed_number("0") == 0.0 and observed_number("95.4") == 95.4
    assert observed_number('3 row(s): [{"mart": "a"}]') == 3.0
    assert observed_number("12 of 400 unexpected (3.00 %)") == 12.0
    for text in (None, "true", '"text"', "n/a", "could not be evaluated: 5 things", "[1, 2]"):
        assert observed_number(text) is None, text


def test_the_overview_shows_the_latest_build_its_trends_and_escapes_what_it_shows(
    history: QualityHistory,
) -> None:
    _, b2, b3 = history.builds
    page = overview_page(history)
    assert '<span class="badge blocked" id="latest-status">blocked</span>' in page
    assert f"the marts still hold build {b2.build_id}" in page
    assert re.findall(r'data-expectation="([^"]+)"', page) == ["y.rate", "x.rows", "z.drift"]
    assert HOSTILE not in page and "&lt;script&gt;" in page
    assert [m.state for m in strip(history.expectations["x.rows"])] == [
        "passed",
        "failed-warn",
        "failed-warn",
    ]
    assert [m.state for m in strip(history.expectations["z.drift"])] == ["not-run", "passed", "passed"]
    row = page[page.index('data-expectation="x.rows"') :].split("</tr>")[0]
    assert f'2026-11-02<div class="note">{b2.build_id}</div>' in row  # failing since
    assert f"{b3.build_id}: employment/e3" in row  # last changed, by the delivery new in it
    assert "(not published: those applied before its gate ran)" in page
    assert "http" not in page.replace('href="expectations/', "")  # nothing to fetch from anywhere


def test_an_expectation_page_shows_every_build_and_the_observed_value_over_them(
    history: QualityHistory,
) -> None:
    b1, b2, b3 = history.builds
    page = expectation_page(history, "x.rows")
    assert page is not None
    assert f"<b>Failing since</b> the build as of 2026-11-02 ({b2.build_id}" in page
    rows = page[page.index('id="history-table"') :].split("<tbody>")[1].split("</tr>")[:-1]
    assert [b.build_id in r for r, b in zip(rows, (b3, b2, b1), strict=True)] == [True] * 3  # newest first
    assert ["changed" in r for r in rows] == [True, True, False]
    drawn = chart(history.expectations["x.rows"])
    assert drawn is not None and [m.state for m in drawn.marks] == ["passed", "failed-warn", "failed-warn"]
    assert drawn.low == "0" and drawn.high == "3" and page.count("<circle") == 3
    assert expectation_page(history, "no.such") is None
    assert chart(history.expectations["x.rows"].__class__("n", "d", "t", "warn", "")) is None  # no points


def test_an_empty_ledger_is_an_empty_page(warehouse: Warehouse) -> None:
    with scratch_database(warehouse, f"{warehouse.database}_trends_{secrets.token_hex(3)}") as scratch:
        empty = read_history(scratch)
    assert empty.builds == [] and empty.latest is None and empty.latest_results() == []
    assert "No gate results yet" in overview_page(empty)
