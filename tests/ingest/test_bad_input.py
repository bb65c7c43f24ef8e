"""docs/sources.md, "Bad input": every row of the table, with real files through the real ingest DAGs
into the real warehouse (one DAG run per row: each is a whole-delivery outcome).

Every test has its own landing root and delivery ids, so the shared session warehouse is filtered
by delivery id. The tests that call the loader directly instead of a DAG are the ones stating a
bug (a crash inside a DAG task would only be retried) and the format check.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest
from support.ingest_kit import (
    PSEUDONYMISE,
    assert_applied,
    check_reconciliation,
    checkpoint_row,
    columns,
    count,
    csv_bytes,
    enrolment_row,
    ingest_environment,
    landed,
    ledger,
    manifest_doc,
    new_delivery_id,
    new_fnr,
    new_participant,
    problems,
    prom_row,
    quarantined,
    reconciles,
    rewrite_manifest,
    spell_row,
    table_counts,
    write_delivery,
)

from outcomes.ingest.loader import apply_delivery
from outcomes.ingest.service import apply_source, loader_connection
from outcomes.runners.inprocess import DagRunOutcome, load_dag
from outcomes.settings import Settings, load_settings

Ingest = Callable[..., DagRunOutcome]
DATA_TABLES = ("raw.", "pending.", "quarantine.")


def nothing_loaded(db: psycopg.Connection, source: str, file: str, delivery_id: str) -> None:
    assert landed(db, source, file, delivery_id) == 0


def kept_in_quarantine(db: psycopg.Connection, source: str, delivery_id: str, received: int) -> None:
    """A whole-delivery quarantine: the ledger reconciles and every row received is kept."""
    entry = ledger(db, source, delivery_id)
    assert entry is not None
    assert entry["status"] == "quarantined"
    assert (entry["rows_received"], entry["rows_loaded"], entry["rows_pending"]) == (received, 0, 0)
    assert entry["rows_quarantined"] == received
    assert reconciles(entry)
    assert len(quarantined(db, source, delivery_id)) == received


# --- no manifest yet ------------------------------------------------------------------------


@pytest.mark.slow
def test_no_manifest_yet_nothing_happens(landing: Path, db: psycopg.Connection, ingest: Ingest) -> None:
    folder = write_delivery(
        landing, "registry", {"proms.csv": [prom_row() for _ in range(3)]}, manifest=False
    )
    before = table_counts(db)

    run = ingest("registry")

    assert run.succeeded, run
    assert run.task_states["wait_for_delivery"] == "skipped"
    assert run.task_states["apply_deliveries"] == "skipped"
    assert ledger(db, "registry", folder.name) is None
    assert table_counts(db) == before

    # The manifest is written last: with it, the same folder is complete and is applied.
    data = (folder / "proms.csv").read_bytes()
    (folder / "_manifest.json").write_text(
        json.dumps(manifest_doc("registry", folder.name, {"proms.csv": data}))
    )
    assert_applied(ingest("registry"))
    entry = ledger(db, "registry", folder.name)
    assert entry is not None and entry["status"] == "loaded" and entry["rows_received"] == 3


def test_no_manifest_yet_waiting_past_the_deadline_fails_the_sensor_and_alerts(
    landing: Path, airflow_ready: Settings
) -> None:
    from airflow.sdk.exceptions import AirflowSensorTimeout, TaskDeferred

    from outcomes.ingest.sensors import DeliverySensor

    dag_sensor = load_dag(airflow_ready, "ingest_registry").get_task("wait_for_delivery")
    assert dag_sensor.deadline == dt.timedelta(hours=4)
    assert dag_sensor.on_failure_callback  # the failure (a late source) is an alert

    write_delivery(landing, "registry", {"proms.csv": [prom_row()]}, manifest=False)  # not complete
    sensor = DeliverySensor(
        task_id="wait_for_delivery", source="registry", deadline=dt.timedelta(seconds=0.3), poke_interval=0.05
    )
    with ingest_environment(landing):
        with pytest.raises(TaskDeferred) as deferred:
            sensor.execute({})  # waits (deferred), it does not fail at once

        async def first_event() -> Any:
            async for event in deferred.value.trigger.run():
                return event
            return None

        event = asyncio.run(asyncio.wait_for(first_event(), timeout=30))
    with pytest.raises(AirflowSensorTimeout, match="registry"):
        sensor.execute_complete({}, event.payload)


# --- manifest problems ----------------------------------------------------------------------


@pytest.mark.slow
def test_manifest_rows_disagree_whole_delivery_quarantined(
    landing: Path, db: psycopg.Connection, ingest: Ingest
) -> None:
    def one_more(doc: dict) -> None:
        doc["files"][0]["rows"] = 11

    folder = write_delivery(
        landing, "registry", {"proms.csv": [prom_row() for _ in range(10)]}, edit_manifest=one_more
    )
    assert_applied(ingest("registry"))

    nothing_loaded(db, "registry", "proms.csv", folder.name)
    kept_in_quarantine(db, "registry", folder.name, 10)
    [problem] = problems(db, "registry", folder.name)
    assert (problem["file"], problem["rule"]) == ("proms.csv", "row_count_mismatch")
    message = ledger(db, "registry", folder.name)["message"]  # type: ignore[index]
    assert "proms.csv" in message and "10" in message and "11" in message


@pytest.mark.slow
def test_sha256_disagrees_whole_delivery_quarantined(
    landing: Path, db: psycopg.Connection, ingest: Ingest
) -> None:
    claimed = hashlib.sha256(b"not these bytes").hexdigest()

    def wrong_hash(doc: dict) -> None:
        doc["files"][0]["sha256"] = claimed

    rows = [spell_row() for _ in range(6)]
    folder = write_delivery(landing, "welfare", {"benefit_spells.csv": rows}, edit_manifest=wrong_hash)
    actual = hashlib.sha256((folder / "benefit_spells.csv").read_bytes()).hexdigest()
    assert_applied(ingest("welfare"))

    nothing_loaded(db, "welfare", "benefit_spells.csv", folder.name)
    kept_in_quarantine(db, "welfare", folder.name, 6)
    [problem] = problems(db, "welfare", folder.name)
    assert (problem["file"], problem["rule"]) == ("benefit_spells.csv", "sha256_mismatch")
    message = ledger(db, "welfare", folder.name)["message"]  # type: ignore[index]
    assert "benefit_spells.csv" in message and claimed in message and actual in message


@pytest.mark.slow
def test_a_listed_file_missing_whole_delivery_quarantined(
    landing: Path, db: psycopg.Connection, ingest: Ingest
) -> None:
    someone = new_participant()
    folder = write_delivery(
        landing,
        "employment",
        {"checkpoints.csv": [checkpoint_row(someone)], "jobs.csv": []},
    )
    (folder / "jobs.csv").unlink()
    assert_applied(ingest("employment"))

    nothing_loaded(db, "employment", "checkpoints.csv", folder.name)
    kept_in_quarantine(db, "employment", folder.name, 1)
    found = {(p["file"], p["rule"]) for p in problems(db, "employment", folder.name)}
    assert ("jobs.csv", "file_missing") in found
    message = ledger(db, "employment", folder.name)["message"]  # type: ignore[index]
    assert "jobs.csv" in message and "missing" in message


@pytest.mark.slow
def test_unparseable_manifest_whole_delivery_quarantined(
    landing: Path, db: psycopg.Connection, ingest: Ingest
) -> None:
    folder = write_delivery(
        landing, "registry", {"proms.csv": [prom_row() for _ in range(4)]}, manifest=False
    )
    (folder / "_manifest.json").write_text('{"source": "registry", "files": [', encoding="utf-8")
    assert_applied(ingest("registry"))

    nothing_loaded(db, "registry", "proms.csv", folder.name)
    kept_in_quarantine(db, "registry", folder.name, 4)
    [problem] = problems(db, "registry", folder.name)
    assert (problem["file"], problem["rule"]) == ("_manifest.json", "manifest_unparseable")
    assert problem["line"] == 1
    assert "_manifest.json" in ledger(db, "registry", folder.name)["message"]  # type: ignore[index]


# --- files that are not the delivery's own ----------------------------------------------------


def _link_a_file(folder: Path, outside: Path) -> str:
    """proms.csv a symbolic link to a file outside the landing zone with the same bytes."""
    (outside / "proms.csv").write_bytes((folder / "proms.csv").read_bytes())
    (folder / "proms.csv").unlink()
    (folder / "proms.csv").symlink_to(outside / "proms.csv")
    return "proms.csv"


def _link_the_manifest(folder: Path, outside: Path) -> str:
    (folder / "_manifest.json").replace(outside / "_manifest.json")
    (folder / "_manifest.json").symlink_to(outside / "_manifest.json")
    return "_manifest.json"


def _hard_link(folder: Path, outside: Path) -> str:
    (folder / "proms.csv").replace(outside / "proms.csv")
    (folder / "proms.csv").hardlink_to(outside / "proms.csv")
    return "proms.csv"


def _a_fifo(folder: Path, outside: Path) -> str:
    import os

    (folder / "proms.csv").unlink()
    os.mkfifo(folder / "proms.csv")  # before, the loader opened it and blocked for good
    return "proms.csv"


ESCAPES = {
    "a file is a symlink out of the landing zone": (_link_a_file, "symlink"),
    "the manifest is a symlink": (_link_the_manifest, "symlink"),
    "a file is a hard link": (_hard_link, "hard_link"),
    "a FIFO in the delivery": (_a_fifo, "not_a_file"),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", list(ESCAPES))
def test_a_file_that_is_not_the_deliverys_own_refuses_the_delivery_unread(
    case: str, landing: Path, tmp_path: Path, db: psycopg.Connection, ingest: Ingest
) -> None:
    """Before, a symbolic link in a delivery was followed and its target loaded: here every target
    is a valid delivery's file, so only the refusal keeps its rows out (none is even received)."""
    make, rule = ESCAPES[case]
    outside = tmp_path / "outside"
    outside.mkdir()
    folder = write_delivery(landing, "registry", {"proms.csv": [prom_row() for _ in range(3)]})
    name = make(folder, outside)
    assert_applied(ingest("registry"))

    nothing_loaded(db, "registry", "proms.csv", folder.name)
    kept_in_quarantine(db, "registry", folder.name, 0)  # nothing was read, so nothing received
    [problem] = problems(db, "registry", folder.name)
    assert (problem["file"], problem["rule"]) == (name, rule)
    message = ledger(db, "registry", folder.name)["message"]  # type: ignore[index]
    assert name in message and "refused unread" in message and rule in message


