"""Customer emails in the desk (pilot): compose, retry, resend, the delivery worker.

The small database's orders queued their automatic emails (order
confirmation, payment received, ...) when it was built; none is delivered.
Here the oldest due ones are delivered through ``MailSender`` (one at a time:
``limit``) with the file backend into tmp_path, or failed with a backend that
refuses for good (the service's own failure path, like an SMTP 550).
"""

from __future__ import annotations

import asyncio
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import Input, OptionList, Select, TextArea

from pulse_tui.app import build_app
from pulse_tui.commands import _desk_actions
from pulse_tui.config import MailSettings, Settings
from pulse_tui.mail import MailError, eml_name
from pulse_tui.screens.bulk import BulkScreen
from pulse_tui.screens.dialogs import ConfirmDialog
from pulse_tui.screens.notifications import ComposeDialog, NotificationsScreen, ResendDialog
from pulse_tui.services.desk import Desk
from pulse_tui.services.notifications import DeliveryReport, MailSender
from pulse_tui.storage.db import make_engine
from pulse_tui.widgets.timeline import Timeline
from tests import factories
from tests.tui.helpers import open_detail, settle

pytestmark = pytest.mark.anyio

SIZE = (100, 40)
START = factories.START


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _settings(path: Path, outbox: Path) -> Settings:
    return Settings(database_url=f"sqlite:///{path}", mail=MailSettings(dir=outbox))


def _desk(path: Path, settings: Settings | None = None) -> Desk:
    engine = make_engine(f"sqlite:///{path}")
    return Desk(engine, factories.ADMIN, settings=settings, clock=lambda: START)


class Refusing:
    """A mail backend whose server refuses the recipient for good (SMTP 550)."""

    name = "refusing"

    def send(self, msg: EmailMessage) -> None:
        raise MailError("550 5.1.1 mailbox unavailable", permanent=True)

    def close(self) -> None:
        pass


def _deliver_oldest(path: Path, tmp_path: Path, *, fail: bool) -> Any:
    """Deliver (file backend) or fail (refused) the oldest due email; returns its row."""
    settings = _settings(path, tmp_path / "outbox")
    desk = _desk(path, settings)
    sender = MailSender(
        desk.engine, settings, clock=lambda: START, backend=Refusing() if fail else None
    )
    report = sender.deliver_due(limit=1)
    assert (report.failed, report.sent) == ((1, 0) if fail else (0, 1))
    [row] = desk.notifications.list_notifications(status="failed" if fail else "sent")
    desk.engine.dispose()
    return row


async def test_compose_queues_one_message_with_a_timeline_entry(make_app, small_db_path) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        detail = await open_detail(pilot, "PB-100003")
        assert detail.check_action("email_customer", ()) is True
        assert detail.check_action("resend_email", ()) is False  # nothing sent yet
        await pilot.press("e")
        await settle(pilot)
        dialog = app.screen
        assert isinstance(dialog, ComposeDialog)
        draft = app.desk.notifications.compose_draft("PB-100003")
        subject = dialog.query_one("#subject", Input)
        body = dialog.query_one("#body", TextArea)
        assert (subject.value, body.text) == draft  # prefilled from the order
        subject.value = ""
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert app.screen is dialog and "subject" in dialog.error_text("subject")
        subject.value = "Your parcel"
        body.text = "Dear customer,\nit left today."
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert app.screen is detail
        rows = app.desk.notifications.list_notifications(order_ref="PB-100003")
        assert [(r.status, r.subject, r.body_text) for r in rows if r.kind == "message"] == [
            ("queued", "Your parcel", "Dear customer,\nit left today.")
        ]
        assert rows[0].to_addr == detail.loaded.detail.customer.email
        kinds = [e.event_kind for e in detail.query_one(Timeline).events]
        assert "message_queued" in kinds
        assert detail.check_action("resend_email", ()) is False  # all queued, none sent yet


async def test_retry_a_failed_email_from_the_screen(make_app, small_db_path, tmp_path) -> None:
    failed = _deliver_oldest(small_db_path, tmp_path, fail=True)
    _deliver_oldest(small_db_path, tmp_path, fail=False)
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("M")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, NotificationsScreen)
        assert screen.counts.get("failed") == 1 and screen.counts.get("sent") == 1
        assert screen.current is not None and screen.current.id == failed.id  # failed first
        assert screen.check_action("retry", ()) is True
        palette = {title: run for title, _, run in _desk_actions(app, screen)}
        palette["Failed emails"]()  # the palette's entry: this screen, Failed tab
        await settle(pilot)
        assert app.screen is screen and screen.tab == "failed"
        assert [r.id for r in screen.rows] == [failed.id]
        await pilot.press("y")
        await settle(pilot)
        assert isinstance(app.screen, ConfirmDialog)
        await pilot.press("y")
        await settle(pilot)
        assert app.screen is screen
        again = app.desk.notifications.get(failed.id)
        assert again.status == "queued" and again.message_id == failed.message_id
        assert screen.rows == [] and screen.counts.get("failed", 0) == 0
        # the failure stays on the order's timeline, readable
        await pilot.press("escape")
        detail = await open_detail(pilot, failed.order_number)
        texts = [str(e.render()) for e in detail.query_one(Timeline).events]
        assert any("email FAILED" in t and "550" in t for t in texts)


