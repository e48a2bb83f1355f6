"""A real SMTP server (aiosmtpd) for the mail tests, and what they share.

The server runs in-process in a thread on 127.0.0.1 and a free port, started
once per test session; ``inbox`` empties it before each test. Recipients whose
local part starts with ``bounce`` are refused with 550 (permanent), ``busy``
with 451 (temporary), like a real server would.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path
from typing import Any, cast

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import Engine

from pulse_tui.config import Settings
from pulse_tui.services.desk import Desk
from tests import factories


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage


@dataclass
class Inbox:
    """The aiosmtpd handler: keeps what arrives, refuses some recipients."""

    messages: list[Received] = field(default_factory=list)

    async def handle_RCPT(  # noqa: N802 - aiosmtpd's hook name
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: Any
    ) -> str:
        local = address.split("@", 1)[0].lower()
        if local.startswith("bounce"):
            return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"
        if local.startswith("busy"):
            return "451 4.2.1 Mailbox busy, try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        msg = cast(EmailMessage, message_from_bytes(envelope.content, policy=default_policy))
        self.messages.append(Received(envelope.mail_from, list(envelope.rcpt_tos), msg))
        return "250 2.0.0 Message accepted"

    def by_message_id(self, message_id: str) -> list[Received]:
        return [r for r in self.messages if r.message["Message-ID"] == message_id]


@dataclass
class SmtpServer:
    host: str
    port: int
    inbox: Inbox


def start_server(port: int | None = None) -> tuple[Controller, SmtpServer]:
    inbox = Inbox()
    port = port or free_port()
    ctl = Controller(inbox, hostname="127.0.0.1", port=port)
    ctl.start()
    return ctl, SmtpServer("127.0.0.1", port, inbox)


@pytest.fixture(scope="session")
def smtp_session() -> Iterator[SmtpServer]:
    ctl, server = start_server()
    try:
        yield server
    finally:
        ctl.stop()


@pytest.fixture
def smtp(smtp_session: SmtpServer) -> SmtpServer:
    smtp_session.inbox.messages.clear()
    return smtp_session


class Clock:
    """A clock that stands still until the test moves it."""

    def __init__(self, start: datetime = factories.START) -> None:
        self.t = start

    def __call__(self) -> datetime:
        return self.t

    def advance(self, delta: timedelta) -> None:
        self.t += delta


@pytest.fixture
def mclock() -> Clock:
    return Clock()


def mail_settings(engine: Engine, tmp_path: Path, **mail: Any) -> Settings:
    st = Settings(database_url=str(engine.url))
    st.mail.templates_dir = tmp_path / "templates"  # no overrides unless a test writes some
    st.mail.dir = tmp_path / "outbox"
    for k, v in mail.items():
        setattr(st.mail, k, v)
    return st


@pytest.fixture
def smtp_settings(engine: Engine, tmp_path: Path, smtp: SmtpServer) -> Settings:
    return mail_settings(engine, tmp_path, backend="smtp", host=smtp.host, port=smtp.port)


@pytest.fixture
def desk(engine: Engine, smtp_settings: Settings, mclock: Clock) -> Desk:
    return Desk(engine, factories.ADMIN, smtp_settings, clock=mclock)
