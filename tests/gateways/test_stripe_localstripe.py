"""The Stripe adapter and the sync against a real localstripe server."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import Engine, func, select

from pulse_tui.domain.status import PaymentStatus
from pulse_tui.gateways.base import GatewayError
from pulse_tui.gateways.stripe import StripeAdapter
from pulse_tui.gateways.sync import RetryPolicy
from pulse_tui.services.context import Context
from pulse_tui.services.payment_sync import PaymentSync
from pulse_tui.services.payments import PaymentService
from pulse_tui.storage.db import read_session
from pulse_tui.storage.models import AuditEntry, Order, OrderEvent, Payment
from tests import factories
from tests.gateways.conftest import DECLINED_CARD, SECRET, Customer

pytestmark = pytest.mark.anyio


async def no_sleep(_s: float) -> None:
    return None


@pytest.fixture
async def stripe(localstripe_url: str):
    async with httpx.AsyncClient(timeout=5) as client:
        yield StripeAdapter(client, SECRET, localstripe_url)


async def test_fetch_paid_failed_pending(stripe: StripeAdapter, customer: Customer) -> None:
    paid = await customer.intent(1234, "EUR", "PB-X1")
    failed = await customer.intent(999, "USD", number=DECLINED_CARD)
    pending = await customer.intent(500, "JPY")
    assert (await customer.confirm(paid)).status_code == 200
    assert (await customer.confirm(failed)).status_code == 402

    p = await stripe.fetch_payment(paid)
    assert (p.status, p.amount, p.currency, p.captured, p.order_ref) == (
        PaymentStatus.PAID,
        1234,
        "EUR",
        1234,
        "PB-X1",
    )
    assert p.capture_ref and p.capture_ref.startswith("ch_")
    f = await stripe.fetch_payment(failed)
    assert f.status == PaymentStatus.FAILED and f.failure_reason == "Your card was declined."
    q = await stripe.fetch_payment(pending)
    assert (
        q.status == PaymentStatus.UNPAID
        and q.pending
        and q.gateway_status == "requires_confirmation"
    )


async def test_list_changes_cursor(stripe: StripeAdapter, customer: Customer) -> None:
    first = await stripe.list_changes(None)
    pi = await customer.intent(700, "EUR")
    await customer.confirm(pi)
    page = await stripe.list_changes(first.cursor)
    assert pi in {i.ref for i in page.items}
    assert page.cursor is not None and int(page.cursor) >= int(first.cursor or 0)
    assert not page.has_more


async def test_pagination_walks_every_page(
    stripe: StripeAdapter, customer: Customer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("pulse_tui.gateways.stripe.PAGE_LIMIT", 2)
    pi = await customer.intent(100, "EUR")
    await customer.confirm(pi)
    made = []
    for _ in range(4):
        made.append(
            await stripe.create_refund(
                pi, 10, "EUR", idempotency_key=f"k{_}-{pi}", refund_id=f"R{_}"
            )
        )
    listed = await stripe.list_refunds(pi)
    assert sorted(r.ref for r in listed) == sorted(r.ref for r in made)


async def test_refund_metadata_roundtrip(stripe: StripeAdapter, customer: Customer) -> None:
    pi = await customer.intent(2000, "EUR")
    await customer.confirm(pi)
    r = await stripe.create_refund(pi, 500, "EUR", idempotency_key="idem-1", refund_id="42")
    assert (r.status, r.amount, r.currency, r.refund_id, r.payment_ref) == (
        "succeeded",
        500,
        "EUR",
        "42",
        pi,
    )
    assert (await stripe.fetch_refund(r.ref)).ref == r.ref
    found = await stripe.find_refund_by_metadata(pi, "42")
    assert found is not None and found.ref == r.ref
    assert await stripe.find_refund_by_metadata(pi, "43") is None


async def test_errors_are_gateway_errors(stripe: StripeAdapter, localstripe_url: str) -> None:
    with pytest.raises(GatewayError) as exc:
        await stripe.fetch_payment("pi_doesnotexist")
    assert exc.value.status == 404 and not exc.value.retryable
    async with httpx.AsyncClient(timeout=5) as client:
        bad = StripeAdapter(client, "pk_not_a_secret", localstripe_url)
        with pytest.raises(GatewayError) as exc2:
            await bad.fetch_payment("pi_x")
        with pytest.raises(GatewayError) as exc3:
            await StripeAdapter(client, "", localstripe_url).fetch_payment("pi_x")
    assert exc2.value.status == 401 and not exc2.value.retryable
    assert exc3.value.code == "config" and not exc3.value.retryable


# -- the sync end to end ------------------------------------------------------


def snapshot(engine: Engine) -> dict[str, object]:
    with read_session(engine) as s:
        return {
            "orders": sorted(
                s.execute(
                    select(
                        Order.number,
                        Order.status,
                        Order.payment_status,
                        Order.on_hold,
                        Order.hold_reason,
                        Order.version,
                    )
                ).all()
            ),
            "payments": sorted(s.execute(select(Payment.gateway_ref, Payment.status)).all()),
            "events": s.execute(select(func.count()).select_from(OrderEvent)).scalar_one(),
            "audit": s.execute(select(func.count()).select_from(AuditEntry)).scalar_one(),
        }


def order(engine: Engine, number: str) -> Order:
    with read_session(engine) as s:
        o = s.execute(select(Order).where(Order.number == number)).scalar_one()
        return o


def events(engine: Engine, number: str) -> list[tuple[str, str, str]]:
    with read_session(engine) as s:
        return [
            (e.kind, e.actor, e.message)
            for e in s.execute(
                select(OrderEvent).join(Order).where(Order.number == number).order_by(OrderEvent.id)
            ).scalars()
        ]


async def test_sync_paid_failed_pending_then_paid(
    engine: Engine, admin_desk, clock, customer: Customer, localstripe_url: str
) -> None:
    o_paid = factories.place(admin_desk)
    o_failed = factories.place(admin_desk, lines=(("TEE-M", 1),))
    o_later = factories.place(admin_desk, lines=(("CAP-RED", 1),), currency="USD", country="US")
    svc = PaymentService(Context(engine, factories.ADMIN, clock=clock))
    refs = {}
    for o, card in ((o_paid, None), (o_failed, DECLINED_CARD), (o_later, None)):
        pi = await customer.intent(o.total, o.currency, **({"number": card} if card else {}))
        svc.attach(o.number, gateway="stripe", reference=pi)
        refs[o.number] = pi
    await customer.confirm(refs[o_paid.number])
    await customer.confirm(refs[o_failed.number])

    async with httpx.AsyncClient(timeout=5) as client:
        adapters = {"stripe": StripeAdapter(client, SECRET, localstripe_url)}
        sync = PaymentSync(engine, adapters, clock=clock, policy=RetryPolicy(sleep=no_sleep))
        r1 = await sync.run_once()
        assert r1.ok, r1.errors
        assert order(engine, o_paid.number).status == "processing"
        assert order(engine, o_paid.number).payment_status == "paid"
        assert ("status", "gateway:stripe", "pending → processing") in events(engine, o_paid.number)
        failed = order(engine, o_failed.number)
        assert (failed.status, failed.on_hold, failed.hold_reason) == (
            "pending",
            True,
            "payment failed",
        )
        assert any(
            k == "payment_failed" and a == "gateway:stripe"
            for k, a, _ in events(engine, o_failed.number)
        )
        assert order(engine, o_later.number).status == "pending"

        await customer.confirm(refs[o_later.number])
        r2 = await sync.run_once()
        assert r2.ok, r2.errors
        assert [c.order for c in r2.changed] == [o_later.number]
        assert order(engine, o_later.number).status == "processing"

        before = snapshot(engine)
        r3 = await sync.run_once()
        assert r3.ok and r3.changed == []
        assert snapshot(engine) == before


async def test_payment_unknown_at_the_gateway_is_reported_not_failed(
    engine: Engine, admin_desk, clock, localstripe_url: str
) -> None:
    o = factories.place(admin_desk)
    svc = PaymentService(Context(engine, factories.ADMIN, clock=clock))
    svc.attach(o.number, gateway="stripe", reference="pi_never_created_here")
    async with httpx.AsyncClient(timeout=5) as client:
        adapters = {"stripe": StripeAdapter(client, SECRET, localstripe_url)}
        sync = PaymentSync(engine, adapters, clock=clock, policy=RetryPolicy(sleep=no_sleep))
        before = snapshot(engine)
        report = await sync.run_once()
    assert report.ok, report.errors
    assert report.gateways[0].unknown == ["pi_never_created_here"]
    assert snapshot(engine) == before
    assert order(engine, o.number).status == "pending"


async def test_sync_sends_an_approved_refund_once_and_settles_it(
    engine: Engine, admin_desk, clock, customer: Customer, localstripe_url: str
) -> None:
    """A refund approved but never sent (its screen closed, the process died)
    is sent by the next sync, once; the run after that changes nothing."""
    from pulse_tui.services.refunds import RefundRequest, RefundService
    from pulse_tui.storage.models import Refund

    o = factories.place(admin_desk)
    svc = PaymentService(Context(engine, factories.ADMIN, clock=clock))
    pi = await customer.intent(o.total, o.currency)
    svc.attach(o.number, gateway="stripe", reference=pi)
    await customer.confirm(pi)
    async with httpx.AsyncClient(timeout=5) as client:
        stripe = StripeAdapter(client, SECRET, localstripe_url)
        sync = PaymentSync(
            engine, {"stripe": stripe}, clock=clock, policy=RetryPolicy(sleep=no_sleep)
        )
        assert (await sync.run_once()).ok
        refund = RefundService(admin_desk.ctx).create(
            o.number, RefundRequest(reason="damaged", amount=500)
        )
        assert refund.status == "approved"
        first = await sync.run_once()
        assert first.ok, first.errors
        assert first.gateways[0].refunds_updated == 1
        before = snapshot(engine)
        second = await sync.run_once()
        assert second.ok and second.gateways[0].refunds_updated == 0
        assert snapshot(engine) == before
        assert [r.amount for r in await stripe.list_refunds(pi)] == [500]
    with read_session(engine) as s:
        row = s.execute(select(Refund)).scalar_one()
        assert (row.status, row.gateway_ref is not None) == ("succeeded", True)
        audit = s.execute(select(AuditEntry.action).where(AuditEntry.entity == "refund")).scalars()
        assert list(audit) == ["refund.create", "refund.succeeded"]
    assert order(engine, o.number).refunded == 500
    assert order(engine, o.number).payment_status == "partially_refunded"
    assert any(k == "refund_succeeded" for k, _, _ in events(engine, o.number))
