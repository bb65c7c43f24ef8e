"""Landing zones on real servers: SFTP (OpenSSH's sshd) and S3-compatible object storage (moto's
server), each started here on loopback, reached through Airflow's providers with the
credentials of an Airflow connection. A delivery written there is sensed, applied exactly once
and quarantined when bad, as from a local disk; a server that is down makes the sensor wait and
alert, and a server that goes down halfway through a run leaves nothing half-applied and no
delivery wrongly quarantined."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest
from support.deliveries import fnr, prom_rows, write_delivery
from support.ingest_kit import KEY
from support.servers import Landing, create_bucket, moto_s3, openssh_sftp, s3_put, sftp_put

from outcomes.runners import inprocess
from outcomes.settings import Settings, load_settings
from outcomes.warehouse.connection import Warehouse

pytestmark = pytest.mark.slow


@dataclass
class Remote:
    """A landing zone on a server that a test can take down and bring back."""

    landing: Landing
    write: Callable[[Path], None]  # a delivery folder (root/source/id) written as the source would
    restore: Callable[[], None] = lambda: None  # what the server held before it went down
    written: list[Path] = field(default_factory=list)

    def put(self, folder: Path) -> None:
        self.write(folder)
        self.written.append(folder)

    def down(self) -> None:
        self.landing.server.stop()

    def up(self) -> None:
        self.landing.server.start()
        self.restore()


@pytest.fixture(params=["sftp", "s3"])
def remote(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Remote]:
    """A landing zone on a real server, the ingest's settings pointing at it."""
    if request.param == "sftp":
        with openssh_sftp(tmp_path / "server") as (landing, root):

            def put_sftp(folder: Path) -> None:
                sftp_put(landing, folder, f"{root}/{folder.parent.name}/{folder.name}")

            yield _environment(monkeypatch, Remote(landing, put_sftp))  # its files stay on disk
    else:
        with moto_s3(tmp_path / "server") as landing:

            def put_s3(folder: Path) -> None:
                s3_put(landing, folder, f"{folder.parent.name}/{folder.name}")

            remote = Remote(landing, put_s3)

            def restore() -> None:  # moto keeps its objects in memory: a real store keeps them
                create_bucket(landing)
                for folder in remote.written:
                    put_s3(folder)

            remote.restore = restore
            yield _environment(monkeypatch, remote)


def _environment(monkeypatch: pytest.MonkeyPatch, remote: Remote) -> Remote:
    for name, value in remote.landing.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("OUTCOMES_PSEUDONYM_KEY", KEY)
    monkeypatch.delenv("OUTCOMES_PSEUDONYM_KEY_FILE", raising=False)
    return remote


def _ledger(warehouse: Warehouse, ids: list[str]) -> dict[str, tuple[str, int]]:
    with psycopg.connect(warehouse.url()) as conn:
        rows = conn.execute(
            "select delivery_id, status, rows_received from meta.deliveries where delivery_id = any(%s)",
            (ids,),
        ).fetchall()
    return {r[0]: (r[1], r[2]) for r in rows}


def _alerts(settings: Settings) -> list[dict[str, Any]]:
    if not settings.alerts_log.exists():
        return []
    return [json.loads(line) for line in settings.alerts_log.read_text().splitlines()]


def _deliveries(tmp_path: Path, tag: str, person: int, bad: bool = False, hour: str = "02") -> Path:
    """A registry delivery of four questionnaire rows (pending until the person is enrolled);
    ``bad``: every fnr with a wrong check digit, so the whole delivery is quarantined."""
    rows = prom_rows(f"RL{tag}", person)
    if bad:
        good = fnr(person)
        rows = [{**row, "fnr": good[:-1] + str((int(good[-1]) + 1) % 10)} for row in rows]
    return write_delivery(
        tmp_path / "src", "registry", f"2025060{tag}T0200Z-{person % 100:02d}", {"proms.csv": rows}
    )


def test_a_delivery_on_the_server_is_sensed_applied_once_and_a_bad_one_quarantined(
    remote: Remote, tmp_path: Path, airflow_ready: Settings, warehouse: Warehouse
) -> None:
    tag = "1" if remote.landing.url.startswith("sftp") else "2"
    good = _deliveries(tmp_path, tag, 980_100 + int(tag))
    bad = _deliveries(tmp_path / "bad", tag, 980_110 + int(tag), bad=True, hour="03")
    for folder in (good, bad):
        remote.put(folder)
    run = inprocess.run_dag(load_settings(), "ingest_registry", conf={"wait": True})
    assert run.succeeded, run
    ledger = _ledger(warehouse, [good.name, bad.name])
    assert ledger == {good.name: ("loaded", 4), bad.name: ("quarantined", 4)}
    quarantined = [a for a in _alerts(airflow_ready) if a["kind"] == "quarantined_delivery"]
    assert any(bad.name in json.dumps(a) for a in quarantined)
    # nothing new on the server: the next run applies nothing again
    again = inprocess.run_dag(load_settings(), "ingest_registry", conf={"wait": False})
    assert again.task_states["wait_for_delivery"] == "skipped", again
    assert _ledger(warehouse, [good.name, bad.name]) == ledger


