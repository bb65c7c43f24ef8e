"""Pseudonymisation at the door: fnr -> HMAC-SHA-256(key, fnr), before a row touches the database.

The key is the deployment's, never the repository's. In order of precedence:

1. ``OUTCOMES_PSEUDONYM_KEY``: the key itself (at least 32 characters);
2. ``OUTCOMES_PSEUDONYM_KEY_FILE``: a file holding it (the demo writes a random one, mode 0600,
   under ``OUTCOMES_HOME``);
3. the Variable ``outcomes_pseudonym_key`` of Airflow's secrets backend (as every secret setting:
   outcomes.settings);
4. the Airflow connection ``outcomes_pseudonym`` (its password), e.g. from a secrets backend or
   ``AIRFLOW_CONN_OUTCOMES_PSEUDONYM``.

Without any of them the loader stops with :class:`PseudonymKeyMissing`: there is no default key.
Changing the key changes every pseudonym: rotate it only together with a full reload.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from collections.abc import Mapping
from pathlib import Path

from outcomes.settings import backend_variable, declared, setting

KEY_ENV = "OUTCOMES_PSEUDONYM_KEY"
KEY_FILE_ENV = "OUTCOMES_PSEUDONYM_KEY_FILE"
AIRFLOW_CONN_ID = "outcomes_pseudonym"
MIN_KEY_LENGTH = 32


class PseudonymKeyMissing(RuntimeError):
    """No pseudonymisation key is configured (and there is deliberately no default)."""


class Pseudonymiser:
    """``pseudonymise(fnr)``: the keyed pseudonym, 64 hex characters."""

    def __init__(self, key: bytes) -> None:
        if len(key) < MIN_KEY_LENGTH:
            raise PseudonymKeyMissing(
                f"the pseudonymisation key is too short ({len(key)} bytes; at least {MIN_KEY_LENGTH})"
            )
        self._template = hmac.new(key, digestmod=hashlib.sha256)

    def __call__(self, fnr: str) -> str:
        mac = self._template.copy()
        mac.update(fnr.encode("utf-8"))
        return mac.hexdigest()

    def __repr__(self) -> str:  # never show the key
        return "Pseudonymiser(<key hidden>)"


def _from_airflow() -> str | None:
    try:
        from airflow.sdk import Connection
    except ImportError:  # pragma: no cover - Airflow is a dependency
        return None
    try:
        conn = Connection.get(AIRFLOW_CONN_ID)
    except Exception:  # no such connection, or no Airflow context here
        return None
    return conn.password or None


def load_key(environ: Mapping[str, str] | None = None, *, use_airflow: bool = True) -> bytes:
    """The pseudonymisation key from the deployment; raises :class:`PseudonymKeyMissing`.

    The environment's two settings come first (the key, then its file), then the secrets backend's
    Variable, then the Airflow connection: a deployment that sets the key in its environment gets
    that key, whatever a backend holds."""
    env = os.environ if environ is None else environ
    if not env.get(KEY_ENV, "").strip() and (path := setting(KEY_FILE_ENV, environ)):
        try:
            key = path.read_text(encoding="utf-8").strip()
        except OSError as error:
            raise PseudonymKeyMissing(f"cannot read the pseudonymisation key file {path}: {error}") from None
        from outcomes.runners.secrets_backend import mask

        mask(declared(KEY_ENV), key)
        return key.encode("utf-8")
    if key := setting(KEY_ENV, environ):  # the environment's, else the secrets backend's
        return str(key).encode("utf-8")
    if use_airflow and (password := _from_airflow()):
        return password.encode("utf-8")
    raise PseudonymKeyMissing(
        f"no pseudonymisation key: set {KEY_ENV} (or the Variable {backend_variable(KEY_ENV)} of "
        f"Airflow's secrets backend, or {KEY_FILE_ENV}, or the Airflow connection {AIRFLOW_CONN_ID!r}); "
        "there is deliberately no default"
    )


def pseudonymiser(environ: Mapping[str, str] | None = None) -> Pseudonymiser:
    return Pseudonymiser(load_key(environ))


def ensure_demo_key(home: Path) -> Path:
    """A random key file for the demo under ``home`` (mode 0600), created once and reused."""
    path = home / "pseudonym.key"
    if not path.exists():
        home.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(secrets.token_hex(32))
    return path
