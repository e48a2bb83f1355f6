"""PaymentService.apply: the sync's results through the order rules, idempotently;
the lease and the cursor rows."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from pulse_tui.config import GatewayConfig, load_settings
from pulse_tui.domain.status import PaymentStatus
from pulse_tui.gateways.base import PaymentInfo
from pulse_tui.services import payments as pay
from pulse_tui.services.context import Context
from pulse_tui.services.errors import Conflict
from pulse_tui.storage.db import read_session
from pulse_tui.storage.models import AuditEntry, Order, OrderEvent, Payment
from tests import factories


def info(ref: str, status: PaymentStatus, amount: int, currency: str = "EUR", **kw) -> PaymentInfo:
    return PaymentInfo(
        gateway="stripe",
        ref=ref,
        status=status,
        gateway_status=str(status),
        amount=amount,
        currency=currency,
        **kw,
    )


def counts(engine) -> tuple[int, int, int]:
    with read_session(engine) as s:
        return (
            s.execute(select(func.count()).select_from(OrderEvent)).scalar_one(),
            s.execute(select(func.count()).select_from(AuditEntry)).scalar_one(),
            s.execute(select(func.sum(Order.version))).scalar_one(),
        )


@pytest.fixture
def svc(engine, clock):
    return pay.PaymentService(Context(engine, factories.ADMIN, clock=clock))


def test_paid_moves_to_processing_once(engine, admin_desk, svc) -> None:
    o = factories.place(admin_desk)
    svc.attach(o.number, gateway="stripe", reference="pi_A")
    assert svc.pending_refs("stripe") == ["pi_A"]
    r = svc.apply(info("pi_A", PaymentStatus.PAID, o.total, card_brand="visa", card_last4="4242"))
    assert r.outcome == pay.Outcome.PAID and r.order == o.number
    d = admin_desk.orders.detail(o.number)
    assert (d.order.status, d.order.payment_status, d.order.paid) == ("processing", "paid", o.total)
    assert [(p.status, p.card_last4) for p in d.payments] == [("paid", "4242")]
    with read_session(engine) as s:
        evs = s.execute(
            select(OrderEvent.kind, OrderEvent.actor).where(OrderEvent.order_id == o.id)
        ).all()
    assert ("payment_confirmed", "gateway:stripe") in evs and ("status", "gateway:stripe") in evs
    before = counts(engine)
    again = svc.apply(info("pi_A", PaymentStatus.PAID, o.total))
    assert again.outcome == pay.Outcome.UNCHANGED and counts(engine) == before
    assert svc.pending_refs("stripe") == []


def test_failed_holds_once(engine, admin_desk, svc) -> None:
    o = factories.place(admin_desk)
    svc.attach(o.number, gateway="stripe", reference="pi_F")
    r = svc.apply(info("pi_F", PaymentStatus.FAILED, o.total, failure_reason="card declined"))
    assert r.outcome == pay.Outcome.FAILED
    d = admin_desk.orders.detail(o.number)
    assert (d.order.status, d.order.on_hold, d.order.hold_reason) == (
        "pending",
        True,
        pay.PAYMENT_FAILED_HOLD,
    )
    before = counts(engine)
    assert svc.apply(info("pi_F", PaymentStatus.FAILED, o.total)).outcome == pay.Outcome.UNCHANGED
    assert counts(engine) == before


def test_pending_and_unknown_change_nothing(engine, admin_desk, svc) -> None:
    o = factories.place(admin_desk)
    svc.attach(o.number, gateway="stripe", reference="pi_P")
    before = counts(engine)
    assert svc.apply(info("pi_P", PaymentStatus.UNPAID, o.total)).outcome == pay.Outcome.UNCHANGED
    assert svc.apply(info("pi_nope", PaymentStatus.PAID, 1)).outcome == pay.Outcome.UNKNOWN
    assert counts(engine) == before


def test_amount_mismatch_refused_without_change(engine, admin_desk, svc) -> None:
    o = factories.place(admin_desk)
    svc.attach(o.number, gateway="stripe", reference="pi_M")
    before = counts(engine)
    r = svc.apply(info("pi_M", PaymentStatus.PAID, o.total - 1))
    assert r.outcome == pay.Outcome.REFUSED and "does not match" in r.message
    assert counts(engine) == before


def test_order_named_in_metadata_gets_a_payment_row(engine, admin_desk, svc) -> None:
    o = factories.place(admin_desk)
    r = svc.apply(info("pi_meta", PaymentStatus.PAID, o.total, order_ref=o.number))
    assert r.outcome == pay.Outcome.PAID
    with read_session(engine) as s:
        p = s.execute(select(Payment).where(Payment.gateway_ref == "pi_meta")).scalar_one()
    assert p.status == "paid" and p.order_id == o.id


def test_attach_refuses_duplicates(engine, admin_desk, svc) -> None:
    o = factories.place(admin_desk)
    svc.attach(o.number, gateway="stripe", reference="pi_D")
    before = counts(engine)
    with pytest.raises(Conflict):
        svc.attach(o.number, gateway="stripe", reference="pi_D")
    assert counts(engine) == before


def test_attach_writes_event_audit_and_bumps_version(engine, admin_desk, svc) -> None:
    o = factories.place(admin_desk)
    svc.attach(o.number, gateway="stripe", reference="pi_E")
    with read_session(engine) as s:
        kinds = s.execute(select(OrderEvent.kind).where(OrderEvent.order_id == o.id)).scalars()
        actions = s.execute(
            select(AuditEntry.action).where(AuditEntry.entity_id == o.number)
        ).scalars()
        version = s.get(Order, o.id).version
        assert "payment_attached" in list(kinds) and "payment.attach" in list(actions)
    assert version == o.version + 1


def test_lease_one_holder_until_expiry(engine) -> None:
    clock = factories.FrozenClock(step=timedelta(seconds=1))
    ctx = Context(engine, factories.ADMIN, clock=clock)
    ttl = timedelta(seconds=30)
    assert pay.acquire_lease(ctx, "A", ttl) == (True, "A")
    assert pay.acquire_lease(ctx, "B", ttl) == (False, "A")
    assert pay.acquire_lease(ctx, "A", ttl) == (True, "A")  # renew
    assert pay.lease_holder(ctx)[0] == "A"
    clock.t += timedelta(minutes=5)  # A crashed: its lease runs out
    assert pay.acquire_lease(ctx, "B", ttl) == (True, "B")
    pay.release_lease(ctx, "A")  # not A's any more: no effect
    assert pay.lease_holder(ctx)[0] == "B"
    pay.release_lease(ctx, "B")
    assert pay.lease_holder(ctx) == (None, None)


def test_cursor_and_run_state(engine, clock) -> None:
    ctx = Context(engine, factories.ADMIN, clock=clock)
    assert pay.get_cursor(ctx, "stripe") is None
    pay.save_cursor(ctx, "stripe", "123")
    pay.record_run(ctx, "stripe", ["stripe: HTTP 500"])
    (st,) = pay.sync_states(ctx)
    assert (st.cursor, st.error_count, st.last_error, st.last_success_at) == (
        "123",
        1,
        "stripe: HTTP 500",
        None,
    )
    pay.record_run(ctx, "stripe", [])
    (st,) = pay.sync_states(ctx)
    assert st.last_success_at is not None and st.last_error is None and st.cursor == "123"


def test_gateway_config_from_env_masked(monkeypatch, tmp_path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(
        '[gateways.stripe]\nsecret_key = "sk_test_fromfile_0000"\nbase_url = "http://127.0.0.1:9"\n'
    )
    monkeypatch.setenv("PULSE_CONFIG", str(cfg))
    monkeypatch.setenv("PULSE_PAYPAL_CLIENT_ID", "cid")
    monkeypatch.setenv("PULSE_PAYPAL_SECRET", "pp_secret_value_9876")
    s = load_settings("sqlite://")
    st, pp = s.gateways["stripe"], s.gateways["paypal"]
    assert (st.base_url, st.configured, pp.client_id, pp.configured) == (
        "http://127.0.0.1:9",
        True,
        "cid",
        True,
    )
    assert "sk_test_fromfile" not in repr(s) and "pp_secret" not in repr(s)
    assert st.masked()["secret_key"] == "****0000"
    assert not GatewayConfig("stripe", "x").configured


def test_confirming_an_attached_transfer_settles_that_payment(engine, admin_desk, svc) -> None:
    o = factories.place(admin_desk)
    svc.attach(o.number, gateway="bank_transfer", reference="STMT-1", method="bank_transfer")
    admin_desk.orders.confirm_payment(o.number, gateway="bank_transfer", reference="STMT-1")
    with read_session(engine) as s:
        rows = s.execute(
            select(Payment.status, Payment.captured).where(Payment.order_id == o.id)
        ).all()
    assert rows == [("paid", o.total)]
