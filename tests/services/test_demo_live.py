"""The live demo: localstripe started by demo_live, intents for pending orders,
the pretend customer confirming them, and the sync turning them to processing."""

from __future__ import annotations

import asyncio

import httpx

from pulse_tui.gateways.stripe import StripeAdapter
from pulse_tui.gateways.sync import RetryPolicy
from pulse_tui.services import demo_live
from pulse_tui.services.payment_sync import PaymentSync
from tests import factories


async def _no_sleep(_s: float) -> None:
    return None


def test_live_demo_pays_pending_orders_through_localstripe(engine, admin_desk) -> None:
    for _ in range(4):
        factories.place(admin_desk)
    with demo_live.LocalStripe() as server:
        customer = demo_live.Customer(server.url)
        try:
            intents = demo_live.create_intents(engine, customer, count=4, seed=1)
            assert len(intents) == 4
            # a second call finds every pending order already attached
            assert demo_live.create_intents(engine, customer, count=4) == []
            confirmer = demo_live.Confirmer(
                customer, intents, over=1, keep_pending=1, sleep=lambda _s: False
            )
            confirmer.run()  # in this thread: deterministic
            assert len(confirmer.confirmed) == 3

            async def sync_once():  # type: ignore[no-untyped-def]
                async with httpx.AsyncClient(timeout=5) as client:
                    adapters = {"stripe": StripeAdapter(client, demo_live.SECRET, server.url)}
                    return await PaymentSync(
                        engine, adapters, policy=RetryPolicy(sleep=_no_sleep)
                    ).run_once()

            report = asyncio.run(sync_once())
        finally:
            customer.close()
    assert report.ok, report.errors
    by_number = {i.order: i for i in intents}
    for number, intent in by_number.items():
        o = admin_desk.orders.detail(number).order
        if intent.ref not in confirmer.confirmed:
            assert (o.status, o.on_hold) == ("pending", False)
        elif intent.declines:
            assert (o.status, o.hold_reason) == ("pending", "payment failed")
        else:
            assert (o.status, o.payment_status) == ("processing", "paid")


def test_rehomed_card_payments_refund_for_real_at_localstripe(engine, admin_desk) -> None:
    """The demo's newest card payments get real intents, so a refund from the
    desk moves money at localstripe (exactly one refund there)."""
    from pulse_tui.services.refunds import RefundRequest

    old = factories.place(admin_desk)
    admin_desk.orders.confirm_payment(
        old.number, gateway="stripe", method="card", reference="pi_x1"
    )
    new = factories.place(admin_desk)
    admin_desk.orders.confirm_payment(
        new.number, gateway="stripe", method="card", reference="pi_x2"
    )
    with demo_live.LocalStripe() as server:
        customer = demo_live.Customer(server.url)
        try:
            assert demo_live.rehome_card_payments(engine, customer, count=1) == [new.number]
            (payment,) = admin_desk.orders.detail(new.number).payments
            assert payment.gateway_ref and payment.gateway_ref.startswith("pi_")
            assert payment.gateway_ref != "pi_x2"
            assert admin_desk.orders.detail(old.number).payments[0].gateway_ref == "pi_x1"

            async def refund_and_count():  # type: ignore[no-untyped-def]
                async with httpx.AsyncClient(timeout=5) as client:
                    stripe = StripeAdapter(client, demo_live.SECRET, server.url)
                    r = admin_desk.refunds.create(
                        new.number, RefundRequest(reason="damaged", amount=300)
                    )
                    done = await admin_desk.refunds.execute(r.id, {"stripe": stripe})
                    return done, await stripe.list_refunds(str(payment.gateway_ref))

            done, at_gateway = asyncio.run(refund_and_count())
        finally:
            customer.close()
    assert done.status == "succeeded"
    assert [r.amount for r in at_gateway] == [300]
    assert admin_desk.orders.detail(new.number).order.payment_status == "partially_refunded"


def test_desk_examples_fill_the_approvals_queue_and_the_returns(engine, admin_desk) -> None:
    from pulse_tui.config import Settings

    settings = Settings(database_url="sqlite://", refund_limit_minor=1_000)
    numbers = []
    for _ in range(3):
        o = factories.place(admin_desk)
        admin_desk.orders.confirm_payment(o.number, gateway="bank_transfer", method="bank_transfer")
        numbers.append(o.number)
    admin_desk.orders.ship(numbers[2], carrier="DHL", tracking="JD9")
    admin_desk.orders.deliver(numbers[2])
    small = factories.place(admin_desk, lines=(("EBOOK-PY", 1),), shipping=0)
    assert demo_live.add_desk_examples(engine, settings, [small.number, *numbers]) == (2, 1)
    waiting = admin_desk.refunds.list_refunds(status="requested")
    assert sorted(r.order_number for r in waiting) == sorted(numbers[:2])
    assert {r.created_by for r in waiting} == {"amara"}
    (ret,) = admin_desk.returns.list_returns(status="requested")
    assert ret.order_number == numbers[2]