@pytest.mark.slow
def test_a_delivery_folder_that_is_a_symlink_is_refused_unread(
    landing: Path, tmp_path: Path, db: psycopg.Connection, ingest: Ingest
) -> None:
    elsewhere = write_delivery(
        tmp_path / "elsewhere", "registry", {"proms.csv": [prom_row() for _ in range(2)]}
    )
    (landing / "registry").mkdir()
    (landing / "registry" / elsewhere.name).symlink_to(elsewhere, target_is_directory=True)
    assert_applied(ingest("registry"))

    nothing_loaded(db, "registry", "proms.csv", elsewhere.name)
    kept_in_quarantine(db, "registry", elsewhere.name, 0)
    [problem] = problems(db, "registry", elsewhere.name)
    assert (problem["file"], problem["rule"]) == (None, "symlink")
    assert "is a symbolic link" in ledger(db, "registry", elsewhere.name)["message"]  # type: ignore[index]


# --- header ---------------------------------------------------------------------------------

ENROLMENT = columns("enrolment.csv")
HEADERS = {
    "missing": ([c for c in ENROLMENT if c != "sex"], "header_missing_column", "sex"),
    "extra": ([*ENROLMENT, "comment"], "header_extra_column", "comment"),
    "misspelt": (
        ["randomized_on" if c == "randomised_on" else c for c in ENROLMENT],
        "header_misspelt_column",
        "randomised_on",
    ),
}


