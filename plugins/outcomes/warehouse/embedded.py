"""The embedded PostgreSQL (pgserver): started on demand under ``OUTCOMES_HOME``, reused, stopped.

pgserver ships PostgreSQL 16 in a wheel. It listens on a unix socket only (no TCP port to collide
with), in the data directory when the path is short enough and in a runtime directory otherwise.
The server outlives the command that started it (``cleanup_mode=None``), so ``outcomes status``
after ``outcomes demo`` is instant; ``outcomes stop`` stops it. As root, pgserver runs postgres as
a dedicated ``pgserver`` system user, created on first use (see ``_ensure_system_user``).
"""

from __future__ import annotations

import atexit
import logging
import os
import subprocess
import warnings
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)
# pgserver logs every pg_ctl call with its full output at INFO: keep only its warnings.
logging.getLogger("pgserver").setLevel(logging.WARNING)

# pgserver asks platformdirs for a runtime dir; without XDG_RUNTIME_DIR (CI, containers) it
# falls back to /tmp/runtime-<uid> and warns on every call. The fallback is fine for us.
warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set", module="platformdirs")

SUPERUSER = "postgres"
SYSTEM_USER = "pgserver"  # pgserver's own choice when it runs as root
# Machine-wide, so that processes starting servers at once (test workers, a CLI next to a DAG
# run) create the system user one at a time. Used only as root, opened with O_NOFOLLOW.
_SYSTEM_USER_LOCK = Path("/run/lock" if Path("/run/lock").is_dir() else "/tmp")  # noqa: S108
_SYSTEM_USER_LOCK /= "outcomes-pgserver-user.lock"


@dataclass(frozen=True)
class EmbeddedServer:
    """Where a running embedded server answers."""

    pgdata: Path
    socket_dir: Path
    pid: int

    def url(self, database: str = "postgres", user: str = SUPERUSER) -> str:
        """A libpq URI for ``database`` as ``user`` through the unix socket."""
        return f"postgresql://{user}@/{database}?host={self.socket_dir}"


def _running_info(pgdata: Path) -> EmbeddedServer | None:
    from pgserver.utils import PostmasterInfo

    info = PostmasterInfo.read_from_pgdata(pgdata)
    if info is None or not info.is_running() or info.socket_dir is None:
        return None
    return EmbeddedServer(pgdata=pgdata, socket_dir=Path(info.socket_dir), pid=info.pid)


def status(pgdata: Path) -> EmbeddedServer | None:
    """The running server for ``pgdata``, or None. Never starts anything."""
    if not (pgdata / "PG_VERSION").exists():
        return None
    return _running_info(pgdata.resolve())


def ensure_running(pgdata: Path) -> EmbeddedServer:
    """Start (initialising on first use) the server for ``pgdata``, or reuse the running one."""
    pgdata = pgdata.expanduser().resolve()
    running = status(pgdata)
    if running is not None:
        return running
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    _ensure_system_user()
    import pgserver

    log.info("starting embedded PostgreSQL in %s", pgdata)
    handle = pgserver.get_server(pgdata, cleanup_mode=None)
    # With cleanup_mode=None pgserver's exit hook only does bookkeeping (and logs to streams that
    # may be closed by then): the server is meant to outlive this process, so drop the hook.
    atexit.unregister(handle._cleanup)
    handle.global_process_id_list.get_and_remove(os.getpid())
    started = _running_info(pgdata)
    if started is None:  # pragma: no cover - pgserver asserts this itself
        raise RuntimeError(f"embedded PostgreSQL in {pgdata} did not start; see {pgdata / 'log'}")
    return started


def _ensure_system_user() -> None:
    """As root, create pgserver's system user before pgserver looks for it, one process at a time.

    pgserver checks for the user and runs ``useradd`` unlocked: two processes starting servers at
    once on a machine without the user race, and the loser runs initdb against a half-written
    account ("initdb: could not change permissions of directory ...: Operation not permitted").
    """
    if os.name != "posix" or os.geteuid() != 0:
        return
    import fcntl

    from pgserver.utils import ensure_user_exists

    fd = os.open(_SYSTEM_USER_LOCK, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        ensure_user_exists(SYSTEM_USER)  # pgserver's own check-and-useradd, one process at a time
    finally:
        os.close(fd)  # releases the lock


def stop(pgdata: Path) -> bool:
    """Stop the server for ``pgdata``. True if one was running."""
    pgdata = pgdata.expanduser().resolve()
    if status(pgdata) is None:
        return False
    from pgserver._commands import pg_ctl  # type: ignore[attr-defined]
    from pgserver.postgres_server import PostgresServer

    system_user = SYSTEM_USER if os.geteuid() == 0 else None
    try:
        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=pgdata, user=system_user)
    except subprocess.CalledProcessError:  # already stopped between the check and now
        return status(pgdata) is not None
    # A handle in this process (if any) must not try to stop it again at exit.
    PostgresServer._instances.pop(pgdata, None)
    return True
