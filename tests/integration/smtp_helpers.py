"""A real SMTP server for the mail tests: aiosmtpd on 127.0.0.1 with STARTTLS (a
self-signed certificate made with openssl) and AUTH, collecting what it accepts."""

from __future__ import annotations

import email
import socket
import ssl
import subprocess
from email.message import EmailMessage
from email.policy import default
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session

PASSWORD = "smtp-canary-Pa55"
USER = "vcops"


class Collect:
    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []

    async def handle_DATA(self, server: object, session: Session, envelope: Envelope) -> str:
        data = envelope.original_content or b""
        self.messages.append(email.message_from_bytes(data, policy=default))  # type: ignore[arg-type]
        return "250 OK"


def _auth(
    server: object, session: Session, envelope: Envelope, mechanism: str, data: object
) -> AuthResult:
    ok = (
        isinstance(data, LoginPassword)
        and data.login == USER.encode()
        and data.password == PASSWORD.encode()
    )
    return AuthResult(success=ok)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_cert(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1: (cert.pem, key.pem)."""
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(directory / "key.pem"),
            "-out",
            str(directory / "cert.pem"),
        ],
        check=True,
        capture_output=True,
    )
    return directory / "cert.pem", directory / "key.pem"


def start_server(port: int, cert: tuple[Path, Path]) -> tuple[Controller, Collect]:
    """Listening on 127.0.0.1:port, STARTTLS and AUTH required; stop() it when done."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(cert[0]), str(cert[1]))
    handler = Collect()
    controller = Controller(
        handler,
        hostname="127.0.0.1",
        port=port,
        tls_context=context,
        require_starttls=True,
        auth_required=True,
        authenticator=_auth,
    )
    controller.start()
    return controller, handler


def smtp_toml(port: int, cert: Path, password_env: str) -> str:
    """The [smtp] section pointing at the test server."""
    return (
        f'[smtp]\nhost = "127.0.0.1"\nport = {port}\nsecurity = "starttls"\nusername = "{USER}"\n'
        f'password_env = "{password_env}"\nfrom = "vcops@ops.example.net"\ncafile = "{cert}"\n'
    )