@pytest.mark.slow
@pytest.mark.parametrize("kind", list(HEADERS))
def test_header_with_a_missing_extra_or_misspelt_column_names_the_column(
    kind: str, landing: Path, db: psycopg.Connection, ingest: Ingest
) -> None:
    header, rule, column = HEADERS[kind]
    rows = [enrolment_row(comment="x", randomized_on="2030-06-01") for _ in range(5)]
    folder = write_delivery(landing, "trial", {"enrolment.csv": rows}, header={"enrolment.csv": header})
    assert_applied(ingest("trial"))

    nothing_loaded(db, "trial", "enrolment.csv", folder.name)
    entry = ledger(db, "trial", folder.name)
    assert entry is not None and entry["status"] == "quarantined" and reconciles(entry)
    [problem] = problems(db, "trial", folder.name)
    assert (problem["file"], problem["line"], problem["column_name"], problem["rule"]) == (
        "enrolment.csv",
        1,
        column,
        rule,
    )
    assert column in problem["message"] and column in entry["message"]
    if kind == "misspelt":
        assert "randomized_on" in problem["message"]


def test_a_header_quarantine_keeps_every_row_received(
    settings: Settings, landing: Path, db: psycopg.Connection
) -> None:
    header = ["sight" if c == "site" else c for c in ENROLMENT]
    rows = [enrolment_row(sight="Bergen") for _ in range(4)]
    folder = write_delivery(landing, "trial", {"enrolment.csv": rows}, header={"enrolment.csv": header})
    with loader_connection(settings) as conn:
        outcome = apply_delivery(conn, folder, pseudonymise=PSEUDONYMISE)
    assert (outcome.status, outcome.rows_received, outcome.rows_quarantined) == ("quarantined", 4, 4)
    assert len(quarantined(db, "trial", folder.name)) == 4


