"""Delivery against a real SMTP server (aiosmtpd on 127.0.0.1, see conftest)."""

from __future__ import annotations

from datetime import timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from sqlmodel import col

from pulse_tui.config import Settings
from pulse_tui.domain.money import format_money
from pulse_tui.mail import FileBackend
from pulse_tui.services.desk import Desk
from pulse_tui.services.notifications import MailSender
from pulse_tui.services.refunds import RefundRequest
from pulse_tui.services.returns import ReturnPick
from pulse_tui.storage.db import read_session, write_session
from pulse_tui.storage.models import Customer, Notification, OrderEvent
from tests import factories

from .conftest import Clock, SmtpServer, free_port, mail_settings, start_server


def notifications(engine: Engine) -> list[Notification]:
    with read_session(engine) as s:
        return list(s.execute(select(Notification).order_by(col(Notification.id))).scalars())


def timeline(engine: Engine, number: str) -> list[tuple[str, str]]:
    with read_session(engine) as s:
        from pulse_tui.storage.models import Order

        oid = s.execute(select(Order.id).where(Order.number == number)).scalar_one()
        return [
            (e.kind, e.message)
            for e in s.execute(
                select(OrderEvent).where(OrderEvent.order_id == oid).order_by(col(OrderEvent.id))
            ).scalars()
        ]


def set_email(engine: Engine, customer_id: int, email: str) -> None:
    with write_session(engine) as s:
        c = s.get(Customer, customer_id)
        assert c is not None
        c.email = email


def test_every_template_arrives_with_headers_parts_and_content(
    engine: Engine, desk: Desk, smtp: SmtpServer, smtp_settings: Settings, mclock: Clock
) -> None:
    # Jürgen (de_DE) buys in EUR: placed, paid, shipped, delivered, refund, return.
    a = factories.place(desk, 2, (("MUG-BLUE", 2), ("TEE-M", 1)))
    desk.orders.confirm_payment(a.number)
    desk.orders.ship(a.number, carrier="DHL", tracking="JD0000000042")
    desk.orders.deliver(a.number)
    ret = desk.returns.request(a.number, [ReturnPick("TEE-M", 1)], reason="damaged")
    desk.returns.authorize(ret.id, note="Use the enclosed label")
    refund = desk.refunds.create(a.number, RefundRequest(reason="damaged", amount=500))
    desk.refunds.execute_sync(refund.id)
    # Yuki (ja_JP) in JPY, cancelled; and a free message on Jürgen's order.
    b = factories.place(desk, 3, (("TEA-SET", 1),), "JPY", "JP", shipping=0)
    desk.orders.cancel(b.number, reason="customer_request")
    desk.notifications.compose(a.number, "About your mug", "Hello Jürgen,\n\n<b>not bold</b>")

    version = desk.orders.detail(a.number).order.version

    report = MailSender(engine, smtp_settings, mclock).deliver_due()

    rows = notifications(engine)
    templates = {n.template for n in rows}
    assert templates == {
        "order_confirmation",
        "payment_received",
        "shipped",
        "delivered",
        "return_authorized",
        "refund_issued",
        "cancelled",
        "free_message",
    }
    assert report.sent == len(rows) == 9 and report.failed == report.retried == 0
    assert {n.status for n in rows} == {"sent"}
    assert len(smtp.inbox.messages) == len(rows)
    for n in rows:
        [got] = smtp.inbox.by_message_id(n.message_id)
        msg = got.message
        assert msg["From"] == "Pulse <orders@pulse.local>"
        assert got.rcpt_tos == [n.to_addr]
        assert n.to_addr in msg["To"]
        assert msg["Subject"] == n.subject and n.subject
        assert parsedate_to_datetime(msg["Date"]) == mclock.t
        assert msg.get_content_type() == "multipart/alternative"
        text = msg.get_body(("plain",))
        html = msg.get_body(("html",))
        assert text is not None and html is not None
        number = a.number if n.order_id == a.id else b.number
        assert number in text.get_content() and number in html.get_content()
        assert ("Auto-Submitted" in msg) == (n.template != "free_message")

    def body(template: str) -> tuple[str, str]:
        [n] = [n for n in rows if n.template == template and n.order_id in (a.id, None)] or [
            n for n in rows if n.template == template
        ]
        msg = smtp.inbox.by_message_id(n.message_id)[0].message
        text, html = msg.get_body(("plain",)), msg.get_body(("html",))
        assert text is not None and html is not None
        return (
            text.get_content().replace("\r\n", "\n"),
            html.get_content().replace("\r\n", "\n"),
        )

    # Amounts for the currency and the customer's locale (babel), both parts.
    total_de = format_money(a.total, "EUR", locale="de_DE")
    assert "," in total_de  # German decimals
    for part in body("order_confirmation"):
        assert total_de in part
        assert "Blue mug" in part and "MUG-BLUE" in part
    text, html = body("shipped")
    url = "https://www.dhl.com/en/express/tracking.html?AWB=JD0000000042"
    assert "Carrier: DHL" in text and "JD0000000042" in text and url in text
    assert f'href="{url}"' in html
    assert format_money(500, "EUR", locale="de_DE") in body("refund_issued")[0]
    assert "1 x T-shirt M (TEE-M)" in body("return_authorized")[0]
    assert "Use the enclosed label" in body("return_authorized")[0]
    text, html = body("cancelled")
    assert format_money(b.total, "JPY", locale="ja_JP") in text
    assert "customer request" in text
    text, html = body("free_message")
    assert text.startswith("Hello Jürgen,\n\n<b>not bold</b>")
    assert "&lt;b&gt;not bold&lt;/b&gt;" in html and "<b>not bold</b>" not in html  # escaped
    # Each sent email is on its order's timeline, without bumping the version.
    sent = [m for k, m in timeline(engine, a.number) if k == "notification_sent"]
    assert len(sent) == 7
    assert desk.orders.detail(a.number).order.version == version
    assert f"Email sent to juergen.mueller@example.de: Your order {a.number} has shipped" in sent


