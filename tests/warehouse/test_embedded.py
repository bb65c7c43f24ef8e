"""The embedded PostgreSQL: started on demand, reused, stopped; data survives a restart."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from outcomes.warehouse import embedded


@pytest.fixture
def pgdata() -> Iterator[Path]:
    home = Path(tempfile.mkdtemp(prefix="oc-e-", dir="/tmp"))
    yield home / "pg"
    embedded.stop(home / "pg")
    shutil.rmtree(home, ignore_errors=True)


def test_start_reuse_stop_and_restart_keeps_data(pgdata: Path) -> None:
    assert embedded.status(pgdata) is None
    server = embedded.ensure_running(pgdata)
    assert embedded.ensure_running(pgdata).pid == server.pid  # reused, not restarted
    with psycopg.connect(server.url(), autocommit=True) as conn:
        conn.execute("create table kept (x int)")
        conn.execute("insert into kept values (42)")

    assert embedded.stop(pgdata) is True
    assert embedded.status(pgdata) is None
    assert embedded.stop(pgdata) is False  # stopping twice is fine

    restarted = embedded.ensure_running(pgdata)
    with psycopg.connect(restarted.url()) as conn:
        assert conn.execute("select x from kept").fetchone() == (42,)


def test_no_tcp_port_is_opened(pgdata: Path) -> None:
    server = embedded.ensure_running(pgdata)
    with psycopg.connect(server.url()) as conn:
        assert conn.execute("show listen_addresses").fetchone() == ("",)