# --- encoding and CSV syntax ----------------------------------------------------------------


@pytest.mark.slow
def test_not_utf8_whole_delivery_quarantined_the_message_gives_the_line(
    landing: Path, db: psycopg.Connection, ingest: Ingest
) -> None:
    lines = csv_bytes("enrolment.csv", [enrolment_row() for _ in range(6)]).split(b"\n")
    lines[4] = lines[4].replace(b"Bergen", "Tromsø".encode("latin-1"))  # physical line 5
    folder = write_delivery(landing, "trial", {"enrolment.csv": b"\n".join(lines)})
    assert_applied(ingest("trial"))

    nothing_loaded(db, "trial", "enrolment.csv", folder.name)
    [problem] = problems(db, "trial", folder.name)
    assert (problem["file"], problem["line"], problem["rule"]) == ("enrolment.csv", 5, "not_utf8")
    entry = ledger(db, "trial", folder.name)
    assert entry is not None and entry["status"] == "quarantined" and reconciles(entry)
    assert "line 5" in entry["message"] and "enrolment.csv" in entry["message"]
    # The rows read before the bad line are kept, with nothing lost from the ledger's count.
    assert len(quarantined(db, "trial", folder.name)) == entry["rows_quarantined"] == 3


def _extra_field(data: bytes) -> bytes:
    lines = data.split(b"\n")
    lines[3] = lines[3] + b",surplus"  # physical line 4
    return b"\n".join(lines)


def _open_quote(data: bytes) -> bytes:
    lines = data.split(b"\n")
    lines[5] = lines[5].replace(b"Bergen", b'"Bergen')  # physical line 6: a quote never closed
    return b"\n".join(lines)


