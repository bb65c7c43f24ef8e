"""Real receivers of the alert channels on loopback, for the tests: an HTTP endpoint that records
the webhook's posts, and a minimal SMTP server that records the emails (AUTH PLAIN with a password
of its own)."""

from __future__ import annotations

import base64
import email
import email.policy
import http.server
import json
import secrets
import socketserver
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage


@contextmanager
def webhook_receiver(path: str = "/hook") -> Iterator[tuple[str, list[dict[str, object]]]]:
    """An HTTP endpoint on 127.0.0.1 that records the JSON posted to ``path`` (anything else: 404);
    yields its URL and the list it records into."""
    received: list[dict[str, object]] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            if self.path != path:
                self.send_response(404)
            else:
                received.append(json.loads(body))
                self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}{path}", received
    finally:
        server.shutdown()
        server.server_close()


PASSWORD = secrets.token_urlsafe(12)  # the test server's; it must never reach a log


@dataclass
class Received:
    sender: str
    recipients: list[str]
    message: EmailMessage


@dataclass
class Mailbox:
    """What a minimal SMTP server on loopback received; it accepts AUTH PLAIN with ``PASSWORD``."""

    port: int
    messages: list[Received] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)


class SmtpHandler(socketserver.StreamRequestHandler):
    """Enough of RFC 5321 for smtplib: EHLO/HELO, AUTH PLAIN, MAIL, RCPT, DATA, RSET, NOOP, QUIT."""

    server: _Server

    def reply(self, text: str) -> None:
        self.wfile.write(text.encode() + b"\r\n")

    def handle(self) -> None:
        sender, recipients = "", list[str]()
        self.reply("220 test.invalid ESMTP")
        while line := self.rfile.readline():
            command = line.decode().rstrip("\r\n")
            verb, _, argument = command.partition(" ")
            verb = verb.upper()
            if verb == "EHLO":
                self.reply("250-test.invalid\r\n250-AUTH PLAIN\r\n250 HELP")
            elif verb == "HELO":
                self.reply("250 test.invalid")
            elif verb == "AUTH":
                mechanism, _, response = argument.partition(" ")
                if mechanism.upper() != "PLAIN":
                    self.reply("504 unrecognised authentication type")
                    continue
                if not response:
                    self.reply("334 ")
                    response = self.rfile.readline().decode().strip()
                _, user, password = base64.b64decode(response).decode().split("\0")
                if password == PASSWORD:
                    self.server.record.logins.append(user)
                    self.reply("235 authentication succeeded")
                else:
                    self.reply("535 authentication failed")
            elif verb == "MAIL":
                sender, recipients = argument.partition(":")[2].strip("<> "), []
                self.reply("250 OK")
            elif verb == "RCPT":
                recipients.append(argument.partition(":")[2].strip("<> "))
                self.reply("250 OK")
            elif verb == "DATA":
                self.reply("354 end data with <CR><LF>.<CR><LF>")
                data = bytearray()
                while (chunk := self.rfile.readline()) not in (b".\r\n", b""):
                    data += chunk[1:] if chunk.startswith(b"..") else chunk
                parsed = email.message_from_bytes(bytes(data), policy=email.policy.default)
                assert isinstance(parsed, EmailMessage)
                self.server.record.messages.append(Received(sender, recipients, parsed))
                self.reply("250 OK queued")
            elif verb in ("RSET", "NOOP"):
                self.reply("250 OK")
            elif verb == "QUIT":
                self.reply("221 bye")
                return
            else:
                self.reply("502 command not implemented")


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    record: Mailbox


@contextmanager
def smtp_receiver() -> Iterator[Mailbox]:
    """A real SMTP server on 127.0.0.1, on a free port, in a thread."""
    server = _Server(("127.0.0.1", 0), SmtpHandler)
    server.record = Mailbox(port=server.server_address[1])
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server.record
    finally:
        server.shutdown()
        server.server_close()
