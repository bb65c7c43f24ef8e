"""The landing zone, by URL: ``<root>/<source>/<delivery_id>/*.csv + _manifest.json``.

A root is a local path or any fsspec URL. Schemes Airflow has a filesystem for (``file``, and
``s3``/``sftp``/... with their providers installed) go through Airflow's ``ObjectStoragePath``,
with an Airflow connection for the credentials (``OUTCOMES_LANDING_CONN_ID``); any other fsspec
protocol goes through plain fsspec (``upath.UPath``). The loader uses only ``name``, ``parent``,
``/``, ``exists()``, ``iterdir()`` and ``open("rb")``: it never assumes a local disk.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

MANIFEST = "_manifest.json"


def landing_root(url: str, conn_id: str | None = None) -> Any:
    """A path object for the landing root ``url``."""
    scheme = urlsplit(url).scheme
    if not scheme or len(scheme) == 1:  # a plain path (or a Windows drive letter)
        from pathlib import Path

        return Path(url).expanduser().resolve()
    from airflow.sdk import ObjectStoragePath
    from airflow.sdk.io.fs import get_fs

    try:
        get_fs(scheme, conn_id)
    except ValueError:  # Airflow has no filesystem for it: plain fsspec
        from upath import UPath

        return UPath(url)
    return ObjectStoragePath(url, conn_id=conn_id)


def _is_dir(path: Any) -> bool:
    try:
        return bool(path.is_dir())
    except (OSError, NotImplementedError):
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