def _stray_quote(data: bytes) -> bytes:
    lines = data.split(b"\n")
    lines[2] = lines[2].replace(b"Bergen", b'Ber"gen')  # physical line 3: a quote in a bare field
    return b"\n".join(lines)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("breakage", "line"),
    [
        (_extra_field, 4),
        (_open_quote, 6),
        (_stray_quote, 3),
    ],
    ids=["extra-field", "open-quote", "stray-quote"],
)
def test_not_parseable_as_csv_whole_delivery_quarantined_the_message_gives_the_line(
    breakage: Callable[[bytes], bytes], line: int, landing: Path, db: psycopg.Connection, ingest: Ingest
) -> None:
    data = breakage(csv_bytes("enrolment.csv", [enrolment_row() for _ in range(8)]))
    folder = write_delivery(landing, "trial", {"enrolment.csv": data})
    assert_applied(ingest("trial"))

    nothing_loaded(db, "trial", "enrolment.csv", folder.name)
    found = problems(db, "trial", folder.name)
    parse = [p for p in found if p["rule"] == "csv_parse"]
    assert len(parse) == 1, found
    assert (parse[0]["file"], parse[0]["line"]) == ("enrolment.csv", line)
    assert f"line {line}" in parse[0]["message"]
    entry = ledger(db, "trial", folder.name)
    assert entry is not None and entry["status"] == "quarantined" and reconciles(entry)


def test_a_nul_byte_in_a_field_is_bad_input_not_a_crash(
    settings: Settings, landing: Path, db: psycopg.Connection
) -> None:
    rows = [enrolment_row() for _ in range(19)] + [enrolment_row(site="Ber\x00gen")]
    folder = write_delivery(landing, "trial", {"enrolment.csv": rows})
    with loader_connection(settings) as conn:
        outcome = apply_delivery(conn, folder, pseudonymise=PSEUDONYMISE)
    assert outcome.status in {"loaded", "quarantined"}
    entry = ledger(db, "trial", folder.name)
    assert entry is not None and reconciles(entry)
    named = {p["line"] for p in problems(db, "trial", folder.name)}
    kept = quarantined(db, "trial", folder.name).get(("enrolment.csv", 21))
    assert 21 in named or (kept is not None and kept["violations"])


def test_a_bom_crlf_and_any_column_order_are_accepted(
    settings: Settings, landing: Path, db: psycopg.Connection
) -> None:
    header = list(reversed(ENROLMENT))
    data = b"\xef\xbb\xbf" + csv_bytes("enrolment.csv", [enrolment_row() for _ in range(3)], header).replace(
        b"\n", b"\r\n"
    )
    folder = write_delivery(landing, "trial", {"enrolment.csv": data})
    with loader_connection(settings) as conn:
        outcome = apply_delivery(conn, folder, pseudonymise=PSEUDONYMISE)
    assert (outcome.status, outcome.rows_loaded, outcome.rows_quarantined) == ("loaded", 3, 0)
    assert count(db, "raw.trial_enrolment", folder.name) == 3


# --- rows -----------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_row_breaking_a_column_rule_is_quarantined_and_the_valid_rows_load(
    landing: Path, db: psycopg.Connection, ingest: Ingest
) -> None:
    rows = [enrolment_row() for _ in range(19)]
    rows.insert(7, enrolment_row(arm="CONTROL"))  # 1 of 20 rows: exactly 5 %, not more
    folder = write_delivery(landing, "trial", {"enrolment.csv": rows})
    assert_applied(ingest("trial"))

    entry = ledger(db, "trial", folder.name)
    assert entry is not None
    assert (entry["status"], entry["rows_received"], entry["rows_loaded"], entry["rows_quarantined"]) == (
        "loaded",
        20,
        19,
        1,
    )
    assert count(db, "raw.trial_enrolment", folder.name) == 19
    kept = quarantined(db, "trial", folder.name)
    assert list(kept) == [("enrolment.csv", 9)]
    [violation] = kept[("enrolment.csv", 9)]["violations"]
    assert (violation["column"], violation["value"], violation["rule"]) == ("arm", "CONTROL", "enum")
    assert "arm" in violation["message"] and "CONTROL" in violation["message"]
    assert problems(db, "trial", folder.name) == []


