"""Alerts: one way out for every failure and every quarantined or late delivery.

``send(alert)`` is the only way out; the DAGs' notifier (``outcomes.orchestration.notifier``, every
task's failure callback) and the ingest and gate tasks call it. It has three channels:

- **the alerts log**, always: one JSON line appended to ``$OUTCOMES_HOME/alerts.log`` (what
  ``outcomes status`` shows, and all the demo uses). It is written first, so a channel being down
  never hides an alert.
- **a webhook**, when ``OUTCOMES_ALERT_WEBHOOK`` is set: the alert POSTed there as JSON
  (Slack/Teams-style ``{"text": ...}`` plus the structured fields).
- **email**, when ``OUTCOMES_ALERT_EMAIL_TO`` (comma-separated addresses) is set: one message to
  all of them through the SMTP server of ``OUTCOMES_ALERT_SMTP_URL``,
  ``smtp://[user[:password]@]host[:port][?starttls=true]`` (port 25) or ``smtps://...`` (implicit
  TLS, port 465); default ``smtp://localhost``. Percent-encode ``/ ? # %`` in the user or the
  password. The sender is ``OUTCOMES_ALERT_EMAIL_FROM`` (default ``outcomes@<hostname>``).

A channel that fails is logged as an error (never with its credentials) and the others go on.
Alerts carry DAG, task, source, delivery and counts: never rows, never an fnr.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import socket
import urllib.request
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote, urlsplit

from outcomes.settings import SettingError, load_settings, setting

if TYPE_CHECKING:
    from email.message import EmailMessage

log = logging.getLogger(__name__)
WEBHOOK_ENV = "OUTCOMES_ALERT_WEBHOOK"
EMAIL_TO_ENV = "OUTCOMES_ALERT_EMAIL_TO"
EMAIL_FROM_ENV = "OUTCOMES_ALERT_EMAIL_FROM"
SMTP_URL_ENV = "OUTCOMES_ALERT_SMTP_URL"
SMTP_TIMEOUT_SECONDS = 10
SUBJECT_SUMMARY_CHARS = 120


@dataclass(frozen=True)
class Alert:
    kind: str  # task_failed | late_delivery | landing_unreachable | quarantined_delivery | gate_blocked | ...
    summary: str
    details: dict[str, Any] = field(default_factory=dict)
    at: str = field(default_factory=lambda: dt.datetime.now(dt.UTC).isoformat(timespec="seconds"))


def send(alert: Alert) -> None:
    """Record ``alert`` in the alerts log, then post it to the webhook and email it, as configured."""
    settings = load_settings()
    line = json.dumps(asdict(alert), default=str, sort_keys=True)
    settings.home.mkdir(parents=True, exist_ok=True)
    with settings.alerts_log.open("a", encoding="utf-8") as handle:
        handle.write(line + "\n")
    log.warning("ALERT %s: %s", alert.kind, alert.summary)
    try:
        url = setting(WEBHOOK_ENV)
    except SettingError as error:
        log.error("%s; the alert was only logged", error)
        url = None
    if url:
        body = json.dumps({"text": f"[outcomes] {alert.summary}", **asdict(alert)}, default=str).encode()
        request = urllib.request.Request(  # noqa: S310 (http(s) only, checked above)
            url, data=body, headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 (the deployment's URL)
                response.read()
        except OSError as error:  # an alert channel being down must not hide the alert
            log.error("could not post the alert to the webhook: %s", error)
    recipients = setting(EMAIL_TO_ENV)
    if recipients:
        email_alert(alert, recipients)


@dataclass(frozen=True)
class SmtpServer:
    """Where alert emails go, parsed from ``OUTCOMES_ALERT_SMTP_URL``; ``str()`` shows no credentials."""

    host: str
    port: int
    implicit_tls: bool = False
    starttls: bool = False
    user: str | None = None
    password: str | None = field(default=None, repr=False)

    def __str__(self) -> str:
        return f"{'smtps' if self.implicit_tls else 'smtp'}://{self.host}:{self.port}"


def smtp_server(url: str) -> SmtpServer:
    """Parse an SMTP URL; the ValueError for a bad one never repeats the URL (it may hold a password)."""
    form = "smtp://[user[:password]@]host[:port][?starttls=true] or smtps://..."
    parts = urlsplit(url.strip())
    if parts.scheme not in ("smtp", "smtps"):
        raise ValueError(f"{SMTP_URL_ENV} must be an smtp:// or smtps:// URL ({form})")
    implicit_tls = parts.scheme == "smtps"
    try:
        port = parts.port or (465 if implicit_tls else 25)
    except ValueError:
        raise ValueError(f"{SMTP_URL_ENV} has a port that is not a number from 1 to 65535") from None
    if not parts.hostname:
        raise ValueError(f"{SMTP_URL_ENV} names no host ({form})")
    query = parse_qs(parts.query, keep_blank_values=True)
    unknown = sorted(set(query) - {"starttls"})
    if unknown:
        raise ValueError(f"{SMTP_URL_ENV} has unknown parameters {unknown} (only starttls)")
    flag = (query.get("starttls") or ["false"])[-1].lower()
    if flag not in ("true", "false", "1", "0", "yes", "no"):
        raise ValueError(f"{SMTP_URL_ENV}: starttls must be true or false")
    starttls = flag in ("true", "1", "yes")
    if starttls and implicit_tls:
        raise ValueError(f"{SMTP_URL_ENV}: starttls is for smtp://; smtps:// is encrypted from the start")
    return SmtpServer(
        host=parts.hostname,
        port=port,
        implicit_tls=implicit_tls,
        starttls=starttls,
        user=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password is not None else None,
    )


def email_message(alert: Alert, sender: str, recipients: list[str]) -> EmailMessage:
    """The alert as an email: subject ``[outcomes] <kind>: <summary's first line>``, a body of
    readable ``key: value`` lines and the alert's JSON."""
    import email.utils
    from email.message import EmailMessage

    first = alert.summary.strip().splitlines()[0] if alert.summary.strip() else "(no summary)"
    if len(first) > SUBJECT_SUMMARY_CHARS:
        first = first[: SUBJECT_SUMMARY_CHARS - 3].rstrip() + "..."
    fields = {"kind": alert.kind, "at": alert.at, **alert.details}
    width = max(len(str(key)) for key in fields)
    lines = [
        f"{key}:".ljust(width + 2) + str(value).replace("\n", "\n" + " " * (width + 2))
        for key, value in fields.items()
        if value is not None
    ]
    json_line = json.dumps(asdict(alert), default=str, sort_keys=True, indent=2)
    msg = EmailMessage()
    msg["Subject"] = f"[outcomes] {alert.kind}: {first}"
    msg["From"] = sender
    msg["To"] = ", ".join(recipients)
    msg["Date"] = email.utils.formatdate(localtime=False, usegmt=True)
    domain = email.utils.parseaddr(sender)[1].rpartition("@")[2]
    msg["Message-ID"] = email.utils.make_msgid(domain=domain or "localhost")  # no DNS lookup
    msg.set_content(f"{alert.summary}\n\n" + "\n".join(lines) + f"\n\nThe alert as JSON:\n{json_line}\n")
    return msg