async def test_resend_a_sent_email_from_the_order(make_app, small_db_path, tmp_path) -> None:
    sent = _deliver_oldest(small_db_path, tmp_path, fail=False)
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        detail = await open_detail(pilot, sent.order_number)
        assert detail.check_action("resend_email", ()) is True
        before = app.desk.notifications.list_notifications(order_ref=sent.order_number)
        await pilot.press("E")
        await settle(pilot)
        dialog = app.screen
        assert isinstance(dialog, ResendDialog)
        assert [n.id for n in dialog.notifications] == [sent.id]  # only what was sent
        await pilot.press("enter")
        await settle(pilot)
        assert app.screen is detail
        rows = app.desk.notifications.list_notifications(order_ref=sent.order_number)
        [copy] = [r for r in rows if r.id not in {b.id for b in before}]
        assert copy.status == "queued" and copy.kind == "resend"
        assert copy.template == sent.template and copy.message_id != sent.message_id
        assert app.desk.notifications.get(sent.id).status == "sent"


async def test_app_worker_delivers_with_the_file_backend(small_db_path, tmp_path) -> None:
    outbox = tmp_path / "outbox"
    settings = _settings(small_db_path, outbox)
    desk = _desk(small_db_path, settings)
    row = desk.notifications.compose("PB-100009", "Hello from the desk", "Body text.")
    app = build_app(desk, settings=settings, sync=None, mail_interval=0.2)
    assert app.mail_runner is not None  # built from the settings' mail backend
    async with app.run_test(size=SIZE) as pilot:
        detail = await open_detail(pilot, "PB-100009")
        for _ in range(100):  # the first run sends every email the small db queued
            await pilot.pause(0.1)
            if desk.notifications.get(row.id).status == "sent":
                break
        await settle(pilot)
        assert desk.notifications.get(row.id).status == "sent"
        eml = outbox / eml_name(row.message_id)
        assert "Hello from the desk" in eml.read_text()
        assert app.mail_sent >= 1 and isinstance(app.mail_report, DeliveryReport)
        # the open order reloaded: the delivery is on its timeline
        kinds = [e.event_kind for e in detail.query_one(Timeline).events]
        assert "notification_sent" in kinds


async def test_only_orders_the_run_wrote_on_reload(small_db_path, tmp_path) -> None:
    # a delivery run for PB-100009 leaves the open PB-100003 alone (no reread
    # every few seconds for every open order)
    settings = _settings(small_db_path, tmp_path / "outbox")
    desk = _desk(small_db_path, settings)
    app = build_app(desk, settings=settings, sync=None, mail_interval=0.2)
    async with app.run_test(size=SIZE) as pilot:
        detail = await open_detail(pilot, "PB-100003")
        for _ in range(100):  # the first runs send what the small db queued
            await pilot.pause(0.1)
            if app.mail_sent:
                break
        await settle(pilot)
        reads: list[object] = []
        real = desk.orders.detail

        def spy(ref: object) -> object:
            reads.append(ref)
            return real(ref)

        desk.orders.detail = spy  # type: ignore[method-assign]
        sent_before = app.mail_sent
        row = desk.notifications.compose("PB-100009", "Hello from the desk", "Body text.")
        for _ in range(100):
            await pilot.pause(0.1)
            if desk.notifications.get(row.id).status == "sent":
                break
        await settle(pilot)
        assert desk.notifications.get(row.id).status == "sent"
        assert app.mail_sent > sent_before and detail.loaded is not None
        assert detail.loaded.detail.order.number == "PB-100003"
        assert reads == []  # the open order was not read again


class FlakyRunner:
    def __init__(self) -> None:
        self.calls = 0

    async def run_once(self) -> DeliveryReport:
        self.calls += 1
        if self.calls == 1:
            raise RuntimeError("database is locked")
        return DeliveryReport()


async def test_a_failing_delivery_run_is_shown_not_fatal(make_app) -> None:
    base = make_app()
    runner = FlakyRunner()
    app = build_app(base.desk, sync=None, mail=runner, mail_interval=0.1)
    async with app.run_test(size=SIZE) as pilot:
        for _ in range(30):
            await pilot.pause(0.05)
            if runner.calls >= 2:
                break
        await asyncio.sleep(0)
        assert runner.calls >= 2 and app.is_running
        texts = [str(n.message) for n in app._notifications]
        assert any("Email delivery failed: database is locked" in t for t in texts)


async def test_bulk_email_previews_then_queues(make_app, small_db_path, tmp_path) -> None:
    # every order queued its confirmation when placed; the one that failed
    # is the only one a bulk "Order confirmation" sends again
    failed = _deliver_oldest(small_db_path, tmp_path, fail=True)
    assert failed.template == "order_confirmation"
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("asterisk", "b")  # every order, then bulk actions
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, BulkScreen)
        kinds = screen.query_one("#bulk-kind", OptionList)
        kinds.focus()
        kinds.highlighted = [str(o.prompt) for o in kinds.options].index("Email customers")
        await pilot.press("enter")
        await settle(pilot)
        screen.query_one("#notify-template", Select).value = "order_confirmation"
        await pilot.press("p")
        await settle(pilot)
        assert screen.preview is not None and screen.preview.eligible == 1
        assert screen.preview.skipped == {"order confirmation already queued or sent": 23}
        await pilot.press("a")
        await settle(pilot)
        assert screen.result is not None and screen.result.changed == 1
        rows = app.desk.notifications.list_notifications(order_ref=failed.order_number)
        again = [r for r in rows if r.template == "order_confirmation" and r.status == "queued"]
        assert len(again) == 1 and again[0].id != failed.id
