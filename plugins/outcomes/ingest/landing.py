"""The landing zone, by URL: ``<root>/<source>/<delivery_id>/*.csv + _manifest.json``.

A root is a local path or any fsspec URL. Schemes Airflow has a filesystem for (``file``, and
``s3``/``sftp``/... with their providers installed) go through Airflow's ``ObjectStoragePath``,
with an Airflow connection for the credentials (``OUTCOMES_LANDING_CONN_ID``); any other fsspec
protocol goes through plain fsspec (``upath.UPath``). The loader uses only ``name``, ``parent``,
``/``, ``exists()``, ``iterdir()`` and ``open("rb")``: it never assumes a local disk.
"""

from __future__ import annotations

import errno
from functools import cache
from typing import Any
from urllib.parse import urlsplit

MANIFEST = "_manifest.json"
SSH_SCHEMES = ("sftp", "ssh")


def landing_root(url: str, conn_id: str | None = None) -> Any:
    """A path object for the landing root ``url``, on a file system made for this call.

    With a connection, the file system comes from Airflow's provider for the scheme (the
    connection's credentials; for SFTP also its extra ``known_hosts``, the file of trusted host
    keys) and is made anew each call: a sensor polling for hours must neither reuse a connection
    the server has dropped nor a listing cached before the delivery arrived."""
    scheme = urlsplit(url).scheme
    if not scheme or len(scheme) == 1:  # a plain path (or a Windows drive letter)
        from pathlib import Path

        return Path(url).expanduser().resolve()
    from airflow.sdk import ObjectStoragePath
    from airflow.sdk.io.fs import get_fs, has_fs
    from upath import UPath

    if not has_fs(scheme):  # Airflow has no filesystem for it: plain fsspec
        return UPath(url)
    if conn_id is None:
        if scheme in SSH_SCHEMES:
            raise LandingConfigError(
                f"an {scheme}:// landing zone needs the Airflow connection with its key and trusted "
                "host keys: set OUTCOMES_LANDING_CONN_ID"
            )
        return ObjectStoragePath(url)
    fs = get_fs(scheme, conn_id, _storage_options(scheme, conn_id))
    # fsspec keeps every instance it makes in a class-wide cache: a new one per poll would pile up
    getattr(type(fs), "_cache", {}).pop(getattr(fs, "_fs_token_", None), None)
    root = UPath(url)
    root._fs_cached = fs  # as Airflow's own paths do
    return root


def _storage_options(scheme: str, conn_id: str) -> dict[str, Any]:
    """What the provider's file system takes beyond its connection: for SFTP, a new client (not
    fsspec's cached one) and the trusted host keys. sshfs checks no host key unless it is given a
    file of them, so one is always given: the connection's extra ``known_hosts``, else the user's
    ``~/.ssh/known_hosts``; a connection with neither is refused, unless its extra says
    ``"no_host_key_check": "true"`` (insecure: the docs say so)."""
    if scheme not in SSH_SCHEMES:
        return {}
    from pathlib import Path

    from airflow.sdk import BaseHook

    extra = BaseHook.get_connection(conn_id).extra_dejson
    options: dict[str, Any] = {"skip_instance_cache": True}
    user_file = Path.home() / ".ssh" / "known_hosts"
    if extra.get("known_hosts"):
        options["known_hosts"] = extra["known_hosts"]
    elif str(extra.get("no_host_key_check", "")).lower() == "true":
        options["known_hosts"] = None
    elif user_file.exists():
        options["known_hosts"] = str(user_file)
    else:
        raise LandingConfigError(
            f"the SFTP connection {conn_id} names no file of trusted host keys: set its extra "
            '{"known_hosts": "/path/to/known_hosts"} (the server\'s key, checked with its owner), '
            "or create ~/.ssh/known_hosts"
        )
    return options


class LandingConfigError(ValueError):
    """The landing zone's settings or connection cannot work (not a passing outage)."""


class LandingUnreachable(RuntimeError):
    """The landing zone cannot be read now (a server down, a network error): wait, never skip."""