def test_server_down_retries_later_then_delivers(
    engine: Engine, tmp_path: Path, mclock: Clock
) -> None:
    port = free_port()  # nothing listens here yet
    settings = mail_settings(engine, tmp_path, backend="smtp", host="127.0.0.1", port=port)
    desk = Desk(engine, factories.ADMIN, settings, clock=mclock)
    o = factories.place(desk, 1, (("CAP-RED", 1),), "USD", "US")
    sender = MailSender(engine, settings, mclock)

    report = sender.deliver_due()

    assert (report.sent, report.retried, report.failed) == (0, 1, 0)
    [n] = notifications(engine)
    assert n.status == "queued" and n.attempts == 1
    assert n.next_attempt_at is not None and n.next_attempt_at > mclock.t
    assert "127.0.0.1" in (n.last_error or "")
    assert sender.deliver_due().total == 0  # not due yet: no new attempt
    mclock.advance(timedelta(seconds=31))
    assert sender.deliver_due().retried == 1  # still down: next wait doubles
    [n] = notifications(engine)
    assert n.attempts == 2 and n.next_attempt_at == mclock.t + timedelta(minutes=1)

    ctl, server = start_server(port)
    try:
        mclock.advance(timedelta(minutes=1))
        report = sender.deliver_due()
    finally:
        ctl.stop()

    assert report.sent == 1
    [n] = notifications(engine)
    assert n.status == "sent" and n.attempts == 3
    [got] = server.inbox.messages
    assert got.message["Message-ID"] == n.message_id
    assert f"Order confirmation {o.number}" == got.message["Subject"]
    assert [k for k, _ in timeline(engine, o.number)].count("notification_sent") == 1


def test_permanent_rejection_fails_with_the_reason(
    engine: Engine, desk: Desk, smtp: SmtpServer, smtp_settings: Settings, mclock: Clock
) -> None:
    set_email(engine, 1, "bounce@example.com")
    o = factories.place(desk, 1, (("CAP-RED", 1),), "USD", "US")

    report = MailSender(engine, smtp_settings, mclock).deliver_due()

    assert (report.sent, report.failed, report.retried) == (0, 1, 0)
    [n] = notifications(engine)
    assert n.status == "failed" and n.attempts == 1
    assert "550" in (n.last_error or "") and "User unknown" in (n.last_error or "")
    assert smtp.inbox.messages == []
    failed = [m for k, m in timeline(engine, o.number) if k == "notification_failed"]
    assert len(failed) == 1 and "550" in failed[0] and "bounce@example.com" in failed[0]
    # Failed ones are listed first, and retry puts one back in the queue.
    assert desk.notifications.list_notifications(status="failed")[0].id == n.id
    assert desk.notifications.retry(n.id).status == "queued"