def email_alert(alert: Alert, recipients: list[str]) -> None:
    """Email ``alert`` to ``recipients``; a bad setting or a broken server is logged, never raised."""
    import smtplib
    import ssl

    try:
        server = smtp_server(setting(SMTP_URL_ENV))
    except ValueError as error:
        log.error("%s; the alert was not emailed", error)
        return
    try:
        sender = setting(EMAIL_FROM_ENV) or f"outcomes@{socket.gethostname() or 'localhost'}"
        msg = email_message(alert, sender, recipients)
        smtp_class = smtplib.SMTP_SSL if server.implicit_tls else smtplib.SMTP
        # smtplib's own TLS default verifies no certificate: pass a verifying context
        context = ssl.create_default_context() if server.implicit_tls or server.starttls else None
        kwargs: dict[str, Any] = {"context": context} if server.implicit_tls else {}
        with smtp_class(server.host, server.port, timeout=SMTP_TIMEOUT_SECONDS, **kwargs) as smtp:
            if server.starttls:
                smtp.starttls(context=context)
            if server.user:
                smtp.login(server.user, server.password or "")
            refused = smtp.send_message(msg)
    except (OSError, ValueError) as error:  # smtplib.SMTPException is an OSError
        reason = str(error)
        if server.password:
            reason = reason.replace(server.password, "***")
        log.error("could not email the alert via %s (%s): %s", server, SMTP_URL_ENV, reason)
        return
    if refused:
        log.error("the mail server refused the alert for %s", ", ".join(sorted(refused)))


def quarantined(source: str, outcomes: list[dict[str, Any]]) -> None:
    """Alert on every quarantined delivery among ``outcomes`` (the ingest task's summaries)."""
    for outcome in outcomes:
        if outcome.get("status") == "quarantined":
            send(
                Alert(
                    "quarantined_delivery",
                    f"delivery {source}/{outcome['delivery_id']} was quarantined: {outcome['message']}",
                    {
                        "source": source,
                        "delivery_id": outcome["delivery_id"],
                        "rows_received": outcome.get("rows_received"),
                        "hint": f"outcomes deliveries show {source}/{outcome['delivery_id']}",
                    },
                )
            )