@cache
def unreachable_errors() -> tuple[type[BaseException], ...]:
    """What a file system raises when its server cannot be reached or drops the connection:
    OSError (local disks, SFTP's refused connections), asyncssh's and botocore's and aiohttp's
    errors (SFTP sessions, S3), each where installed."""
    found: list[type[BaseException]] = [OSError, TimeoutError]
    for module, name in (
        ("asyncssh", "Error"),
        ("botocore.exceptions", "BotoCoreError"),
        ("aiohttp", "ClientError"),
    ):
        try:
            found.append(getattr(__import__(module, fromlist=[name]), name))
        except ImportError:  # that back-end is not installed
            continue
    return tuple(found)


#: What an OSError's errno says when an S3 server answers but cannot serve (s3fs turns a 500 into
#: EREMOTEIO, a 503 or SlowDown into EBUSY, another 5xx into EIO) or the network is gone.
OUTAGE_ERRNOS = frozenset(
    {errno.EBUSY, errno.EREMOTEIO, errno.EIO, errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EHOSTDOWN}
)
#: asyncssh's errors of the connection itself (its others, such as a file the account may not
#: read, are the delivery's problem, as on a local disk).
SSH_OUTAGES = ("DisconnectError", "ChannelOpenError", "SFTPConnectionLost", "SFTPNoConnection")


def outage(error: BaseException) -> bool:
    """Whether ``error`` is the landing zone's server being down, failing or dropping the
    connection (a refused or reset connection, a timeout, an S3 5xx, a lost SSH connection, an
    S3 client that cannot connect), not a file that is missing or unreadable. The checks that turn
    an unreadable file into a contract problem re-raise an outage instead: a network failure must
    fail the run (nothing applied, the delivery applied whole by the next), never quarantine a
    delivery that is fine."""
    if isinstance(error, ConnectionError | TimeoutError):
        return True
    if isinstance(error, OSError):
        return error.errno in OUTAGE_ERRNOS
    connection_lost, any_ssh_error = _ssh_errors()
    if isinstance(error, connection_lost):
        return True
    return not isinstance(error, any_ssh_error) and isinstance(error, unreachable_errors())


@cache
def _ssh_errors() -> tuple[tuple[type[BaseException], ...], tuple[type[BaseException], ...]]:
    """asyncssh's errors of a lost connection, and all of its errors (none without asyncssh)."""
    try:
        import asyncssh
    except ImportError:  # pragma: no cover - installed with the sftp provider
        return (), ()
    return tuple(getattr(asyncssh, name) for name in SSH_OUTAGES), (asyncssh.Error,)


def shown(url: str) -> str:
    """``url`` as messages and alerts print it: any user and password in it left out."""
    parts = urlsplit(url)
    if not parts.scheme or "@" not in parts.netloc:
        return url
    return parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]).geturl()


def _is_dir(path: Any) -> bool:
    try:
        return bool(path.is_dir())
    except (OSError, NotImplementedError) as error:
        if outage(error):
            raise
        return False


def complete_deliveries(root: Any, source: str) -> list[Any]:
    """The complete deliveries of ``source`` (``_manifest.json`` present), in delivery_id order.

    Folders whose name is not a delivery_id are included too (sorted after the others would
    hide them): the contract check quarantines them with a clear message.
    """
    folder = root / source
    if not folder.exists():
        return []
    found = [p for p in folder.iterdir() if _is_dir(p) and (p / MANIFEST).exists()]
    return sorted(found, key=lambda p: p.name)


def incomplete_deliveries(root: Any, source: str) -> list[str]:
    """Delivery folders still waiting for their manifest."""
    folder = root / source
    if not folder.exists():
        return []
    return sorted(p.name for p in folder.iterdir() if _is_dir(p) and not (p / MANIFEST).exists())


def confirm_readable(delivery: Any) -> None:
    """Before a delivery is quarantined whole, its folder is listed once more, from the server (not
    a cached listing): a check that found the manifest or a file "missing" because the landing
    zone's server went down meanwhile (fsspec's default ``exists`` answers False to any error)
    raises that outage instead, and the delivery waits for the next run untouched (``outage``)."""
    fs = getattr(delivery, "fs", None)
    if fs is not None:
        fs.invalidate_cache()
    try:
        list(delivery.iterdir())
    except Exception as error:
        if outage(error):
            raise