def test_temporary_rejection_4xx_is_retried(
    engine: Engine, desk: Desk, smtp: SmtpServer, smtp_settings: Settings, mclock: Clock
) -> None:
    set_email(engine, 1, "busy@example.com")
    factories.place(desk, 1, (("CAP-RED", 1),), "USD", "US")

    report = MailSender(engine, smtp_settings, mclock).deliver_due()

    assert report.retried == 1
    [n] = notifications(engine)
    assert n.status == "queued" and "451" in (n.last_error or "")


def test_gives_up_after_max_attempts(engine: Engine, tmp_path: Path, mclock: Clock) -> None:
    settings = mail_settings(engine, tmp_path, backend="smtp", host="127.0.0.1", port=free_port())
    settings.notifications.max_attempts = 2
    desk = Desk(engine, factories.ADMIN, settings, clock=mclock)
    factories.place(desk, 1, (("CAP-RED", 1),), "USD", "US")
    sender = MailSender(engine, settings, mclock)
    assert sender.deliver_due().retried == 1
    mclock.advance(timedelta(hours=1))
    assert sender.deliver_due().failed == 1
    [n] = notifications(engine)
    assert n.status == "failed" and (n.last_error or "").startswith("gave up after 2 attempts")


class Crash(Exception):
    pass


def crash_once_before_commit(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Make the commit after a successful send fail once (a crash right there)."""
    real = MailSender._record_sent
    calls: list[int] = []

    def flaky(self, claim, subject, report):  # type: ignore[no-untyped-def]
        calls.append(claim.id)
        if len(calls) == 1:
            raise Crash("power cut between send and commit")
        return real(self, claim, subject, report)

    monkeypatch.setattr(MailSender, "_record_sent", flaky)
    return calls


def test_crash_between_send_and_commit_sends_one_more_copy_with_the_same_message_id(
    engine: Engine,
    desk: Desk,
    smtp: SmtpServer,
    smtp_settings: Settings,
    mclock: Clock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    factories.place(desk, 1, (("CAP-RED", 1),), "USD", "US")
    crash_once_before_commit(monkeypatch)

    with pytest.raises(Crash):
        MailSender(engine, smtp_settings, mclock).deliver_due()

    [n] = notifications(engine)
    assert n.status == "sending"  # the crash left it claimed
    assert len(smtp.inbox.messages) == 1
    # "Restart": a new sender. Within the lease nothing is sent again.
    restarted = MailSender(engine, smtp_settings, mclock)
    mclock.advance(timedelta(minutes=9))
    assert restarted.deliver_due().total == 0
    assert len(smtp.inbox.messages) == 1
    # After the lease: exactly one more copy, carrying the same Message-ID.
    mclock.advance(timedelta(minutes=2))
    assert restarted.deliver_due().sent == 1
    assert restarted.deliver_due().total == 0
    assert [r.message["Message-ID"] for r in smtp.inbox.messages] == [n.message_id] * 2
    [n] = notifications(engine)
    assert n.status == "sent" and n.attempts == 2


def test_crash_with_the_file_backend_never_writes_a_second_file(
    engine: Engine, tmp_path: Path, mclock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = mail_settings(engine, tmp_path)  # file backend
    desk = Desk(engine, factories.ADMIN, settings, clock=mclock)
    factories.place(desk, 1, (("CAP-RED", 1),), "USD", "US")
    crash_once_before_commit(monkeypatch)
    with pytest.raises(Crash):
        MailSender(engine, settings, mclock).deliver_due()
    mclock.advance(timedelta(minutes=11))
    assert MailSender(engine, settings, mclock).deliver_due().sent == 1
    [n] = notifications(engine)
    files = list((tmp_path / "outbox").iterdir())
    assert [f.name for f in files] == [FileBackend(tmp_path).path_for_id(n.message_id).name]
    assert n.message_id in files[0].read_text()


def test_two_senders_never_take_the_same_row(
    engine: Engine, desk: Desk, smtp: SmtpServer, smtp_settings: Settings, mclock: Clock
) -> None:
    for _ in range(3):
        factories.place(desk, 1, (("CAP-RED", 1),), "USD", "US")
    first = MailSender(engine, smtp_settings, mclock, holder="one")
    second = MailSender(engine, smtp_settings, mclock, holder="two")
    claimed = first._claim(2)
    assert len(claimed) == 2
    assert len(second._claim(10)) == 1  # only the row the first did not take
    assert first._claim(10) == []
