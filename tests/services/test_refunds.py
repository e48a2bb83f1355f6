"""RefundService without a server: options, preview, create, approval, roles,
hand-paid (manual) refunds, the cancel path, and the exactly-once protocol
against an in-memory gateway that, like localstripe, never deduplicates.

The same protocol against a real localstripe server:
tests/gateways/test_refunds_localstripe.py."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import Engine

from pulse_tui.config import Settings
from pulse_tui.domain.refunds import LinePick, line_values
from pulse_tui.services.desk import Desk
from pulse_tui.services.errors import Conflict, Denied, InvalidInput, NotFound, RuleViolation
from pulse_tui.services.refunds import RefundRequest, RefundService
from tests import factories
from tests import refund_support as rs

LIMIT = 10_000


def settings(limit: int = LIMIT) -> Settings:
    return Settings(database_url="sqlite://", refund_limit_minor=limit)


@pytest.fixture
def admin(engine: Engine, clock) -> Desk:
    return Desk(engine, factories.ADMIN, settings(), clock)


@pytest.fixture
def agent(engine: Engine, clock) -> Desk:
    return Desk(engine, factories.AGENT, settings(), clock)


def desk_as(engine: Engine, clock, actor) -> Desk:
    return Desk(engine, actor, settings(), clock)


def paid(admin: Desk, lines=(("MUG-BLUE", 2), ("TEE-M", 1)), gateway="manual", **kw) -> str:
    """A processing order paid by hand (bank transfer) or, with ``gateway``, at a
    gateway under the reference pay_<number>."""
    o = rs.place(admin, lines=lines, **kw)
    if gateway == "manual":
        admin.orders.confirm_payment(o.number)
    else:
        admin.orders.confirm_payment(
            o.number, gateway=gateway, method="card", reference=f"pay_{o.number}"
        )
    return o.number


def line_ids(engine: Engine, number: str) -> dict[str, int]:
    return {sku: int(ln.id or 0) for sku, ln in rs.lines(engine, number).items()}


def amount(value: int, reason: str = "customer_request", **kw) -> RefundRequest:
    return RefundRequest(reason=reason, amount=value, **kw)


# -- reading ----------------------------------------------------------------------


def test_options_show_what_may_be_refunded(engine, admin, agent) -> None:
    number = paid(admin)
    o = rs.order(engine, number)
    opts = agent.refunds.options(number)
    assert (opts.number, opts.currency, opts.status, opts.version) == (
        number,
        "EUR",
        "processing",
        o.version,
    )
    assert opts.refundable == o.paid == o.total
    assert opts.shipping_refundable == 495
    assert [(ln.sku, ln.quantity, ln.refundable, ln.physical) for ln in opts.lines] == [
        ("MUG-BLUE", 2, 2, True),
        ("TEE-M", 1, 1, True),
    ]
    assert [ln.unit_value for ln in opts.lines] == [2975 // 2, 2975]
    assert [(p.gateway, p.captured, p.refundable) for p in opts.payments] == [
        ("manual", o.total, o.total)
    ]
    assert (opts.limit, opts.may_approve) == (LIMIT, False)
    assert admin.refunds.options(number).may_approve is True
    assert "customer_request" in opts.reasons and "order_cancelled" not in opts.reasons

    ids = line_ids(engine, number)
    agent.refunds.create(
        number,
        RefundRequest("damaged", lines=[LinePick(ids["MUG-BLUE"], 1)], include_shipping=True),
    )
    after = agent.refunds.options(number)
    # an approved refund holds its money and units even before it is sent
    assert after.refundable == o.total - 1488 - 495
    assert [ln.refundable for ln in after.lines] == [1, 1]
    assert after.shipping_refundable == 0
    assert after.payments[0].refundable == after.refundable


def test_preview_writes_nothing_and_create_keeps_its_numbers(engine, admin, agent) -> None:
    number = paid(admin, discount=101)
    ids = line_ids(engine, number)
    values = line_values([2975, 2975], 101)  # MUG-BLUE ×2, TEE-M ×1 (19 % VAT on top)
    request = RefundRequest(
        "customer request",
        lines=[LinePick(ids["MUG-BLUE"], 1, restock=True), LinePick(ids["TEE-M"], 1)],
        include_shipping=True,
        note="parcel lost",
    )
    before = rs.footprint(engine)
    quote = agent.refunds.preview(number, request)
    assert rs.footprint(engine) == before
    mug = round(values[0] / 2 + 0.001)  # half of the line, rounded half up
    assert [(ql.sku, ql.quantity, ql.amount, ql.restock) for ql in quote.lines] == [
        ("MUG-BLUE", 1, mug, True),
        ("TEE-M", 1, values[1], False),
    ]
    assert [ql.tax for ql in quote.lines] == [238, 475]  # the 19 % tax of each share
    assert (quote.shipping, quote.tax) == (495, 238 + 475)
    assert quote.amount == mug + values[1] + 495
    assert quote.refundable == rs.order(engine, number).total

    refund = agent.refunds.create(number, request)
    assert (refund.status, refund.amount, refund.tax, refund.shipping, refund.reason) == (
        "approved",
        quote.amount,
        quote.tax,
        495,
        "customer_request",
    )
    assert refund.note == "parcel lost" and refund.created_by == "alan"
    assert [(ln["sku"], ln["quantity"], ln["amount"], ln["restock"]) for ln in refund.lines] == [
        ("MUG-BLUE", 1, mug, True),
        ("TEE-M", 1, values[1], False),
    ]
    assert rs.event_kinds(engine, number)[-2:] == ["refund_requested", "refund_approved"]
    assert rs.refund_audit(engine) == ["refund.create"]
    # money moves only when the refund succeeds
    assert rs.order(engine, number).refunded == 0


@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (lambda ids: amount(100, reason="whim"), InvalidInput, "unknown refund reason 'whim'"),
        (
            lambda ids: RefundRequest("damaged"),
            RuleViolation,
            "choose lines, shipping or an amount",
        ),
        (lambda ids: amount(3471), RuleViolation, r"at most €34\.70 can be refunded"),
        (
            lambda ids: RefundRequest("damaged", lines=[LinePick(ids["MUG-BLUE"], 3)]),
            RuleViolation,
            "MUG-BLUE: only 2 of 2 left to refund, asked 3",
        ),
        (
            lambda ids: RefundRequest("damaged", lines=[LinePick(99_999, 1)]),
            RuleViolation,
            "line 99999",
        ),
        (
            lambda ids: amount(100, payment_id=99_999),
            InvalidInput,
            "payment #99999 is not a payment",
        ),
        (
            lambda ids: RefundRequest("damaged", amount=100, include_shipping=True),
            RuleViolation,
            "either an amount or lines",
        ),
    ],
)
def test_refused_requests_change_nothing(engine, admin, agent, make, error, message) -> None:
    number = paid(admin, lines=(("MUG-BLUE", 2),))  # 2975 + 495 = 3470
    request = make(line_ids(engine, number))
    before = rs.footprint(engine)
    with pytest.raises(error, match=message):
        agent.refunds.preview(number, request)
    with pytest.raises(error, match=message):
        agent.refunds.create(number, request)
    assert rs.footprint(engine) == before


def test_unpaid_unknown_and_stale_orders_are_refused(engine, admin, agent) -> None:
    unpaid = factories.place(admin).number
    number = paid(admin)
    before = rs.footprint(engine)
    with pytest.raises(RuleViolation, match="nothing was paid"):
        agent.refunds.create(unpaid, amount(100))
    with pytest.raises(NotFound, match="no order PB-999999"):
        agent.refunds.preview("PB-999999", amount(100))
    stale = rs.order(engine, number).version - 1
    with pytest.raises(Conflict, match="changed by someone else"):
        agent.refunds.create(number, amount(100), expected_version=stale)
    assert rs.footprint(engine) == before


# -- approval and roles -------------------------------------------------------------


def test_above_the_limit_waits_for_an_admin(engine, admin, agent) -> None:
    number = paid(admin, lines=(("TEE-M", 4),))  # 11900 + 495 > LIMIT
    refund = agent.refunds.create(number, amount(LIMIT + 1))
    assert (refund.status, refund.approved_by) == ("requested", None)
    assert rs.event_kinds(engine, number)[-2:] == ["refund_requested", "refund_awaiting_approval"]
    with pytest.raises(RuleViolation, match="waits for an admin's approval"):
        agent.refunds.execute_sync(refund.id)
    before = rs.footprint(engine)
    with pytest.raises(Denied):
        agent.refunds.approve(refund.id)
    assert rs.footprint(engine) == before
    # the waiting refund holds its money: nothing more than the rest can be asked
    rest = rs.order(engine, number).paid - (LIMIT + 1)
    with pytest.raises(RuleViolation, match="at most"):
        agent.refunds.create(number, amount(rest + 1))

    approved = admin.refunds.approve(refund.id)
    assert (approved.status, approved.approved_by) == ("approved", "ada")
    with pytest.raises(RuleViolation, match="is approved; this needs it requested"):
        admin.refunds.approve(refund.id)
    done = agent.refunds.execute_sync(refund.id)
    assert done.status == "succeeded"
    o = rs.order(engine, number)
    assert (o.refunded, o.payment_status, o.status) == (
        LIMIT + 1,
        "partially_refunded",
        "processing",
    )
    assert admin.refunds.get(refund.id).approved_by == "ada"


def test_admin_may_approve_as_they_create(engine, admin, agent) -> None:
    number = paid(admin, lines=(("TEE-M", 8),))
    before = rs.footprint(engine)
    with pytest.raises(Denied):
        agent.refunds.create(number, amount(LIMIT + 1), approve=True)
    assert rs.footprint(engine) == before
    r = admin.refunds.create(number, amount(LIMIT + 1), approve=True)
    assert (r.status, r.approved_by) == ("approved", "ada")
    # without approve=True an admin's large refund waits like anyone's
    assert admin.refunds.create(number, amount(LIMIT + 1)).status == "requested"
    # within the limit an agent's refund is approved at once
    assert agent.refunds.create(number, amount(100)).status == "approved"


@pytest.mark.parametrize("actor", [factories.WAREHOUSE, factories.VIEWER])
def test_roles_without_refund_rights_are_denied(engine, admin, clock, actor) -> None:
    number = paid(admin)
    refund = admin.refunds.create(number, amount(100))
    other = desk_as(engine, clock, actor)
    before = rs.footprint(engine)
    for call in (
        lambda: other.refunds.options(number),
        lambda: other.refunds.preview(number, amount(100)),
        lambda: other.refunds.create(number, amount(100)),
        lambda: other.refunds.approve(refund.id),
        lambda: other.refunds.cancel(refund.id),
        lambda: other.refunds.retry(refund.id),
        lambda: other.refunds.execute_sync(refund.id),
    ):
        with pytest.raises(Denied):
            call()
    assert rs.footprint(engine) == before
    if actor == factories.VIEWER:  # may see payments, so refunds too
        assert [r.id for r in other.refunds.list_refunds()] == [refund.id]
    else:
        with pytest.raises(Denied):
            other.refunds.list_refunds()


# -- idempotency key ------------------------------------------------------------------


def test_the_same_idempotency_key_makes_one_refund(engine, admin, agent) -> None:
    number = paid(admin)
    first = agent.refunds.create(number, amount(500), idempotency_key="dialog-1")
    again = agent.refunds.create(number, amount(500), idempotency_key="dialog-1")
    assert again.id == first.id
    assert len(rs.refunds(engine, number)) == 1
    other = agent.refunds.create(number, amount(500), idempotency_key="dialog-2")
    assert other.id != first.id
    with pytest.raises(InvalidInput, match="longer than 200"):
        agent.refunds.create(number, amount(1), idempotency_key="k" * 201)
    # a key names one refund of one order: reused on another order it is refused
    elsewhere = paid(admin)
    before = rs.footprint(engine)
    with pytest.raises(Conflict, match=f"already used for refund #{first.id}"):
        agent.refunds.create(elsewhere, amount(500), idempotency_key="dialog-1")
    assert rs.footprint(engine) == before


@pytest.mark.parametrize(
    ("reason", "message"),
    [
        ("order_cancelled", "come from cancelling the order"),
        ("return", "come from a return"),
    ],
)
def test_reasons_set_by_the_flows_are_refused(engine, admin, agent, reason, message) -> None:
    number = paid(admin)
    before = rs.footprint(engine)
    with pytest.raises(InvalidInput, match=message):
        agent.refunds.create(number, amount(100, reason=reason))
    assert rs.footprint(engine) == before


# -- hand-paid refunds, restock, cancel ---------------------------------------------------


def test_a_manual_refund_is_done_at_once_and_restocks(engine, admin, agent) -> None:
    number = paid(admin, lines=(("MUG-BLUE", 3), ("EBOOK-PY", 1)))
    on_hand, reserved = rs.stock(engine, "MUG-BLUE")
    ids = line_ids(engine, number)
    r = agent.refunds.create(
        number,
        RefundRequest(
            "wrong_item",
            lines=[LinePick(ids["MUG-BLUE"], 2, restock=True), LinePick(ids["EBOOK-PY"], 1, True)],
        ),
    )
    done = agent.refunds.execute_sync(r.id)
    assert (done.status, done.gateway_ref) == ("succeeded", f"manual-{r.id}")
    # not shipped yet: the units are simply no longer reserved for this order
    assert rs.stock(engine, "MUG-BLUE") == (on_hand, reserved - 2)
    ln = rs.lines(engine, number)
    assert (ln["MUG-BLUE"].qty_refunded, ln["EBOOK-PY"].qty_refunded) == (2, 1)
    o = rs.order(engine, number)
    assert o.refunded == r.amount and o.payment_status == "partially_refunded"
    p = rs.payments(engine, number)[0]
    assert (p.refunded, p.status) == (r.amount, "partially_refunded")
    assert rs.event_kinds(engine, number)[-1] == "refund_succeeded"
    assert rs.refund_audit(engine) == ["refund.create", "refund.succeeded"]
    # executing again changes nothing
    before = rs.footprint(engine)
    assert agent.refunds.execute_sync(r.id).status == "succeeded"
    assert rs.footprint(engine) == before


def test_refunding_everything_by_hand_refunds_the_order(engine, admin, agent) -> None:
    number = paid(admin, lines=(("MUG-BLUE", 3), ("TEE-M", 1)), discount=99)
    ids = line_ids(engine, number)
    # unit by unit, then the shipping: exactly the total, not a cent more or less
    for sku, qty in (("MUG-BLUE", 3), ("TEE-M", 1)):
        for _ in range(qty):
            r = agent.refunds.create(
                number, RefundRequest("damaged", lines=[LinePick(ids[sku], 1)])
            )
            assert agent.refunds.execute_sync(r.id).status == "succeeded"
    r = agent.refunds.create(number, RefundRequest("damaged", include_shipping=True))
    agent.refunds.execute_sync(r.id)
    o = rs.order(engine, number)
    assert o.refunded == o.paid == o.total
    assert (o.status, o.payment_status) == ("refunded", "refunded")
    assert "status" in rs.event_kinds(engine, number)[-1:]
    with pytest.raises(RuleViolation, match="nothing is left to refund"):
        agent.refunds.preview(number, amount(1))


def test_cancelling_a_refund_releases_what_it_held(engine, admin, agent) -> None:
    number = paid(admin)
    total = rs.order(engine, number).total
    r = agent.refunds.create(number, amount(total))
    with pytest.raises(RuleViolation, match="nothing is left to refund"):
        agent.refunds.preview(number, amount(1))
    with pytest.raises(RuleViolation, match="is approved; this needs it failed"):
        agent.refunds.retry(r.id)
    cancelled = agent.refunds.cancel(r.id, note="customer kept it")
    assert cancelled.status == "cancelled"
    assert rs.event_kinds(engine, number)[-1] == "refund_cancelled"
    with pytest.raises(RuleViolation, match="is cancelled"):
        agent.refunds.cancel(r.id)
    # a cancelled refund is never sent
    assert agent.refunds.execute_sync(r.id).status == "cancelled"
    assert rs.order(engine, number).refunded == 0
    assert agent.refunds.preview(number, amount(total)).amount == total
    with pytest.raises(NotFound):
        agent.refunds.cancel(99_999)


def test_cancelling_a_paid_order_refunds_it(engine, admin, agent) -> None:
    number = paid(admin)
    o = rs.order(engine, number)
    agent.orders.cancel(number, reason="customer_request")
    made = agent.refunds.list_refunds(order_ref=number, status="approved")
    assert [(r.amount, r.reason, r.created_by) for r in made] == [
        (o.total, "order_cancelled", "alan")
    ]
    assert agent.refunds.execute_sync(made[0].id).status == "succeeded"
    after = rs.order(engine, number)
    assert (after.status, after.payment_status, after.refunded) == (
        "cancelled",
        "refunded",
        o.total,
    )
    assert rs.payments(engine, number)[0].status == "refunded"


def test_cancel_above_the_limit_waits_unless_an_admin_cancels(engine, clock) -> None:
    low = Settings(database_url="sqlite://", refund_limit_minor=100)
    admin = Desk(engine, factories.ADMIN, low, clock)
    agent = Desk(engine, factories.AGENT, low, clock)
    a, b = paid(admin), paid(admin)
    agent.orders.cancel(a, reason="customer_request")
    admin.orders.cancel(b, reason="customer_request")
    assert [r.status for r in agent.refunds.list_refunds(order_ref=a)] == ["requested"]
    assert [r.status for r in agent.refunds.list_refunds(order_ref=b)] == ["approved"]


def test_list_and_counts_put_what_needs_attention_first(engine, admin, agent) -> None:
    fake = rs.FakeGateway(script=["refuse"])
    number = paid(admin, lines=(("TEE-M", 4),), gateway="fake")
    ok = agent.refunds.create(number, amount(100))
    failed = agent.refunds.create(number, amount(200))
    waiting = agent.refunds.create(number, amount(LIMIT + 1))
    assert agent.refunds.execute_sync(failed.id, {"fake": fake}).status == "failed"
    rows = agent.refunds.list_refunds()
    assert [r.id for r in rows] == [failed.id, waiting.id, ok.id]
    assert rows[0].failure_reason == "fake HTTP 400: charge already refunded"
    assert (rows[0].gateway, rows[0].order_number) == ("fake", number)
    assert [r.id for r in agent.refunds.list_refunds(status="approved")] == [ok.id]
    assert agent.refunds.counts() == {
        "requested": 1,
        "approved": 1,
        "pending": 0,
        "succeeded": 0,
        "failed": 1,
        "cancelled": 0,
    }
    with pytest.raises(InvalidInput, match="unknown refund status 'lost'"):
        agent.refunds.list_refunds(status="lost")
    with pytest.raises(NotFound):
        agent.refunds.get(99_999)


# -- exactly once against an in-memory gateway --------------------------------------------


def test_a_refused_refund_fails_and_retry_is_a_new_attempt(engine, admin, agent) -> None:
    fake = rs.FakeGateway(script=["refuse"])
    number = paid(admin, gateway="fake")
    r = agent.refunds.create(number, amount(700))
    failed = agent.refunds.execute_sync(r.id, {"fake": fake})
    assert (failed.status, failed.gateway_ref) == ("failed", None)
    assert failed.failure_reason == "fake HTTP 400: charge already refunded"
    assert "refund_failed" in rs.event_kinds(engine, number)
    # a failed refund holds nothing
    assert agent.refunds.options(number).refundable == rs.order(engine, number).paid
    again = agent.refunds.retry(r.id)
    assert (again.status, again.attempt, again.failure_reason) == ("approved", 2, None)
    done = agent.refunds.execute_sync(r.id, {"fake": fake})
    assert done.status == "succeeded"
    # the second attempt is a new request: its own key, our id in the metadata
    assert [key for _, _, key in fake.asked] == [r.idempotency_key, f"{r.idempotency_key}:2"]
    assert [(m.amount, m.refund_id) for m in fake.made] == [(700, str(r.id))]


def test_an_unconfigured_gateway_leaves_the_refund_for_recovery(engine, admin, agent) -> None:
    number = paid(admin, gateway="fake")
    r = agent.refunds.create(number, amount(700))
    stuck = agent.refunds.execute_sync(r.id, {})
    assert stuck.status == "pending"
    assert stuck.failure_reason.startswith("fake is not configured here")
    fake = rs.FakeGateway()
    svc = RefundService(admin.ctx)
    assert asyncio.run(svc.recover({"fake": fake}, grace=timedelta(0))) == [r.id]
    assert rs.refund(engine, r.id).status == "succeeded"
    assert len(fake.made) == 1
    assert asyncio.run(svc.recover({"fake": fake}, grace=timedelta(0))) == []
    assert len(fake.made) == 1


def test_lost_answer_is_found_not_resent(engine, admin, agent) -> None:
    fake = rs.FakeGateway(script=["lost"])
    number = paid(admin, gateway="fake")
    r = agent.refunds.create(number, amount(700))
    assert agent.refunds.execute_sync(r.id, {"fake": fake}).status == "pending"
    assert "refund_unknown" in rs.event_kinds(engine, number)
    # sending again by hand does not double it: the row is claimed
    assert agent.refunds.execute_sync(r.id, {"fake": fake}).status == "pending"
    assert len(fake.asked) == 1
    svc = RefundService(admin.ctx)
    asyncio.run(svc.recover({"fake": fake}, grace=timedelta(0)))
    assert rs.refund(engine, r.id).status == "succeeded"
    assert len(fake.asked) == len(fake.made) == 1
    assert rs.order(engine, number).refunded == 700


# -- bugs found while writing these tests (see the report) -----------------------------------


def test_retry_rechecks_what_is_still_refundable(engine, admin, agent) -> None:
    fake = rs.FakeGateway(script=["refuse"])
    number = paid(admin, gateway="fake")
    total = rs.order(engine, number).paid
    first = agent.refunds.create(number, amount(total))
    assert agent.refunds.execute_sync(first.id, {"fake": fake}).status == "failed"
    second = agent.refunds.create(number, amount(total))
    assert agent.refunds.execute_sync(second.id, {"fake": fake}).status == "succeeded"
    try:
        agent.refunds.retry(first.id)
        agent.refunds.execute_sync(first.id, {"fake": fake})
    except RuleViolation:
        pass
    o = rs.order(engine, number)
    assert o.refunded <= o.paid
    assert len(fake.succeeded()) == 1


def test_a_crashed_manual_refund_is_recovered(engine, admin, agent, monkeypatch) -> None:
    number = paid(admin)
    r = agent.refunds.create(number, amount(700))
    real = RefundService._succeed
    crashes = [1]

    def crash_once(self, *a, **kw):
        if crashes:
            crashes.pop()
            raise RuntimeError("killed")
        return real(self, *a, **kw)

    monkeypatch.setattr(RefundService, "_succeed", crash_once)
    with pytest.raises(RuntimeError):
        agent.refunds.execute_sync(r.id)
    assert rs.refund(engine, r.id).status == "pending"
    asyncio.run(RefundService(admin.ctx).recover({}, grace=timedelta(0)))
    assert rs.refund(engine, r.id).status == "succeeded"
    assert rs.order(engine, number).refunded == 700


def test_a_retried_refund_whose_answer_is_lost_is_refunded_once(engine, admin, agent) -> None:
    fake = rs.FakeGateway(script=["async_fail", "lost"])
    number = paid(admin, gateway="fake")
    r = agent.refunds.create(number, amount(700))
    failed = agent.refunds.execute_sync(r.id, {"fake": fake})
    assert (failed.status, failed.failure_reason) == ("failed", "bank refused")
    agent.refunds.retry(r.id)
    assert agent.refunds.execute_sync(r.id, {"fake": fake}).status == "pending"  # answer lost
    svc = RefundService(admin.ctx)
    # what the payment sync does each run, then an operator retrying a failed one
    for _ in range(2):
        asyncio.run(svc.recover({"fake": fake}, grace=timedelta(0)))
        for ref in svc.pending_refs("fake"):
            svc.record(asyncio.run(fake.fetch_refund(ref)))
        if rs.refund(engine, r.id).status == "failed":
            agent.refunds.retry(r.id)
            agent.refunds.execute_sync(r.id, {"fake": fake})
    assert len(fake.succeeded()) == 1
    assert rs.refund(engine, r.id).status == "succeeded"
    assert rs.order(engine, number).refunded == 700


def test_units_refunded_before_shipping_do_not_ship(admin: Desk, engine: Engine) -> None:
    """Refund one of two unshipped mugs (restocked): shipping then sends one."""
    from tests.services.test_orders import product

    o = factories.place(admin, lines=(("MUG-BLUE", 2),))
    admin.orders.confirm_payment(o.number, gateway="bank_transfer", method="bank_transfer")
    (line,) = admin.refunds.options(o.number).lines
    r = admin.refunds.create(
        o.number, RefundRequest(reason="damaged", lines=[LinePick(line.line_id, 1, True)])
    )
    assert admin.refunds.execute_sync(r.id).status == "succeeded"
    assert product(engine, "MUG-BLUE").stock_reserved == 1
    admin.orders.ship(o.number, carrier="DHL", tracking="JD1")
    d = admin.orders.detail(o.number)
    assert d.shipments[0].lines == [{"sku": "MUG-BLUE", "quantity": 1}]
    assert (
        product(engine, "MUG-BLUE").stock_on_hand,
        product(engine, "MUG-BLUE").stock_reserved,
    ) == (
        499,
        0,
    )


def test_a_refund_settled_before_the_capture_is_seen_still_counts(
    admin: Desk, engine: Engine
) -> None:
    """The sync refreshes a payment and its refund concurrently: if the refund's
    success lands first, recording the capture afterwards must keep it."""
    from sqlalchemy import select

    from pulse_tui.domain.status import PaymentStatus
    from pulse_tui.gateways.base import PaymentInfo, RefundInfo
    from pulse_tui.services.payments import PaymentService
    from pulse_tui.storage.db import write_session
    from pulse_tui.storage.models import Payment, Refund

    o = factories.place(admin)
    PaymentService(admin.ctx).attach(o.number, gateway="stripe", reference="pi_race")
    with write_session(engine) as s:  # a refund made at the gateway, still pending here
        p = s.execute(select(Payment).where(Payment.gateway_ref == "pi_race")).scalar_one()
        s.add(
            Refund(
                order_id=o.id,
                payment_id=p.id,
                amount=100,
                currency=o.currency,
                reason="other",
                status="pending",
                idempotency_key="k-race",
                gateway_ref="re_race",
                created_by="ada",
            )
        )
    assert admin.refunds.record(
        RefundInfo("stripe", "re_race", "pi_race", "succeeded", 100, o.currency)
    )
    PaymentService(admin.ctx).apply(
        PaymentInfo(
            "stripe",
            "pi_race",
            PaymentStatus.PAID,
            "succeeded",
            o.total,
            o.currency,
            captured=o.total,
            refunded=100,
        )
    )
    d = admin.orders.detail(o.number)
    assert (d.order.status, d.order.payment_status, d.order.refunded) == (
        "processing",
        "partially_refunded",
        100,
    )
    assert d.payments[0].status == "partially_refunded"


def test_the_approval_limit_is_each_currencys_own(engine, clock) -> None:
    # one number of minor units is 100.00 EUR but only ¥10,000 or 10.000 KWD:
    # [refund_limits] gives a currency its own limit, others keep the default
    cfg = Settings(database_url="sqlite://", refund_limit_minor=LIMIT, refund_limits={"JPY": 500})
    admin = Desk(engine, factories.ADMIN, cfg, clock)
    agent = Desk(engine, factories.AGENT, cfg, clock)
    eur = paid(admin)
    jpy = paid(admin, lines=(("TEA-SET", 1),), currency="JPY", shipping=0)
    assert agent.refunds.options(eur).limit == LIMIT
    assert agent.refunds.options(jpy).limit == 500
    assert agent.refunds.create(jpy, amount(500)).status == "approved"
    waiting = agent.refunds.create(jpy, amount(501))
    assert waiting.status == "requested"
    messages = [e.message for e in admin.orders.detail(jpy).events]
    assert any(f"Refund #{waiting.id} is above the ¥500 limit" in m for m in messages)
    assert agent.refunds.create(eur, amount(501)).status == "approved"  # €5.01, default limit


@pytest.mark.parametrize(
    ("table", "want"),
    [
        ({"JPY": 50000, "kwd": "150.000", "EUR": 500}, {"JPY": 50000, "KWD": 150000, "EUR": 50000}),
        ({}, {}),
    ],
)
def test_refund_limits_are_read_in_each_currencys_major_units(table, want) -> None:
    from pulse_tui.config import load_refund_limits

    assert load_refund_limits({"refund_limits": table}) == want


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"refund_limits": {"XYZ": 10}}, "refund_limits.XYZ: unknown currency 'XYZ'"),
        ({"refund_limits": {"JPY": "10.5"}}, "refund_limits.JPY: 10.5 has more than 0 decimal"),
        ({"refund_limits": {"EUR": -1}}, "refund_limits.EUR must be 0 or more"),
        ({"refund_limits": {"EUR": 1.5}}, "refund_limits.EUR: amounts must be text"),
        ({"refund_limits": 500}, "refund_limits must be a table"),
        ({"refund_limit_minor": "lots"}, "refund_limit_minor must be a whole number"),
        ({"refund_limit_minor": -5}, "refund_limit_minor must be a whole number"),
    ],
)
def test_bad_refund_limits_are_refused_with_the_key(data, message) -> None:
    from pulse_tui.config import SettingsError, load_refund_limit, load_refund_limits

    with pytest.raises(SettingsError) as err:
        load_refund_limit(data)
        load_refund_limits(data)
    assert message in str(err.value)