def _mixed(bad: int, total: int) -> list[dict]:
    rows = [enrolment_row() for _ in range(total - bad)]
    for i in range(bad):
        rows.insert(3 * i + 1, enrolment_row(sex="U"))
    return rows


@pytest.mark.slow
def test_more_than_5_percent_bad_whole_delivery_quarantined(
    landing: Path, db: psycopg.Connection, ingest: Ingest
) -> None:
    folder = write_delivery(landing, "trial", {"enrolment.csv": _mixed(2, 20)})  # 10 %
    assert_applied(ingest("trial"))

    nothing_loaded(db, "trial", "enrolment.csv", folder.name)
    kept_in_quarantine(db, "trial", folder.name, 20)
    kept = quarantined(db, "trial", folder.name)
    bad = sorted(line for (_, line), row in kept.items() if row["violations"])
    assert bad == [3, 6]  # the rows breaking a rule keep their reasons; the others have none
    [problem] = problems(db, "trial", folder.name)
    assert problem["rule"] == "quarantine_threshold"
    assert "2 of 20" in problem["message"] and "5%" in problem["message"]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("threshold", "bad", "status"),
    [("0.2", 2, "loaded"), ("0.01", 1, "quarantined")],
    ids=["10%-bad-under-20%", "5%-bad-over-1%"],
)
def test_the_quarantine_threshold_is_configurable(
    threshold: str, bad: int, status: str, landing: Path, db: psycopg.Connection, ingest: Ingest
) -> None:
    folder = write_delivery(landing, "trial", {"enrolment.csv": _mixed(bad, 20)})
    assert_applied(ingest("trial", OUTCOMES_QUARANTINE_THRESHOLD=threshold))

    entry = ledger(db, "trial", folder.name)
    assert entry is not None and entry["status"] == status and reconciles(entry)
    if status == "loaded":
        assert (entry["rows_loaded"], entry["rows_quarantined"]) == (20 - bad, bad)
        assert count(db, "raw.trial_enrolment", folder.name) == 20 - bad
    else:
        assert entry["rows_quarantined"] == 20
        assert [p["rule"] for p in problems(db, "trial", folder.name)] == ["quarantine_threshold"]


# --- the same delivery again ----------------------------------------------------------------


@pytest.mark.slow
def test_the_same_delivery_again_same_id_changes_no_table(
    landing: Path, db: psycopg.Connection, ingest: Ingest
) -> None:
    folder = write_delivery(landing, "registry", {"proms.csv": [prom_row() for _ in range(5)]})
    assert_applied(ingest("registry"))
    assert ledger(db, "registry", folder.name)["status"] == "loaded"  # type: ignore[index]
    before = table_counts(db)

    again = ingest("registry")
    assert again.succeeded and again.task_states["wait_for_delivery"] == "skipped", again
    assert table_counts(db) == before

    # Different bytes under an id already applied: still nothing (each id is applied once).
    (folder / "proms.csv").write_bytes(csv_bytes("proms.csv", [prom_row() for _ in range(7)]))
    truth = manifest_doc("registry", folder.name, {"proms.csv": (folder / "proms.csv").read_bytes()})
    rewrite_manifest(folder, lambda doc: doc.update(truth))
    assert ingest("registry").task_states["wait_for_delivery"] == "skipped"
    with ingest_environment(landing):
        [outcome] = apply_source(load_settings(), "registry")
    assert outcome.status == "skipped"
    assert table_counts(db) == before
    assert ledger(db, "registry", folder.name)["rows_received"] == 5  # type: ignore[index]


