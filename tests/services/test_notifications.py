"""The outbox hook and the desk's notification use cases (no mail server: the
SMTP side is tests/mail)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event, select
from sqlmodel import col

from pulse_tui.config import Settings
from pulse_tui.services import orders as orders_mod
from pulse_tui.services.bulk import BulkKind, BulkRequest, Selection
from pulse_tui.services.desk import Desk
from pulse_tui.services.errors import Conflict, Denied, InvalidInput, NotFound, RuleViolation
from pulse_tui.services.notifications import MailSender
from pulse_tui.storage.db import read_session, write_session
from pulse_tui.storage.models import Customer, Notification, Order, OrderEvent
from tests import factories


def settings_for(engine: Engine, tmp_path: Path, events: tuple[str, ...] | None = None) -> Settings:
    st = Settings(database_url=str(engine.url))
    st.mail.templates_dir = tmp_path / "templates"
    st.mail.dir = tmp_path / "outbox"
    if events is not None:
        st.notifications.events = events
    return st


@pytest.fixture
def settings(engine: Engine, tmp_path: Path) -> Settings:
    return settings_for(engine, tmp_path)


@pytest.fixture
def desk(engine: Engine, settings: Settings) -> Desk:
    return Desk(engine, factories.ADMIN, settings, clock=factories.FrozenClock())


def as_(desk: Desk, actor: Any) -> Desk:
    return Desk(desk.engine, actor, desk.ctx.settings, clock=desk.ctx.clock)


def rows(engine: Engine) -> list[Notification]:
    with read_session(engine) as s:
        return list(s.execute(select(Notification).order_by(col(Notification.id))).scalars())


def events(engine: Engine, number: str) -> list[tuple[str, str]]:
    with read_session(engine) as s:
        oid = s.execute(select(Order.id).where(Order.number == number)).scalar_one()
        return [
            (e.kind, e.message)
            for e in s.execute(
                select(OrderEvent).where(OrderEvent.order_id == oid).order_by(col(OrderEvent.id))
            ).scalars()
        ]


def opt_out(engine: Engine, customer_id: int, email: str | None = None) -> None:
    with write_session(engine) as s:
        c = s.get(Customer, customer_id)
        assert c is not None
        if email is None:
            c.no_transactional_email = True
        else:
            c.email = email


# -- the outbox hook ---------------------------------------------------------------------


def test_each_notifying_change_queues_its_email(desk: Desk) -> None:
    o = factories.place(desk, 2)
    desk.orders.confirm_payment(o.number)
    desk.orders.add_note(o.number, "gift wrap")  # does not notify
    desk.orders.ship(o.number, carrier="DHL", tracking="JD1")
    got = rows(desk.engine)
    assert [(n.kind, n.template, n.status) for n in got] == [
        ("placed", "order_confirmation", "queued"),
        ("payment_confirmed", "payment_received", "queued"),
        ("shipped", "shipped", "queued"),
    ]
    assert {n.to_addr for n in got} == {"juergen.mueller@example.de"}
    assert len({n.message_id for n in got}) == 3
    assert got[2].context == {"event": "shipped", "carrier": "DHL", "tracking": "JD1"}
    assert all(n.next_attempt_at == n.created_at for n in got)
    assert got[0].created_by == "ada"


def test_a_change_that_rolls_back_leaves_no_notification(
    desk: Desk, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(*_a: Any, **_k: Any) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(orders_mod, "reindex_orders", boom)  # after the event, same transaction
    with pytest.raises(RuntimeError):
        factories.place(desk, 1, (("CAP-RED", 1),), "USD", "US")
    assert rows(desk.engine) == []
    monkeypatch.undo()
    o = factories.place(desk, 1, (("CAP-RED", 1),), "USD", "US")
    desk.orders.confirm_payment(o.number)
    monkeypatch.setattr(orders_mod, "record_audits", boom)  # batch path: after record_events
    with pytest.raises(RuntimeError):
        desk.orders.cancel(o.number, reason="fraud")
    assert [n.template for n in rows(desk.engine)] == ["order_confirmation", "payment_received"]


def test_opted_out_customer_is_skipped_with_a_timeline_note(desk: Desk) -> None:
    opt_out(desk.engine, 1)
    o = factories.place(desk, 1, (("CAP-RED", 1),), "USD", "US")  # record_event path
    desk.orders.cancel(o.number, reason="customer_request")  # record_events path
    got = rows(desk.engine)
    assert [(n.template, n.status) for n in got] == [
        ("order_confirmation", "skipped"),
        ("cancelled", "skipped"),
    ]
    assert {n.last_error for n in got} == {"customer opted out of transactional email"}
    notes = [m for k, m in events(desk.engine, o.number) if k == "notification_skipped"]
    assert notes == ["Email skipped: customer opted out of transactional email"] * 2
    assert MailSender(desk.engine, desk.ctx.settings).deliver_due().total == 0  # type: ignore[arg-type]


@pytest.mark.parametrize("email", ["", "not-an-address"])
def test_missing_or_invalid_address_is_skipped_with_a_note(desk: Desk, email: str) -> None:
    opt_out(desk.engine, 1, email=email)
    o = factories.place(desk, 1, (("CAP-RED", 1),), "USD", "US")
    [n] = rows(desk.engine)
    assert n.status == "skipped"
    [(kind, note)] = [e for e in events(desk.engine, o.number) if e[0] == "notification_skipped"]
    assert note.startswith("Email skipped: ") and (
        "no email address" in note if not email else "invalid email address" in note
    )


def test_customer_opting_out_after_queueing_is_skipped_at_send(
    desk: Desk, settings: Settings
) -> None:
    o = factories.place(desk, 1, (("CAP-RED", 1),), "USD", "US")
    assert desk.customers.set_transactional_email(1, False).transactional_email is False
    report = MailSender(desk.engine, settings).deliver_due()
    assert report.skipped == 1 and rows(desk.engine)[0].status == "skipped"
    assert report.orders == {o.id}
    assert ("notification_skipped", "Email skipped: customer opted out of transactional email") in (
        events(desk.engine, o.number)
    )


def test_configured_events_only(engine: Engine, tmp_path: Path) -> None:
    desk = Desk(engine, factories.ADMIN, settings_for(engine, tmp_path, ("shipped",)))
    o = factories.place(desk, 2)
    desk.orders.confirm_payment(o.number)
    desk.orders.ship(o.number, carrier="DHL", tracking="JD1")
    desk.orders.deliver(o.number)
    assert [n.template for n in rows(engine)] == ["shipped"]


def test_notifications_off_writes_nothing(engine: Engine, tmp_path: Path) -> None:
    st = settings_for(engine, tmp_path)
    st.notifications.enabled = False
    desk = Desk(engine, factories.ADMIN, st)
    o = factories.place(desk, 2)
    desk.orders.confirm_payment(o.number)
    desk.orders.cancel(o.number, reason="fraud")
    assert rows(engine) == []


def test_bulk_chunk_queues_with_one_customer_query_and_one_insert(desk: Desk) -> None:
    numbers = [
        factories.place(desk, c, (("CAP-RED", 1),), "USD", "US").number for c in (1, 1, 2, 3)
    ]
    opt_out(desk.engine, 3)
    before = len(rows(desk.engine))
    statements: list[str] = []

    def seen(_c: Any, _cur: Any, stmt: str, *_a: Any) -> None:
        statements.append(stmt)

    event.listen(desk.engine, "before_cursor_execute", seen)
    try:
        ids = desk.bulk.resolve_orders(numbers)
        result = desk.bulk.apply(
            BulkRequest(BulkKind.CANCEL, Selection(ids=ids), reason="fraud"), chunk_size=500
        )
    finally:
        event.remove(desk.engine, "before_cursor_execute", seen)
    assert result.changed == 4
    cancelled = [n for n in rows(desk.engine)[before:] if n.template == "cancelled"]
    assert sorted(n.status for n in cancelled) == ["queued", "queued", "queued", "skipped"]
    inserts = [s for s in statements if s.startswith("INSERT INTO notifications")]
    customer_reads = [s for s in statements if "FROM orders JOIN customers" in s]
    assert len(inserts) == 1 and len(customer_reads) == 1


def test_events_that_do_not_notify_cost_no_query(desk: Desk) -> None:
    o = factories.place(desk, 2)
    statements: list[str] = []
    event.listen(desk.engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    desk.orders.add_note(o.number, "hello")
    desk.orders.tag(o.number, ["vip"])
    assert not any("notifications" in s or "customers" in s for s in statements)


# -- reading ------------------------------------------------------------------------------


def test_list_counts_get_and_filters(desk: Desk) -> None:
    a = factories.place(desk, 2)
    b = factories.place(desk, 1, (("CAP-RED", 1),), "USD", "US")
    desk.orders.confirm_payment(a.number)
    with write_session(desk.engine) as s:
        n = s.get(Notification, 2)
        assert n is not None
        n.status, n.last_error = "failed", "550 no such user"
    viewer = as_(desk, factories.VIEWER)
    listed = viewer.notifications.list_notifications()
    assert [r.id for r in listed] == [2, 3, 1]  # failed first, then newest
    assert listed[0].order_number == b.number and listed[0].customer_name == "Grace Hopper"
    assert listed[0].title == "Order confirmation"
    assert [r.id for r in viewer.notifications.list_notifications(order_ref=a.number)] == [3, 1]
    assert [r.id for r in viewer.notifications.list_notifications(status="failed")] == [2]
    assert viewer.notifications.counts() == {
        "queued": 2,
        "sending": 0,
        "sent": 0,
        "failed": 1,
        "skipped": 0,
    }
    assert viewer.notifications.get(2).last_error == "550 no such user"
    assert viewer.notifications.get(2).as_dict()["created_at"].startswith("2026-")
    with pytest.raises(NotFound):
        viewer.notifications.get(99)
    with pytest.raises(InvalidInput, match="unknown notification status 'lost'"):
        viewer.notifications.list_notifications(status="lost")
    with pytest.raises(NotFound):
        viewer.notifications.list_notifications(order_ref="PB-999999")


# -- changes by hand ----------------------------------------------------------------------


def fail(engine: Engine, nid: int, why: str = "550 no such user") -> None:
    with write_session(engine) as s:
        n = s.get(Notification, nid)
        assert n is not None
        n.status, n.last_error, n.attempts = "failed", why, 3


def test_retry_puts_a_failed_one_back_in_the_queue(desk: Desk) -> None:
    o = factories.place(desk, 2)
    fail(desk.engine, 1)
    agent = as_(desk, factories.AGENT)
    before = rows(desk.engine)[0]
    row = agent.notifications.retry(1)
    assert row.status == "queued" and row.attempts == 0 and row.last_error is None
    assert row.message_id == before.message_id  # the same email, still
    assert ("notification_queued", "Email queued again: Order confirmation") in events(
        desk.engine, o.number
    )
    with pytest.raises(RuleViolation, match="only failed or skipped"):
        agent.notifications.retry(1)


def test_resend_makes_a_new_copy_with_a_new_message_id(desk: Desk) -> None:
    o = factories.place(desk, 2)
    with pytest.raises(RuleViolation, match="about to be sent"):
        desk.notifications.resend(1)
    MailSender(desk.engine, desk.ctx.settings).deliver_due()  # type: ignore[arg-type]
    copy = as_(desk, factories.AGENT).notifications.resend(1)
    first = rows(desk.engine)[0]
    assert copy.id == 2 and copy.status == "queued" and copy.kind == "resend"
    assert copy.template == "order_confirmation" and copy.message_id != first.message_id
    assert first.status == "sent"
    assert any("resend of #1" in m for _k, m in events(desk.engine, o.number))


def test_compose_queues_a_free_message_without_bumping_the_version(desk: Desk) -> None:
    o = factories.place(desk, 2)
    subject, body = desk.notifications.compose_draft(o.number)
    assert subject == f"About your order {o.number}"
    assert body.startswith("Hello Jürgen Müller,") and "34,70" in body  # de_DE money
    agent = as_(desk, factories.AGENT)
    row = agent.notifications.compose(
        o.number, "Your mug", "Hello!\nIt ships Monday.", expected_version=o.version
    )
    assert (row.template, row.kind, row.status) == ("free_message", "message", "queued")
    assert (row.subject, row.body_text) == ("Your mug", "Hello!\nIt ships Monday.")
    assert ("message_queued", "Message queued to juergen.mueller@example.de: Your mug") in events(
        desk.engine, o.number
    )
    assert desk.orders.detail(o.number).order.version == o.version
    MailSender(desk.engine, desk.ctx.settings).deliver_due()  # type: ignore[arg-type]
    assert rows(desk.engine)[-1].status == "sent"


def test_compose_refuses_bad_input_and_changes_nothing(desk: Desk) -> None:
    o = factories.place(desk, 2)
    n = len(rows(desk.engine))
    with pytest.raises(InvalidInput, match="subject cannot be empty"):
        desk.notifications.compose(o.number, " ", "body")
    with pytest.raises(InvalidInput, match="one line"):
        desk.notifications.compose(o.number, "a\nb", "body")
    with pytest.raises(InvalidInput, match="card number"):
        desk.notifications.compose(o.number, "hi", "card 4111 1111 1111 1111")
    with pytest.raises(Conflict):
        desk.notifications.compose(o.number, "hi", "body", expected_version=o.version - 1)
    with pytest.raises(NotFound):
        desk.notifications.compose("PB-999999", "hi", "body")
    opt_out(desk.engine, 2)
    with pytest.raises(RuleViolation, match="opted out"):
        desk.notifications.compose(o.number, "hi", "body")
    assert len(rows(desk.engine)) == n


@pytest.mark.parametrize("actor", [factories.VIEWER, factories.WAREHOUSE])
def test_only_agents_and_admins_change_notifications(desk: Desk, actor: Any) -> None:
    o = factories.place(desk, 2)
    fail(desk.engine, 1)
    other = as_(desk, actor)
    assert other.notifications.list_notifications()  # reading is fine
    for call in (
        lambda: other.notifications.retry(1),
        lambda: other.notifications.resend(1),
        lambda: other.notifications.compose(o.number, "hi", "body"),
        lambda: other.notifications.compose_draft(o.number),
        lambda: other.notifications.notify_orders([o.id or 0], "order_confirmation"),
        lambda: other.customers.set_transactional_email(1, False),
    ):
        with pytest.raises(Denied):
            call()
    assert rows(desk.engine)[0].status == "failed"


def test_notify_orders_skips_what_does_not_fit_and_is_idempotent(desk: Desk) -> None:
    a = factories.place(desk, 2)
    b = factories.place(desk, 1, (("CAP-RED", 1),), "USD", "US")
    desk.orders.confirm_payment(a.number)
    desk.orders.ship(a.number, carrier="UPS", tracking="1Z9")
    MailSender(desk.engine, desk.ctx.settings).deliver_due()  # type: ignore[arg-type]
    fail(desk.engine, 4)  # the shipped email failed
    ids = [a.id or 0, b.id or 0]
    out = desk.notifications.notify_orders(ids, "shipped")
    assert [t.number for t in out.changed] == [a.number]
    assert [(t.number, why) for t, why in out.skipped] == [(b.number, "not shipped")]
    again = desk.notifications.notify_orders(ids, "shipped")
    assert again.changed == [] and len(again.skipped) == 2
    assert "already queued or sent" in again.skipped[0][1]
    out = desk.notifications.notify_orders(ids, "free_message", subject="Sale", body="Hi")
    assert len(out.changed) == 2
    assert (
        len(
            desk.notifications.notify_orders(ids, "free_message", subject="Sale", body="Hi").changed
        )
        == 0
    )
    with pytest.raises(InvalidInput, match="unknown template"):
        desk.notifications.notify_orders(ids, "welcome")
    with pytest.raises(InvalidInput, match="subject cannot be empty"):
        desk.notifications.notify_orders(ids, "free_message")
    report = MailSender(desk.engine, desk.ctx.settings).deliver_due()  # type: ignore[arg-type]
    assert report.sent == 3
    assert report.orders == set(ids)  # whose timelines the run wrote on (the App reloads them)


def test_check_reports_a_broken_override(desk: Desk, settings: Settings) -> None:
    assert desk.notifications.check() == []
    tdir = settings.templates_dir()
    tdir.mkdir(parents=True)
    (tdir / "cancelled.txt.j2").write_text("Subject: {{ order.number }\n")
    [problem] = desk.notifications.check()
    assert problem.startswith("cancelled: syntax error")


def test_order_numbers_in_any_spelling_and_the_async_run(desk: Desk, settings: Settings) -> None:
    import asyncio

    o = factories.place(desk, 2)
    assert [r.order_number for r in desk.notifications.list_notifications(order_ref="100001")] == [
        o.number
    ]
    with pytest.raises(InvalidInput):
        desk.notifications.list_notifications(order_ref="XX-1")
    report = asyncio.run(MailSender(desk.engine, settings).run_once())
    assert report.sent == 1 and len(list(settings.mail_dir().glob("*.eml"))) == 1


def test_mail_and_notification_settings_from_file_and_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from pulse_tui.config import SettingsError, load_mail, load_notifications

    data = {
        "mail": {"backend": "smtp", "host": "mx.example", "security": "starttls", "password": "pw"},
        "notifications": {"events": ["shipped"], "max_attempts": 3},
    }
    m = load_mail(data)
    assert (m.backend, m.host, m.smtp_port, m.security) == ("smtp", "mx.example", 587, "starttls")
    assert "pw" not in repr(m) and m.masked()["password"] == "****"
    monkeypatch.setenv("PULSE_SMTP_PORT", "2525")
    monkeypatch.setenv("PULSE_MAIL_BACKEND", "file")
    monkeypatch.setenv("PULSE_MAIL_DIR", str(tmp_path / "mails"))
    m = load_mail(data)
    assert (m.backend, m.smtp_port, m.dir) == ("file", 2525, tmp_path / "mails")
    n = load_notifications(data)
    assert (n.events, n.max_attempts, n.enabled) == (("shipped",), 3, True)
    monkeypatch.setenv("PULSE_NOTIFY", "0")
    assert load_notifications({}).enabled is False
    with pytest.raises(SettingsError, match="unknown event 'lunch'"):
        load_notifications({"notifications": {"events": ["lunch"]}})
    monkeypatch.setenv("PULSE_MAIL_BACKEND", "pigeon")
    with pytest.raises(SettingsError, match="mail.backend"):
        load_mail({})
    st = Settings(database_url=f"sqlite:///{tmp_path}/db/pulse.sqlite")
    assert st.mail_dir() == tmp_path / "db" / "outbox"


def test_message_ids_are_unique_within_and_across_batches() -> None:
    from itertools import islice

    from pulse_tui.services.notifications import message_ids

    a = list(islice(message_ids("shop.example"), 500))
    b = list(islice(message_ids("shop.example"), 500))
    assert len(set(a) | set(b)) == 1000
    assert all(m.startswith("<pulse.") and m.endswith("@shop.example>") for m in a + b)
