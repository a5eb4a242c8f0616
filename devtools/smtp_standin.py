"""A real SMTP server on loopback for development and tests (aiosmtpd), never shipped.

    standin = SmtpStandin(username="minga", password="secret").start()
    standin.port, standin.ca_file        # MAIL_PORT, MAIL_CA_FILE
    standin.messages                     # every message received, parsed (Received)
    standin.stop()

It offers STARTTLS with a self-signed certificate for 127.0.0.1 made at start with the
`openssl` command (the venv has no `cryptography` package); without openssl it serves
plain SMTP, `tls` is False and the client must run with MAIL_USE_STARTTLS off (STARTTLS is
then exercised only against a real server). With a username it requires AUTH (LOGIN or
PLAIN, after STARTTLS when there is TLS) and refuses a wrong password with 535.
Addresses in `refuse` are refused at RCPT with 550. Given `mailbox_dir`, each message is
also written there as a .eml file (what /dev/messages shows under `make run`).

    python -m devtools.smtp_standin --port 8025 --mailbox instance/mailbox
"""
from __future__ import annotations

import argparse
import email
import logging
import os
import shutil
import socket
import ssl
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from email import policy
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

HOST = "127.0.0.1"
# aiosmtpd 1.4 itself sets the deprecated Session.login_data on every AUTH, and logs it.
logging.getLogger("mail.log").addFilter(lambda record: "login_data" not in record.getMessage())


@dataclass
class Received:
    """One message as the server got it."""
    mail_from: str
    rcpt_tos: list[str]
    login: str | None                  # who logged in (None: no AUTH)
    tls: bool                          # whether STARTTLS was on
    raw: bytes
    headers: dict[str, str] = field(default_factory=dict)   # first value of each name
    text: str | None = None
    html: str | None = None

    @property
    def subject(self) -> str:
        return self.headers.get("Subject", "")

    @classmethod
    def parse(cls, raw: bytes, **envelope) -> "Received":
        parsed = email.message_from_bytes(raw, policy=policy.default)
        headers: dict[str, str] = {}
        for name, value in parsed.items():
            headers.setdefault(name, str(value))
        text = parsed.get_body(preferencelist=("plain",))
        html = parsed.get_body(preferencelist=("html",))
        return cls(raw=raw, headers=headers, text=_content(text), html=_content(html),
                   **envelope)


def _content(part) -> str | None:
    """A part's text with the wire's CRLF line ends made plain newlines."""
    return None if part is None else part.get_content().replace("\r\n", "\n")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def self_signed_certificate(directory: str) -> tuple[str, str] | None:
    """(certificate, key) files for 127.0.0.1 and localhost, made with openssl; None when
    there is no openssl."""
    if shutil.which("openssl") is None:
        return None
    cert, key = os.path.join(directory, "cert.pem"), os.path.join(directory, "key.pem")
    result = subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "3",
         "-keyout", key, "-out", cert, "-subj", "/CN=localhost",
         "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
        capture_output=True, timeout=60)
    return (cert, key) if result.returncode == 0 else None


class _Handler:
    def __init__(self, standin: "SmtpStandin"):
        self.standin = standin

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        # AUTH is required here rather than by aiosmtpd's auth_required, which warns when a
        # plain-loopback stand-in (no openssl) requires it without TLS.
        if self.standin.username and not session.authenticated:
            return "530 5.7.0 Authentication required"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.lower() in self.standin.refuse:
            return "550 5.1.1 No such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        auth = session.auth_data
        login = auth.login.decode() if isinstance(auth, LoginPassword) else None
        received = Received.parse(envelope.original_content or envelope.content,
                                  mail_from=envelope.mail_from,
                                  rcpt_tos=list(envelope.rcpt_tos), login=login,
                                  tls=session.ssl is not None)
        self.standin._keep(received)
        return "250 Message accepted for delivery"


class SmtpStandin:
    def __init__(self, *, username: str | None = "minga", password: str = "minga-secret",
                 port: int = 0, mailbox_dir: str | None = None, tls: bool = True):
        self.username, self.password = username, password
        self.port = port or free_port()
        self.mailbox_dir = mailbox_dir
        self.want_tls = tls
        self.refuse: set[str] = set()
        self.messages: list[Received] = []
        self._lock = threading.Lock()
        self._dir: str | None = None
        self.ca_file: str | None = None
        self.controller: Controller | None = None

    @property
    def tls(self) -> bool:
        return self.ca_file is not None

    def start(self) -> "SmtpStandin":
        context = None
        if self.want_tls:
            self._dir = tempfile.mkdtemp(prefix="minga-smtp-")
            made = self_signed_certificate(self._dir)
            if made is not None:
                self.ca_file, key = made
                context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
                context.load_cert_chain(self.ca_file, key)
        if self.mailbox_dir:
            Path(self.mailbox_dir).mkdir(parents=True, exist_ok=True)
        options = {}
        if self.username:
            options.update(authenticator=self._authenticate,
                           auth_require_tls=context is not None)
        self.controller = Controller(_Handler(self), hostname=HOST, port=self.port,
                                     tls_context=context, server_hostname="localhost",
                                     **options)
        self.controller.start()
        return self

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None
        if self._dir:
            shutil.rmtree(self._dir, ignore_errors=True)

    def clear(self) -> None:
        with self._lock:
            self.messages.clear()

    def settings(self) -> dict:
        """The app settings that send through this server."""
        return {"MAIL_SERVER": HOST, "MAIL_PORT": self.port, "MAIL_USE_STARTTLS": self.tls,
                "MAIL_CA_FILE": self.ca_file or "", "MAIL_USERNAME": self.username or "",
                "MAIL_PASSWORD": self.password if self.username else ""}

    def _authenticate(self, server, session, envelope, mechanism, auth_data):
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        ok = (auth_data.login.decode() == self.username
              and auth_data.password.decode() == self.password)
        return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)

    def _keep(self, received: Received) -> None:
        with self._lock:
            self.messages.append(received)
            count = len(self.messages)
        if self.mailbox_dir:
            name = f"{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}-{count:05d}.eml"
            path = Path(self.mailbox_dir) / name
            path.with_suffix(".tmp").write_bytes(received.raw)
            path.with_suffix(".tmp").replace(path)  # a reader never sees half a message


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8025)
    parser.add_argument("--mailbox", default="instance/mailbox")
    parser.add_argument("--username", default="minga")
    parser.add_argument("--password", default="minga-secret")
    args = parser.parse_args()
    standin = SmtpStandin(username=args.username, password=args.password, port=args.port,
                          mailbox_dir=args.mailbox).start()
    print(f"SMTP stand-in on {HOST}:{standin.port} (STARTTLS {'on' if standin.tls else 'off'},"
          f" CA file {standin.ca_file}); mailbox {args.mailbox}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        standin.stop()


if __name__ == "__main__":
    main()