@pytest.mark.slow
def test_the_same_bytes_under_a_new_id_are_a_duplicate_and_load_nothing(
    landing: Path, db: psycopg.Connection, ingest: Ingest
) -> None:
    first = write_delivery(landing, "registry", {"proms.csv": [prom_row() for _ in range(5)]})
    assert_applied(ingest("registry"))
    before = table_counts(db)

    second_id = new_delivery_id()
    data = (first / "proms.csv").read_bytes()
    second = write_delivery(landing, "registry", {"proms.csv": data}, delivery_id=second_id)
    assert_applied(ingest("registry"))

    entry = ledger(db, "registry", second.name)
    assert entry is not None
    assert (entry["status"], entry["duplicate_of"], entry["rows_received"], entry["rows_loaded"]) == (
        "duplicate",
        first.name,
        0,
        0,
    )
    after = table_counts(db)
    assert {t: n for t, n in after.items() if t.startswith(DATA_TABLES)} == {
        t: n for t, n in before.items() if t.startswith(DATA_TABLES)
    }
    # Only the ledger notes the duplicate (one row, one event).
    assert after["meta.deliveries"] == before["meta.deliveries"] + 1
    assert after["meta.delivery_events"] == before["meta.delivery_events"] + 1
    for table in ("raw.registry_proms", "pending.registry_proms", "quarantine.rows"):
        assert count(db, table, second.name) == 0


def test_a_quarantined_delivery_fixed_in_its_manifest_and_delivered_again_loads(
    settings: Settings, landing: Path, db: psycopg.Connection
) -> None:
    data = csv_bytes("enrolment.csv", [enrolment_row() for _ in range(4)])

    def wrong_rows(doc: dict) -> None:
        doc["files"][0]["rows"] = 5

    broken = write_delivery(landing, "trial", {"enrolment.csv": data}, edit_manifest=wrong_rows)
    fixed = write_delivery(landing, "trial", {"enrolment.csv": data})
    with loader_connection(settings) as conn:
        assert apply_delivery(conn, broken, pseudonymise=PSEUDONYMISE).status == "quarantined"
        outcome = apply_delivery(conn, fixed, pseudonymise=PSEUDONYMISE)
    assert (outcome.status, outcome.rows_loaded) == ("loaded", 4)
    assert count(db, "raw.trial_enrolment", fixed.name) == 4


@pytest.mark.slow
def test_a_delivery_older_than_one_already_applied_is_applied_by_version(
    landing: Path, db: psycopg.Connection, ingest: Ingest
) -> None:
    person = new_fnr()
    write_delivery(landing, "trial", {"enrolment.csv": [enrolment_row(fnr=person)]})
    assert_applied(ingest("trial"))

    older_id, newer_id = new_delivery_id(), new_delivery_id()
    assert older_id < newer_id
    spell = f"QS-ORDER-{newer_id}"
    correction = spell_row(
        spell_id=spell, fnr=person, to_date="2030-02-28", registered_at="2030-03-01T08:00:00Z"
    )
    original = spell_row(spell_id=spell, fnr=person, to_date=None, registered_at="2030-01-02T08:00:00Z")
    write_delivery(landing, "welfare", {"benefit_spells.csv": [correction]}, delivery_id=newer_id)
    assert_applied(ingest("welfare"))
    write_delivery(landing, "welfare", {"benefit_spells.csv": [original]}, delivery_id=older_id)
    assert_applied(ingest("welfare"))

    for delivery_id in (older_id, newer_id):
        entry = ledger(db, "welfare", delivery_id)
        assert entry is not None and (entry["status"], entry["rows_loaded"]) == ("loaded", 1)
    versions = db.execute(
        "select delivery_id, to_date from raw.welfare_benefit_spells where spell_id = %s "
        "order by registered_at desc",
        (spell,),
    ).fetchall()
    assert versions == [(newer_id, dt.date(2030, 2, 28)), (older_id, None)]


# --- reconciliation -------------------------------------------------------------------------


@pytest.mark.slow
def test_every_delivery_of_these_tests_reconciles(db: psycopg.Connection) -> None:
    """rows_received = loaded + pending + purged + quarantined, and the tables hold those rows, for
    every delivery this suite wrote so far (checked again at the end, in test_privacy.py)."""
    assert check_reconciliation(db) > 0
