"""Refunds against a real localstripe server: money moves exactly once.

localstripe keeps no idempotency of its own (it ignores Idempotency-Key), so
every create call it receives is a refund: counting the refunds it holds for
a PaymentIntent proves how many times we really sent one.

Orders are placed and paid through the services (the customer confirms a
PaymentIntent at localstripe; PaymentService.apply records it as the sync
does); only the two-payment order needs a commented direct setup.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import Engine, select

from pulse_tui.config import Settings
from pulse_tui.domain.refunds import LinePick, line_values
from pulse_tui.gateways.base import RefundInfo
from pulse_tui.gateways.stripe import StripeAdapter
from pulse_tui.gateways.sync import RetryPolicy
from pulse_tui.services.context import SYSTEM, Context
from pulse_tui.services.desk import Desk
from pulse_tui.services.errors import Conflict, Denied, InvalidInput, RuleViolation
from pulse_tui.services.payment_sync import PaymentSync
from pulse_tui.services.payments import Outcome, PaymentService
from pulse_tui.services.refunds import RefundRequest, RefundService
from pulse_tui.storage.db import make_engine, write_session
from pulse_tui.storage.models import Order, Payment
from tests import factories
from tests import refund_support as rs
from tests.gateways.conftest import DECLINED_CARD, SECRET, Customer

pytestmark = pytest.mark.anyio

LIMIT = 10_000


@pytest.fixture
async def stripe(localstripe_url: str) -> AsyncIterator[StripeAdapter]:
    async with httpx.AsyncClient(timeout=5) as client:
        yield StripeAdapter(client, SECRET, localstripe_url)


def desk(engine: Engine, clock, actor=factories.AGENT, limit: int = LIMIT) -> Desk:
    return Desk(engine, actor, Settings(database_url="sqlite://", refund_limit_minor=limit), clock)


@pytest.fixture
def admin(engine: Engine, clock) -> Desk:
    return desk(engine, clock, factories.ADMIN)


@pytest.fixture
def agent(engine: Engine, clock) -> Desk:
    return desk(engine, clock, factories.AGENT)


async def pay(
    admin: Desk,
    customer: Customer,
    stripe: StripeAdapter,
    lines=(("MUG-BLUE", 2), ("TEE-M", 1)),
    **kw,
) -> tuple[str, str]:
    """A processing order paid by card at localstripe. Returns (number, pi)."""
    o = rs.place(admin, lines, **kw)
    pi = await customer.intent(o.total, o.currency)
    PaymentService(admin.ctx).attach(o.number, gateway="stripe", reference=pi)
    assert (await customer.confirm(pi)).status_code == 200
    sync_ctx = Context(admin.engine, SYSTEM, clock=admin.ctx.clock)
    assert PaymentService(sync_ctx).apply(await stripe.fetch_payment(pi)).outcome == Outcome.PAID
    return o.number, pi


async def at_gateway(stripe: StripeAdapter, pi: str) -> list[RefundInfo]:
    return await stripe.list_refunds(pi)


def amount(value: int, **kw) -> RefundRequest:
    return RefundRequest(reason="customer_request", amount=value, **kw)


def ids(engine: Engine, number: str) -> dict[str, int]:
    return {sku: int(ln.id or 0) for sku, ln in rs.lines(engine, number).items()}


def alloc(value: int, done: int, k: int, n: int) -> int:
    """Cumulative half-up allocation of ``value`` over ``n`` units, in integers."""

    def upto(j: int) -> int:
        return (2 * value * j + n) // (2 * n)

    return upto(done + k) - upto(done)


# -- full, partial, multi-line, multi-payment ----------------------------------------------


async def test_full_refund(engine, admin, agent, customer, stripe) -> None:
    number, pi = await pay(admin, customer, stripe)
    o = rs.order(engine, number)
    line = ids(engine, number)
    request = RefundRequest(
        "damaged",
        lines=[LinePick(line["MUG-BLUE"], 2), LinePick(line["TEE-M"], 1)],
        include_shipping=True,
    )
    quote = agent.refunds.preview(number, request)
    assert quote.amount == o.total == o.paid
    refund = agent.refunds.create(number, request)
    done = await agent.refunds.execute(refund.id, {"stripe": stripe})
    assert done.status == "succeeded" and done.gateway_ref.startswith("re_")

    held = await at_gateway(stripe, pi)
    assert [(r.ref, r.amount, r.refund_id, r.status) for r in held] == [
        (done.gateway_ref, o.total, str(refund.id), "succeeded")
    ]
    after = rs.order(engine, number)
    assert (after.status, after.payment_status, after.refunded) == ("refunded", "refunded", o.total)
    p = rs.payments(engine, number)[0]
    assert (p.refunded, p.status) == (o.total, "refunded")
    assert [ln.qty_refunded for ln in rs.lines(engine, number).values()] == [2, 1]
    kinds = rs.event_kinds(engine, number)
    assert kinds[-5:] == [
        "refund_requested",
        "refund_approved",
        "refund_sent",
        "refund_succeeded",
        "status",
    ]
    assert rs.refund_audit(engine) == ["refund.create", "refund.succeeded"]

    # executing again, or recovering, sends nothing more
    before = rs.footprint(engine)
    assert (await agent.refunds.execute(refund.id, {"stripe": stripe})).status == "succeeded"
    assert await RefundService(admin.ctx).recover({"stripe": stripe}, grace=timedelta(0)) == []
    assert rs.footprint(engine) == before
    assert len(await at_gateway(stripe, pi)) == 1
    with pytest.raises(RuleViolation, match="nothing is left to refund"):
        agent.refunds.preview(number, amount(1))


async def test_partial_refunds(engine, admin, agent, customer, stripe) -> None:
    number, pi = await pay(admin, customer, stripe)
    total = rs.order(engine, number).total
    first = agent.refunds.create(number, amount(1000))
    assert (await agent.refunds.execute(first.id, {"stripe": stripe})).status == "succeeded"
    o = rs.order(engine, number)
    assert (o.status, o.payment_status, o.refunded) == ("processing", "partially_refunded", 1000)
    assert rs.payments(engine, number)[0].status == "partially_refunded"

    second = agent.refunds.create(number, amount(total - 1000))
    await agent.refunds.execute(second.id, {"stripe": stripe})
    held = await at_gateway(stripe, pi)
    assert sorted(r.amount for r in held) == sorted([1000, total - 1000])
    assert {r.refund_id for r in held} == {str(first.id), str(second.id)}
    o = rs.order(engine, number)
    assert (o.status, o.payment_status, o.refunded) == ("refunded", "refunded", total)


async def test_multi_line_refund_with_tax_share_and_restock(
    engine, admin, agent, customer, stripe
) -> None:
    number, pi = await pay(
        admin, customer, stripe, lines=(("MUG-BLUE", 3), ("TEE-M", 2)), discount=101
    )
    admin.orders.ship(number, carrier="DHL", tracking="JD0001")
    mug_stock, tee_stock = rs.stock(engine, "MUG-BLUE"), rs.stock(engine, "TEE-M")
    lines = rs.lines(engine, number)
    mug, tee = lines["MUG-BLUE"], lines["TEE-M"]
    values = line_values([mug.line_total, tee.line_total], 101)
    line = ids(engine, number)

    request = RefundRequest(
        "damaged",
        lines=[LinePick(line["MUG-BLUE"], 2, restock=True), LinePick(line["TEE-M"], 1)],
    )
    quote = agent.refunds.preview(number, request)
    expected = [
        ("MUG-BLUE", 2, alloc(values[0], 0, 2, 3), alloc(mug.tax, 0, 2, 3), True),
        ("TEE-M", 1, alloc(values[1], 0, 1, 2), alloc(tee.tax, 0, 1, 2), False),
    ]
    assert [(q.sku, q.quantity, q.amount, q.tax, q.restock) for q in quote.lines] == expected
    assert quote.tax == expected[0][3] + expected[1][3] > 0
    assert quote.amount == expected[0][2] + expected[1][2] and quote.shipping == 0

    first = agent.refunds.create(number, request)
    assert (await agent.refunds.execute(first.id, {"stripe": stripe})).status == "succeeded"
    # shipped goods asked back to the shelf: on hand again; the rest not
    assert rs.stock(engine, "MUG-BLUE") == (mug_stock[0] + 2, mug_stock[1])
    assert rs.stock(engine, "TEE-M") == tee_stock
    lines = rs.lines(engine, number)
    assert (lines["MUG-BLUE"].qty_refunded, lines["TEE-M"].qty_refunded) == (2, 1)
    opts = agent.refunds.options(number)
    assert [ln.refundable for ln in opts.lines] == [1, 1]

    with pytest.raises(RuleViolation, match="MUG-BLUE: only 1 of 3 left to refund, asked 2"):
        agent.refunds.preview(
            number, RefundRequest("damaged", lines=[LinePick(line["MUG-BLUE"], 2)])
        )

    rest = RefundRequest(
        "damaged",
        lines=[LinePick(line["MUG-BLUE"], 1, True), LinePick(line["TEE-M"], 1, True)],
        include_shipping=True,
    )
    second = agent.refunds.create(number, rest)
    await agent.refunds.execute(second.id, {"stripe": stripe})
    o = rs.order(engine, number)
    # every unit and the shipping: exactly the total, across two refunds
    assert first.amount + second.amount == o.total == o.refunded
    assert (o.status, o.payment_status) == ("refunded", "refunded")
    assert rs.stock(engine, "MUG-BLUE") == (mug_stock[0] + 3, mug_stock[1])
    assert rs.stock(engine, "TEE-M") == (tee_stock[0] + 1, tee_stock[1])
    assert sorted(r.amount for r in await at_gateway(stripe, pi)) == sorted(
        [first.amount, second.amount]
    )


async def test_two_payments_each_refunded_within_its_own(
    engine, admin, agent, customer, stripe
) -> None:
    o = rs.place(admin, (("TEE-M", 2),))
    part = 2000
    pi_a = await customer.intent(part, "EUR")
    pi_b = await customer.intent(o.total - part, "EUR")
    pays = PaymentService(admin.ctx)
    pays.attach(o.number, gateway="stripe", reference=pi_a)
    pays.attach(o.number, gateway="stripe", reference=pi_b)
    for pi in (pi_a, pi_b):
        assert (await customer.confirm(pi)).status_code == 200
    # Direct setup: the services take one payment per order (a payment must
    # match the whole amount due), so a split payment cannot be made through
    # them yet. Both PaymentIntents are real and captured at localstripe; here
    # each row gets its captured part and the order is paid by the two.
    with write_session(engine) as s:
        rows = {
            p.gateway_ref: p
            for p in s.execute(select(Payment).where(Payment.order_id == o.id)).scalars()
        }
        for ref, captured in ((pi_a, part), (pi_b, o.total - part)):
            rows[ref].status, rows[ref].amount, rows[ref].captured = "paid", captured, captured
        order = s.get(Order, o.id)
        order.paid, order.payment_status, order.status = o.total, "paid", "processing"
    pay_a, pay_b = (p.id for p in rs.payments(engine, o.number))

    opts = agent.refunds.options(o.number)
    assert [(p.payment_id, p.captured, p.refundable) for p in opts.payments] == [
        (pay_a, part, part),
        (pay_b, o.total - part, o.total - part),
    ]
    before = rs.footprint(engine)
    with pytest.raises(InvalidInput, match=r"has 2 payments \(#\d+, #\d+\): choose which one"):
        agent.refunds.create(o.number, amount(100))
    with pytest.raises(RuleViolation, match=r"at most €20\.00 can be refunded"):
        agent.refunds.create(o.number, amount(part + 1, payment_id=pay_a))
    assert rs.footprint(engine) == before

    ra = agent.refunds.create(o.number, amount(part, payment_id=pay_a))
    await agent.refunds.execute(ra.id, {"stripe": stripe})
    assert [r.amount for r in await at_gateway(stripe, pi_a)] == [part]
    assert await at_gateway(stripe, pi_b) == []
    a, b = rs.payments(engine, o.number)
    assert (a.refunded, a.status, b.refunded, b.status) == (part, "refunded", 0, "paid")
    assert rs.order(engine, o.number).payment_status == "partially_refunded"
    # payment A is spent: with one payment left open it needs no naming
    with pytest.raises(RuleViolation, match="nothing is left to refund"):
        agent.refunds.preview(o.number, amount(1, payment_id=pay_a))
    rb = agent.refunds.create(o.number, amount(o.total - part))
    assert rb.payment_id == pay_b
    await agent.refunds.execute(rb.id, {"stripe": stripe})
    assert [r.amount for r in await at_gateway(stripe, pi_b)] == [o.total - part]
    after = rs.order(engine, o.number)
    assert (after.refunded, after.payment_status, after.status) == (o.total, "refunded", "refunded")


async def test_over_refund_is_refused_and_nothing_is_written(
    engine, admin, agent, customer, stripe
) -> None:
    number, pi = await pay(admin, customer, stripe, lines=(("MUG-BLUE", 2),))  # €34.70
    before = rs.footprint(engine)
    for request in (
        amount(3471),
        RefundRequest("damaged", lines=[LinePick(ids(engine, number)["MUG-BLUE"], 3)]),
    ):
        with pytest.raises(RuleViolation) as preview_exc:
            agent.refunds.preview(number, request)
        with pytest.raises(RuleViolation) as create_exc:
            agent.refunds.create(number, request)
        assert str(preview_exc.value) == str(create_exc.value)
    assert str(preview_exc.value).endswith("only 2 of 2 left to refund, asked 3")
    assert rs.footprint(engine) == before
    # after a partial refund only the rest may go
    r = agent.refunds.create(number, amount(3000))
    await agent.refunds.execute(r.id, {"stripe": stripe})
    before = rs.footprint(engine)
    with pytest.raises(RuleViolation, match=r"at most €4\.70 can be refunded, asked €4\.71"):
        agent.refunds.create(number, amount(471))
    assert rs.footprint(engine) == before
    assert [x.amount for x in await at_gateway(stripe, pi)] == [3000]


# -- crashes, timeouts, refusals -------------------------------------------------------------


async def test_crash_after_the_gateway_accepted_is_recovered_once(
    engine, admin, agent, customer, stripe, monkeypatch
) -> None:
    number, pi = await pay(admin, customer, stripe)
    total = rs.order(engine, number).total
    refund = agent.refunds.create(number, amount(total))
    real_record = RefundService.record
    crashes = [1]

    def crash_once(self, info):
        if crashes:
            crashes.pop()
            raise RuntimeError("process killed before the commit")
        return real_record(self, info)

    monkeypatch.setattr(RefundService, "record", crash_once)
    with pytest.raises(RuntimeError, match="killed"):
        await agent.refunds.execute(refund.id, {"stripe": stripe})
    row = rs.refund(engine, refund.id)
    assert (row.status, row.gateway_ref) == ("pending", None)
    assert len(await at_gateway(stripe, pi)) == 1  # the gateway did refund
    assert rs.order(engine, number).refunded == 0

    # a second click while it is pending sends nothing
    assert (await agent.refunds.execute(refund.id, {"stripe": stripe})).status == "pending"
    assert len(await at_gateway(stripe, pi)) == 1

    touched = await RefundService(admin.ctx).recover({"stripe": stripe}, grace=timedelta(0))
    assert touched == [refund.id]
    held = await at_gateway(stripe, pi)
    assert len(held) == 1
    row = rs.refund(engine, refund.id)
    assert (row.status, row.gateway_ref) == ("succeeded", held[0].ref)
    o = rs.order(engine, number)
    assert (o.refunded, o.payment_status, o.status) == (total, "refunded", "refunded")
    assert await RefundService(admin.ctx).recover({"stripe": stripe}, grace=timedelta(0)) == []
    assert len(await at_gateway(stripe, pi)) == 1


@pytest.mark.parametrize("status", [None, 502], ids=["timeout", "bad-gateway"])
async def test_lost_answer_is_looked_up_never_doubled(
    engine, admin, agent, customer, stripe, status
) -> None:
    number, pi = await pay(admin, customer, stripe)
    refund = agent.refunds.create(number, amount(1500))
    flaky = rs.TimeoutAfterCall(stripe, status=status)
    row = await agent.refunds.execute(refund.id, {"stripe": flaky})
    assert (row.status, row.gateway_ref) == ("pending", None)
    assert row.failure_reason  # what went wrong is kept for the screen
    assert "refund_unknown" in rs.event_kinds(engine, number)
    assert len(await at_gateway(stripe, pi)) == 1

    await RefundService(admin.ctx).recover({"stripe": flaky}, grace=timedelta(0))
    assert len(flaky.calls) == 1  # looked up, not sent again
    held = await at_gateway(stripe, pi)
    assert [r.amount for r in held] == [1500]
    row = rs.refund(engine, refund.id)
    assert (row.status, row.gateway_ref, row.failure_reason) == ("succeeded", held[0].ref, None)
    assert rs.order(engine, number).refunded == 1500


async def test_request_that_never_arrived_is_resent_with_the_same_key(
    engine, admin, agent, customer, stripe
) -> None:
    number, pi = await pay(admin, customer, stripe)
    refund = agent.refunds.create(number, amount(1500))
    flaky = rs.TimeoutBeforeCall(stripe)
    assert (await agent.refunds.execute(refund.id, {"stripe": flaky})).status == "pending"
    assert await at_gateway(stripe, pi) == []

    svc = RefundService(admin.ctx)
    # a claim younger than the grace period may still be in flight: left alone
    assert await svc.recover({"stripe": flaky}, grace=timedelta(days=1)) == []
    assert len(flaky.calls) == 1 and await at_gateway(stripe, pi) == []

    assert await svc.recover({"stripe": flaky}, grace=timedelta(0)) == [refund.id]
    assert [c.key for c in flaky.calls] == [refund.idempotency_key] * 2
    held = await at_gateway(stripe, pi)
    assert [(r.amount, r.refund_id) for r in held] == [(1500, str(refund.id))]
    assert rs.refund(engine, refund.id).status == "succeeded"
    assert await svc.recover({"stripe": flaky}, grace=timedelta(0)) == []
    assert len(await at_gateway(stripe, pi)) == 1


async def test_a_refusal_fails_and_retry_makes_a_new_attempt(
    engine, admin, agent, customer, stripe
) -> None:
    number, pi = await pay(admin, customer, stripe)
    # a PaymentIntent whose charge was declined: localstripe refuses its refunds
    declined = await customer.intent(500, "EUR", number=DECLINED_CARD)
    assert (await customer.confirm(declined)).status_code == 402
    refund = agent.refunds.create(number, amount(1200))
    refusing = rs.Redirected(stripe, declined)
    failed = await agent.refunds.execute(refund.id, {"stripe": refusing})
    assert failed.status == "failed"
    assert failed.failure_reason == "stripe HTTP 400: Cannot refund a failed payment."
    assert "refund_failed" in rs.event_kinds(engine, number)
    assert rs.order(engine, number).refunded == 0
    assert await at_gateway(stripe, pi) == []
    # failed is final for recovery: only an operator's retry sends again
    assert await RefundService(admin.ctx).recover({"stripe": refusing}, grace=timedelta(0)) == []

    assert agent.refunds.retry(refund.id).attempt == 2
    done = await agent.refunds.execute(refund.id, {"stripe": refusing})
    assert done.status == "succeeded"
    assert [c.key for c in refusing.calls] == [
        refund.idempotency_key,
        f"{refund.idempotency_key}:2",
    ]
    assert [r.amount for r in await at_gateway(stripe, pi)] == [1200]
    assert rs.order(engine, number).refunded == 1200


# -- double submits ------------------------------------------------------------------------


def run_together(*fns):
    """Run each function in its own thread, released at the same moment."""
    barrier = threading.Barrier(len(fns))
    results: list[object] = [None] * len(fns)

    def runner(i, fn):
        barrier.wait()
        try:
            results[i] = fn()
        except Exception as exc:  # noqa: BLE001 - the caller inspects it
            results[i] = exc

    threads = [threading.Thread(target=runner, args=(i, fn)) for i, fn in enumerate(fns)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return results


def own_desk(engine: Engine, actor=factories.AGENT) -> tuple[Desk, Engine]:
    """A desk on its own engine (its own connections), as a second process would have."""
    eng = make_engine(str(engine.url))
    return desk(eng, factories.FrozenClock(), actor), eng


async def test_two_operators_submitting_at_once_make_one_refund(
    engine, admin, customer, stripe
) -> None:
    number, pi = await pay(admin, customer, stripe)
    version = rs.order(engine, number).version
    (d1, e1), (d2, e2) = own_desk(engine), own_desk(engine)
    try:
        results = await asyncio.to_thread(
            run_together,
            lambda: d1.refunds.create(number, amount(1000), expected_version=version),
            lambda: d2.refunds.create(number, amount(1000), expected_version=version),
        )
    finally:
        e1.dispose()
        e2.dispose()
    made = [r for r in results if not isinstance(r, Exception)]
    errors = [r for r in results if isinstance(r, Exception)]
    assert len(made) == 1 and len(errors) == 1, results
    assert isinstance(errors[0], Conflict)
    assert "changed by someone else" in str(errors[0])
    assert [r.id for r in rs.refunds(engine, number)] == [made[0].id]
    await admin.refunds.execute(made[0].id, {"stripe": stripe})
    assert len(await at_gateway(stripe, pi)) == 1


async def test_the_same_key_twice_at_once_makes_one_refund(engine, admin, customer, stripe) -> None:
    number, pi = await pay(admin, customer, stripe)
    (d1, e1), (d2, e2) = own_desk(engine), own_desk(engine)
    try:
        results = await asyncio.to_thread(
            run_together,
            lambda: d1.refunds.create(number, amount(1000), idempotency_key="enter-enter"),
            lambda: d2.refunds.create(number, amount(1000), idempotency_key="enter-enter"),
        )
    finally:
        e1.dispose()
        e2.dispose()
    assert not any(isinstance(r, Exception) for r in results), results
    assert results[0].id == results[1].id
    assert len(rs.refunds(engine, number)) == 1
    for r in results:
        await admin.refunds.execute(r.id, {"stripe": stripe})
    assert len(await at_gateway(stripe, pi)) == 1
    assert rs.order(engine, number).refunded == 1000


async def test_two_executes_at_once_send_once(
    engine, admin, agent, customer, stripe, localstripe_url
) -> None:
    number, pi = await pay(admin, customer, stripe)
    # two screens of one process (one event loop)
    r1 = agent.refunds.create(number, amount(700))
    slow = rs.Slow(stripe, 0.2)
    got = await asyncio.gather(
        agent.refunds.execute(r1.id, {"stripe": slow}),
        agent.refunds.execute(r1.id, {"stripe": slow}),
    )
    assert len(slow.calls) == 1
    assert sorted(g.status for g in got) == ["pending", "succeeded"]
    assert rs.refund(engine, r1.id).status == "succeeded"

    # two processes (own engines, own event loops, own HTTP clients)
    r2 = agent.refunds.create(number, amount(800))
    sent: list[rs.Call] = []

    def execute_elsewhere():
        d, eng = own_desk(engine)

        async def go():
            async with httpx.AsyncClient(timeout=5) as client:
                adapter = rs.Slow(StripeAdapter(client, SECRET, localstripe_url), 0.2)
                try:
                    return await d.refunds.execute(r2.id, {"stripe": adapter})
                finally:
                    sent.extend(adapter.calls)

        try:
            return asyncio.run(go())
        finally:
            eng.dispose()

    results = await asyncio.to_thread(run_together, execute_elsewhere, execute_elsewhere)
    assert not any(isinstance(r, Exception) for r in results), results
    assert len(sent) == 1
    assert rs.refund(engine, r2.id).status == "succeeded"
    assert sorted(r.amount for r in await at_gateway(stripe, pi)) == [700, 800]
    assert rs.order(engine, number).refunded == 1500


# -- approval and the cancel path ------------------------------------------------------------


async def test_large_refund_waits_for_an_admin_then_executes(
    engine, admin, agent, customer, stripe
) -> None:
    number, pi = await pay(admin, customer, stripe, lines=(("TEE-M", 8),))
    refund = agent.refunds.create(number, amount(LIMIT + 1))
    assert refund.status == "requested"
    with pytest.raises(RuleViolation, match="waits for an admin's approval"):
        await agent.refunds.execute(refund.id, {"stripe": stripe})
    with pytest.raises(Denied):
        agent.refunds.approve(refund.id)
    assert await RefundService(admin.ctx).recover({"stripe": stripe}, grace=timedelta(0)) == []
    assert await at_gateway(stripe, pi) == []

    admin.refunds.approve(refund.id)
    assert (await agent.refunds.execute(refund.id, {"stripe": stripe})).status == "succeeded"
    assert [r.amount for r in await at_gateway(stripe, pi)] == [LIMIT + 1]

    direct = admin.refunds.create(number, amount(LIMIT + 2), approve=True)
    assert (direct.status, direct.approved_by) == ("approved", "ada")
    await admin.refunds.execute(direct.id, {"stripe": stripe})
    assert sorted(r.amount for r in await at_gateway(stripe, pi)) == [LIMIT + 1, LIMIT + 2]


async def test_cancelling_a_paid_order_refunds_it_once(
    engine, admin, agent, customer, stripe
) -> None:
    number, pi = await pay(admin, customer, stripe)
    total = rs.order(engine, number).total
    agent.orders.cancel(number, reason="customer_request", note="changed their mind")
    # the door that cancelled sends what the cancel made
    for r in agent.refunds.list_refunds(order_ref=number, status="approved"):
        assert r.reason == "order_cancelled"
        await agent.refunds.execute(r.id, {"stripe": stripe})
    held = await at_gateway(stripe, pi)
    assert [r.amount for r in held] == [total]
    o = rs.order(engine, number)
    assert (o.status, o.payment_status, o.refunded) == ("cancelled", "refunded", total)
    # nothing is left for the sync's recovery to send
    assert await RefundService(admin.ctx).recover({"stripe": stripe}, grace=timedelta(0)) == []
    assert len(await at_gateway(stripe, pi)) == 1
    assert [r.status for r in agent.refunds.list_refunds(order_ref=number)] == ["succeeded"]


# -- the payment sync ------------------------------------------------------------------------


async def no_sleep(_s: float) -> None:
    return None


async def test_the_payment_sync_recovers_and_settles_refunds(
    engine, admin, agent, clock, customer, stripe, monkeypatch
) -> None:
    sync = PaymentSync(engine, {"stripe": stripe}, clock=clock, policy=RetryPolicy(sleep=no_sleep))
    # 1. a crash between the gateway's answer and our commit
    crashed, pi1 = await pay(admin, customer, stripe)
    r1 = agent.refunds.create(crashed, amount(1100))
    real_record = RefundService.record
    crashes = [1]

    def crash_once(self, info):
        if crashes:
            crashes.pop()
            raise RuntimeError("killed")
        return real_record(self, info)

    monkeypatch.setattr(RefundService, "record", crash_once)
    with pytest.raises(RuntimeError):
        await agent.refunds.execute(r1.id, {"stripe": stripe})
    # 2. approved, but the screen closed before sending
    unsent, pi2 = await pay(admin, customer, stripe)
    r2 = agent.refunds.create(unsent, amount(1200))
    # 3. the gateway took it but reported it pending; it settles later
    settling, pi3 = await pay(admin, customer, stripe)
    r3 = agent.refunds.create(settling, amount(1300))
    row3 = await agent.refunds.execute(r3.id, {"stripe": rs.AnswersPending(stripe)})
    assert (row3.status, row3.gateway_ref is not None) == ("pending", True)
    assert rs.order(engine, settling).refunded == 0

    clock.t += timedelta(hours=1)  # past the resend grace
    report = await sync.run_once()
    assert report.ok, report.errors
    for number, pi, r, value in (
        (crashed, pi1, r1, 1100),
        (unsent, pi2, r2, 1200),
        (settling, pi3, r3, 1300),
    ):
        assert [x.amount for x in await at_gateway(stripe, pi)] == [value], number
        assert rs.refund(engine, r.id).status == "succeeded", number
        o = rs.order(engine, number)
        assert (o.refunded, o.payment_status) == (value, "partially_refunded"), number
        p = rs.payments(engine, number)[0]
        assert (p.refunded, p.status) == (value, "partially_refunded"), number

    before = rs.footprint(engine)
    again = await sync.run_once()
    assert again.ok and again.gateways[0].refunds_updated == 0
    assert rs.footprint(engine) == before
    for pi in (pi1, pi2, pi3):
        assert len(await at_gateway(stripe, pi)) == 1
