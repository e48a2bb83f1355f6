"""SMTP over TLS: STARTTLS with a login, and implicit TLS ("ssl"), against a
real aiosmtpd that trusts nothing but its own self-signed certificate.

The certificate is made by the openssl command line for 127.0.0.1; the
client trusts exactly that certificate (``ssl_context``), so the tests prove
the backend really negotiates TLS and checks the server's name.
"""

from __future__ import annotations

import shutil
import ssl
import subprocess
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from pulse_tui.mail.backends import MailError, SmtpBackend
from tests.mail.conftest import Inbox, free_port

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl")

USER, PASSWORD = "pulse", "s3cret-pass"


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("tls")
    key, crt = d / "key.pem", d / "cert.pem"
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
            "-keyout",
            str(key),
            "-out",
            str(crt),
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )
    return crt, key


def _server_ctx(cert: tuple[Path, Path]) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(*map(str, cert))
    return ctx


def _client_ctx(cert: tuple[Path, Path]) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(cert[0]))


class Sessions(Inbox):
    """Also records whether each message came over TLS and who logged in."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[bool, Any]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        encrypted = server.transport.get_extra_info("ssl_object") is not None
        self.seen.append((encrypted, session.auth_data))
        return await super().handle_DATA(server, session, envelope)


def _authenticator(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> Any:
    ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
        USER.encode(),
        PASSWORD.encode(),
    )
    return AuthResult(success=ok, auth_data=data.login.decode() if ok else None)


def _message(to: str = "grace@example.com") -> EmailMessage:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "Pulse <orders@pulse.local>", to, "TLS check"
    msg["Message-ID"] = "<tls-check@pulse.local>"
    msg.set_content("hello over TLS")
    return msg


def test_starttls_with_login_delivers_encrypted_and_authenticated(cert) -> None:  # type: ignore[no-untyped-def]
    inbox = Sessions()
    port = free_port()
    ctl = Controller(
        inbox,
        hostname="127.0.0.1",
        port=port,
        tls_context=_server_ctx(cert),
        require_starttls=True,
        authenticator=_authenticator,
        auth_require_tls=True,
    )
    ctl.start()
    try:
        backend = SmtpBackend(
            "127.0.0.1",
            port,
            security="starttls",
            username=USER,
            password=PASSWORD,
            ssl_context=_client_ctx(cert),
        )
        try:
            backend.send(_message())
        finally:
            backend.close()
        wrong = SmtpBackend(
            "127.0.0.1",
            port,
            security="starttls",
            username=USER,
            password="nope",
            ssl_context=_client_ctx(cert),
        )
        with pytest.raises(MailError):
            wrong.send(_message())
        wrong.close()
    finally:
        ctl.stop()
    assert [r.message["Subject"] for r in inbox.messages] == ["TLS check"]
    assert inbox.seen == [(True, USER)]


def test_implicit_tls_delivers_and_refuses_an_untrusted_server(cert) -> None:  # type: ignore[no-untyped-def]
    inbox = Sessions()
    port = free_port()
    ctl = Controller(inbox, hostname="127.0.0.1", port=port, ssl_context=_server_ctx(cert))
    ctl.start()
    try:
        backend = SmtpBackend("127.0.0.1", port, security="ssl", ssl_context=_client_ctx(cert))
        try:
            backend.send(_message())
        finally:
            backend.close()
        # the default trust store does not know our self-signed certificate
        untrusted = SmtpBackend("127.0.0.1", port, security="ssl")
        with pytest.raises(MailError):
            untrusted.send(_message())
        untrusted.close()
    finally:
        ctl.stop()
    assert len(inbox.messages) == 1 and inbox.seen == [(True, None)]
