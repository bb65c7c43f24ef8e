"""The secret settings read from Airflow's secrets backend (outcomes.settings.setting asks here when
the environment does not set one), and the log masking of every secret read.

A secret setting (``Setting.is_secret``) is the Airflow Variable of its lower-case name
(outcomes.settings.backend_variable) in the backend Airflow is configured with: docs/operations.md,
"Secrets from a secrets backend". Imported by outcomes.settings only when a secret is read.
"""

from __future__ import annotations

import os

from outcomes.settings import DECLARED, Setting, SettingError, backend_variable, home_dir

#: Airflow's settings that configure a secrets backend ("[secrets] backend" for every component,
#: "[workers] secrets_backend" for task processes). Without either, no lookup (and no import of
#: Airflow) happens: the CLI stays quick.
BACKEND_SETTINGS = ("AIRFLOW__SECRETS__BACKEND", "AIRFLOW__WORKERS__SECRETS_BACKEND")


def from_secrets_backend(name: str) -> str:
    """The Variable of ``name`` from the secrets backend Airflow is configured with, or "".

    Only the configured backend is asked, never Airflow's metadata database: the warehouse's URL,
    which that database's address is derived from, is one of the secrets. In a process that has
    not imported Airflow yet (the ``outcomes`` command, before it has put the project's Airflow
    settings in place: importing Airflow fixes its home and its database for the process), the
    backend is asked by a child process, once for every secret setting, through a pipe.
    """
    if not any(os.environ.get(key, "").strip() for key in BACKEND_SETTINGS):
        return ""
    import sys

    if "airflow" in sys.modules:
        return _ask_backend(name)
    if not _CHILD_ANSWERS:
        _CHILD_ANSWERS.update(_ask_backend_in_a_child())
    answer = _CHILD_ANSWERS[name]
    if answer.startswith(_FAILED):
        raise SettingError(answer[len(_FAILED) :])
    return answer


#: The child's answers in this process (each secret setting's value, "" or a failure), asked once.
_CHILD_ANSWERS: dict[str, str] = {}
_FAILED = "\0failed:"
_ANSWER_LINE = "outcomes-secrets-backend-answer:"


def _ask_backend(name: str) -> str:
    """The setting's Variable from the configured backend ([secrets] backend, else [workers]
    secrets_backend), "" when it holds none; :class:`SettingError` when it cannot be read."""
    from airflow.configuration import get_custom_secret_backend

    for worker_mode in (False, True):
        try:
            backend = get_custom_secret_backend(worker_mode=worker_mode)
            value = backend.get_variable(backend_variable(name)) if backend is not None else None
        except Exception as error:  # an unreachable store: say which setting, never a value
            raise SettingError(
                f"{name}: the secrets backend could not be read for the Variable "
                f"{backend_variable(name)} ({_described(error)})"
            ) from None
        if backend is not None:
            return value or ""
    return ""


def _described(error: Exception) -> str:
    """A backend's error as its type and the start of its message (a message that cannot even be
    made, as some of Airflow's parse errors on a terminal, is left out)."""
    try:
        message = str(error).strip().splitlines()[0][:200] if str(error).strip() else ""
    except Exception:  # the error's own text failed: its type says enough
        message = ""
    return f"{type(error).__name__}: {message}" if message else type(error).__name__


def _ask_backend_in_a_child() -> dict[str, str]:
    """Every secret setting's Variable, asked by a child process that imports Airflow with the
    project's Airflow home (the values come back through its stdout, a pipe, never a file)."""
    import json
    import subprocess
    import sys

    names = [entry.name for entry in DECLARED if entry.is_secret and not entry.per_source]
    env = {**os.environ, "AIRFLOW_HOME": os.environ.get("AIRFLOW_HOME") or str(home_dir() / "airflow")}
    code = (
        "import json, sys\n"
        "from outcomes.runners.secrets_backend import _ask_backend\n"
        "from outcomes.settings import SettingError\n"
        "answers = {}\n"
        "for name in sys.argv[1:]:\n"
        "    try:\n"
        "        answers[name] = _ask_backend(name)\n"
        "    except SettingError as error:\n"
        f"        answers[name] = {_FAILED!r} + str(error)\n"
        f"print({_ANSWER_LINE!r} + json.dumps(answers), flush=True)\n"
    )
    command = [sys.executable, "-c", code, *names]
    try:
        done = subprocess.run(
            command, env=env, capture_output=True, text=True, timeout=CHILD_TIMEOUT_SECONDS, check=False
        )
    except subprocess.TimeoutExpired:
        failure = f"{_FAILED}the secrets backend did not answer in {CHILD_TIMEOUT_SECONDS} s"
        return dict.fromkeys(names, failure)
    for line in done.stdout.splitlines():
        if line.startswith(_ANSWER_LINE):
            answers: dict[str, str] = json.loads(line[len(_ANSWER_LINE) :])
            return answers
    lines = done.stderr.strip().splitlines()
    last = next((line for line in reversed(lines) if "Error" in line), lines[-1] if lines else "no answer")
    failure = f"{_FAILED}the secrets backend could not be asked (exit {done.returncode}: {last[:200]})"
    return dict.fromkeys(names, failure)


#: How long the child that asks the backend may take (it loads Airflow: 1.4 to 1.6 s measured here).
CHILD_TIMEOUT_SECONDS = 120


def mask(entry: Setting, raw: str) -> None:
    """Hand a secret's value (a URL's password too, and a webhook's path and query: its token)
    to Airflow's log masker, in a process where Airflow is loaded: should anything ever log it,
    Airflow's logs show ``***``. Handed on every read, not once per process: a task's supervisor
    resets the masker its process inherited."""
    import sys

    if "airflow" not in sys.modules:
        return
    values = [raw]
    if entry.kind == "url":
        from urllib.parse import unquote, urlsplit

        parts = urlsplit(raw)
        # a webhook's token is its path or query, or a long part of them (16 characters or more);
        # a database's or a mail server's path is not secret
        token: list[str] = []
        if parts.scheme in ("http", "https"):
            pieces = [*parts.path.split("/"), *(p.partition("=")[2] for p in parts.query.split("&"))]
            token = [parts.path, parts.query, *(piece for piece in pieces if len(piece) >= 16)]
        values += [part for part in (parts.password, *token) if part and len(part) >= 8]
        values += [unquote(value) for value in values if unquote(value) != value]
    try:
        from airflow._shared.secrets_masker import mask_secret as mask_in_airflow
        from airflow.sdk.log import mask_secret as mask_in_tasks
    except ImportError:  # pragma: no cover - Airflow is a dependency
        return
    for value in values:
        mask_in_airflow(value)
        mask_in_tasks(value)
