"""Snapshots of the failed-emails view and the compose dialog (small db, frozen
time). The small db's orders queued their automatic emails when it was built;
the oldest are failed through MailSender's own failure path (a backend that
refuses for good) or delivered with the file backend.

Regenerate with ``.venv/bin/pytest tests/tui/test_snapshots_notifications.py
--snapshot-update`` and look at the SVGs before committing them.
"""

from __future__ import annotations

from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import Input, TextArea

from pulse_tui.config import MailSettings, Settings
from pulse_tui.mail import MailError
from pulse_tui.messages import OpenOrder
from pulse_tui.screens.notifications import ComposeDialog
from pulse_tui.services.desk import Desk
from pulse_tui.services.notifications import MailSender
from pulse_tui.storage.db import make_engine
from tests import factories

SIZES = pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])


async def _settle(pilot: Any) -> None:
    for _ in range(3):
        await pilot.pause()
        await pilot.app.workers.wait_for_complete()
    await pilot.pause()


async def _still(pilot: Any) -> None:
    for widget in pilot.app.screen.query(Input):
        widget.cursor_blink = False
    for area in pilot.app.screen.query(TextArea):
        area.cursor_blink = False
    pilot.app.clear_notifications()
    await pilot.pause()


class Refusing:
    """Refuses every recipient for good, like an SMTP server answering 550."""

    name = "refusing"

    def send(self, msg: EmailMessage) -> None:
        raise MailError(
            f"550 5.1.1 <{msg['To'].addresses[0].addr_spec}>: mailbox unavailable", True
        )

    def close(self) -> None:
        pass


def _seed(path: Path, outbox: Path) -> None:
    """The two oldest emails failed, the next three sent, a free message
    queued; the rest stay queued."""
    settings = Settings(database_url=f"sqlite:///{path}", mail=MailSettings(dir=outbox))
    engine = make_engine(f"sqlite:///{path}")

    def deliver(limit: int, backend: Any = None) -> None:
        sender = MailSender(engine, settings, clock=lambda: factories.START, backend=backend)
        sender.deliver_due(limit)

    deliver(2, Refusing())
    deliver(3)
    desk = Desk(engine, factories.ADMIN, settings=settings, clock=lambda: factories.START)
    desk.notifications.compose("PB-100008", "Delivery date", "Hello.")
    engine.dispose()


def emails_screen(tab: str) -> Any:
    async def run_before(pilot: Any) -> None:
        await _settle(pilot)
        pilot.app.action_notifications(tab)
        await _settle(pilot)
        await _still(pilot)

    return run_before


async def _compose(pilot: Any) -> None:
    await _settle(pilot)
    pilot.app.post_message(OpenOrder("PB-100001"))
    await _settle(pilot)
    await pilot.press("e")
    await _settle(pilot)
    assert isinstance(pilot.app.screen, ComposeDialog)
    await _still(pilot)


@SIZES
def test_failed_emails(snap_compare, make_app, small_db_path, tmp_path, size) -> None:
    _seed(small_db_path, tmp_path / "outbox")
    assert snap_compare(make_app(), terminal_size=size, run_before=emails_screen("failed"))


@SIZES
def test_compose_dialog(snap_compare, make_app, size) -> None:
    assert snap_compare(make_app(), terminal_size=size, run_before=_compose)