def test_a_server_that_is_down_makes_the_sensor_wait_and_alert_then_apply(
    remote: Remote,
    tmp_path: Path,
    airflow_ready: Settings,
    warehouse: Warehouse,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tag = "3" if remote.landing.url.startswith("sftp") else "4"
    delivery = _deliveries(tmp_path, tag, 980_120 + int(tag))
    remote.put(delivery)
    remote.down()
    monkeypatch.setenv("OUTCOMES_DEADLINE_REGISTRY_HOURS", str(180 / 3600))
    monkeypatch.setenv("OUTCOMES_POKE_SECONDS", "0.5")
    before = len(_alerts(airflow_ready))

    def back_after_the_alert() -> None:  # the server comes back once the sensor has alerted
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if any(a["kind"] == "landing_unreachable" for a in _alerts(airflow_ready)[before:]):
                time.sleep(2)  # and the sensor has polled the server down a few times more
                remote.up()
                return
            time.sleep(0.2)

    helper = threading.Thread(target=back_after_the_alert, daemon=True)
    helper.start()
    run = inprocess.run_dag(load_settings(), "ingest_registry", conf={"wait": True})
    helper.join(timeout=5)
    assert run.succeeded, run
    new = _alerts(airflow_ready)[before:]
    unreachable = [a for a in new if a["kind"] == "landing_unreachable"]
    assert len(unreachable) == 1, new  # once while it was down, not at every poll
    assert "cannot be read for registry" in unreachable[0]["summary"]
    assert "keeps waiting" in unreachable[0]["summary"]
    assert _ledger(warehouse, [delivery.name]) == {delivery.name: ("loaded", 4)}


def test_a_server_that_stays_down_fails_the_sensor_as_late_with_the_reason(
    remote: Remote, airflow_ready: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    remote.down()
    monkeypatch.setenv("OUTCOMES_DEADLINE_WELFARE_HOURS", str(3 / 3600))
    monkeypatch.setenv("OUTCOMES_POKE_SECONDS", "0.5")
    before = len(_alerts(airflow_ready))
    run = inprocess.run_dag(load_settings(), "ingest_welfare", conf={"wait": True})
    assert run.state == "failed" and run.task_states["wait_for_delivery"] == "failed", run
    kinds = [a["kind"] for a in _alerts(airflow_ready)[before:]]
    assert kinds == ["landing_unreachable", "late_delivery"], kinds
    late = _alerts(airflow_ready)[-1]
    assert "the landing zone could not be read" in str(late["details"]["error"])


def test_a_server_that_goes_down_halfway_leaves_nothing_half_applied(
    remote: Remote, tmp_path: Path, warehouse: Warehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two deliveries: the server goes down once the first is committed, then while the second's
    files are being read, then just before its manifest is read. The first stays applied; the
    second is neither applied nor quarantined (a network error is no fault of the delivery's),
    and the run once the server is back applies it, once."""
    from outcomes.contracts import check, manifest
    from outcomes.ingest import loader, service
    from outcomes.ingest.landing import LandingUnreachable

    settings = load_settings()  # on the server's landing zone
    tag = "5" if remote.landing.url.startswith("sftp") else "6"
    first = _deliveries(tmp_path / "a", tag, 980_130 + int(tag))
    second = _deliveries(tmp_path / "b", tag, 980_140 + int(tag), hour="03")
    for folder in (first, second):
        remote.put(folder)
    ids = [first.name, second.name]

    apply_delivery = loader.apply_delivery

    def down_after_the_first(conn: Any, delivery: Any, **kwargs: Any) -> Any:
        outcome = apply_delivery(conn, delivery, **kwargs)
        remote.down()
        return outcome

    monkeypatch.setattr(loader, "apply_delivery", down_after_the_first)
    with pytest.raises(LandingUnreachable, match="cannot be read for registry"):
        service.apply_source(settings, "registry")
    assert _ledger(warehouse, ids) == {first.name: ("loaded", 4)}

    remote.up()
    monkeypatch.setattr(loader, "apply_delivery", apply_delivery)
    files_to_check = check._files_to_check

    def down_while_reading(*args: Any) -> Any:
        files = files_to_check(*args)  # the manifest is read; the server goes before the files are
        remote.down()
        return files

    monkeypatch.setattr(check, "_files_to_check", down_while_reading)
    with pytest.raises(LandingUnreachable):
        service.apply_source(settings, "registry")
    assert _ledger(warehouse, ids) == {first.name: ("loaded", 4)}  # not quarantined

    remote.up()
    monkeypatch.setattr(check, "_files_to_check", files_to_check)
    manifest_json = manifest._manifest_json

    def down_before_the_manifest(*args: Any) -> Any:  # fsspec's exists() answers False to it
        remote.down()
        return manifest_json(*args)

    monkeypatch.setattr(manifest, "_manifest_json", down_before_the_manifest)
    with pytest.raises(LandingUnreachable):
        service.apply_source(settings, "registry")
    assert _ledger(warehouse, ids) == {first.name: ("loaded", 4)}  # not quarantined "missing"

    remote.up()
    monkeypatch.setattr(manifest, "_manifest_json", manifest_json)
    outcomes = service.apply_source(settings, "registry")
    assert [(o.delivery_id, o.status) for o in outcomes if o.status != "skipped"] == [(second.name, "loaded")]
    assert _ledger(warehouse, ids) == {first.name: ("loaded", 4), second.name: ("loaded", 4)}
    assert service.pending_deliveries(settings, "registry") == []


def test_an_sftp_server_whose_host_key_is_not_trusted_is_never_read(
    tmp_path: Path, warehouse: Warehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    """sshfs checks no host key unless given a file of them: the landing zone always gives one,
    so a server with another key is refused (nothing listed, nothing applied), and a connection
    that names no such file, with none in ~/.ssh either, is refused before anything connects."""
    import subprocess

    from outcomes.ingest.landing import LandingConfigError, LandingUnreachable
    from outcomes.ingest.service import pending_deliveries

    with openssh_sftp(tmp_path / "server") as (landing, root):
        remote = _environment(monkeypatch, Remote(landing, lambda folder: None))
        sftp_put(landing, _deliveries(tmp_path, "7", 980_157), f"{root}/registry/20250607T0200Z-57")
        assert pending_deliveries(load_settings(), "registry") == ["20250607T0200Z-57"]  # the right key

        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "other")], check=True
        )
        host_type, key = (tmp_path / "other.pub").read_text().split()[:2]
        (tmp_path / "wrong_known_hosts").write_text(f"[127.0.0.1]:{landing.server.port} {host_type} {key}\n")
        wrong = {
            **remote.landing.connection,
            "extra": {**_extra(remote), "known_hosts": str(tmp_path / "wrong_known_hosts")},
        }
        monkeypatch.setenv("AIRFLOW_CONN_OUTCOMES_LANDING", json.dumps(wrong))
        with pytest.raises(LandingUnreachable, match="HostKeyNotVerifiable"):
            pending_deliveries(load_settings(), "registry")

        monkeypatch.setenv("HOME", str(tmp_path / "home"))  # no ~/.ssh/known_hosts
        unnamed = {**remote.landing.connection, "extra": {"key_file": _extra(remote)["key_file"]}}
        monkeypatch.setenv("AIRFLOW_CONN_OUTCOMES_LANDING", json.dumps(unnamed))
        with pytest.raises(LandingConfigError, match="names no file of trusted host keys"):
            pending_deliveries(load_settings(), "registry")


def _extra(remote: Remote) -> dict[str, Any]:
    extra = remote.landing.connection["extra"]
    assert isinstance(extra, dict)
    return extra


def test_what_counts_as_an_outage_and_what_as_the_deliverys_problem() -> None:
    """An outage fails the run and leaves the delivery for the next; anything else about a file
    is the delivery's problem (the contract check words it, as on a local disk)."""
    import errno

    import asyncssh
    from botocore.exceptions import EndpointConnectionError

    from outcomes.ingest.landing import outage

    down = [
        ConnectionRefusedError(errno.ECONNREFUSED, "refused"),
        TimeoutError("timed out"),
        OSError(errno.EBUSY, "503 Service Unavailable (s3fs)"),
        OSError(errno.EREMOTEIO, "500 Internal Error (s3fs)"),
        asyncssh.ConnectionLost("the connection was lost"),
        EndpointConnectionError(endpoint_url="http://127.0.0.1:9/"),
    ]
    the_deliverys = [
        FileNotFoundError(errno.ENOENT, "no such file"),
        PermissionError(errno.EACCES, "permission denied"),
        asyncssh.SFTPPermissionDenied("permission denied"),
        ValueError("not a number"),
    ]
    assert [outage(e) for e in down] == [True] * len(down)
    assert [outage(e) for e in the_deliverys] == [False] * len(the_deliverys)
