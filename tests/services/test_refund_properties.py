"""Property: whatever sequence of refund requests operators make — lines,
quantities, shipping, free amounts, above the limit or not, approved,
cancelled, executed, retried, the order cancelled — the money adds up:

- refunded ≤ captured, on the order and on every payment;
- the order's (and each payment's) refunded is the sum of its succeeded refunds;
- payment_status == domain.refunds.payment_status_after(paid, refunded);
- per line, refunded units == the units of succeeded refunds ≤ quantity, and
  active refunds never hold more units, shipping or money than there is;
- a fully refunded order is ``refunded`` (or stays ``cancelled``);
- a preview and the create that follows agree.

Each example gets a fresh small database (a copy of a template file).
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, select

from pulse_tui.config import Settings
from pulse_tui.domain.refunds import ACTIVE, LinePick, payment_status_after
from pulse_tui.services.desk import Desk
from pulse_tui.services.errors import Denied, ServiceError
from pulse_tui.services.refunds import RefundRequest, RefundService
from pulse_tui.storage.db import make_engine, read_session
from pulse_tui.storage.models import Order, OrderLine, Payment, Refund
from tests import factories
from tests import refund_support as rs

FAST = settings(
    max_examples=30,
    deadline=None,
    derandomize=True,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
SKUS = ("MUG-BLUE", "TEE-M", "EBOOK-PY")  # EUR: two physical, one digital


@pytest.fixture(scope="module")
def template() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "template.sqlite"
        eng = factories.new_engine(path)
        factories.add_operators(eng)
        factories.add_catalog(eng)
        eng.dispose()
        yield path


class World:
    """One example's database, desks and the order under test."""

    def __init__(self, template: Path, limit: int, adapters: dict) -> None:
        self.dir = tempfile.TemporaryDirectory()
        path = Path(self.dir.name) / "pulse.sqlite"
        shutil.copy(template, path)
        self.engine = make_engine(f"sqlite:///{path}")
        clock = factories.FrozenClock()
        cfg = Settings(database_url="sqlite://", refund_limit_minor=limit)
        self.desks = {
            "admin": Desk(self.engine, factories.ADMIN, cfg, clock),
            "agent": Desk(self.engine, factories.AGENT, cfg, clock),
        }
        self.adapters = adapters
        self.made: list[int] = []
        self.number = ""

    def close(self) -> None:
        self.engine.dispose()
        self.dir.cleanup()

    def refund_id(self, i: int) -> int | None:
        return self.made[i % len(self.made)] if self.made else None


def line_ids(engine: Engine, number: str) -> list[int]:
    return [int(ln.id or 0) for ln in rs.lines(engine, number).values()]


def check(engine: Engine, number: str) -> None:
    with read_session(engine) as s:
        o = s.execute(select(Order).where(Order.number == number)).scalar_one()
        refunds = list(s.execute(select(Refund).where(Refund.order_id == o.id)).scalars())
        payments = list(s.execute(select(Payment).where(Payment.order_id == o.id)).scalars())
        lines = list(s.execute(select(OrderLine).where(OrderLine.order_id == o.id)).scalars())
    done = [r for r in refunds if r.status == "succeeded"]
    active = [r for r in refunds if r.status in ACTIVE]
    assert 0 <= o.refunded <= o.paid
    assert o.refunded == sum(r.amount for r in done)
    assert sum(r.amount for r in active) <= o.paid
    assert o.payment_status == payment_status_after(o.paid, o.refunded)
    if o.paid > 0 and o.refunded == o.paid:
        assert o.status in ("refunded", "cancelled")
    if o.status == "refunded":
        assert o.refunded == o.paid
    for p in payments:
        assert 0 <= p.refunded <= p.captured
        assert p.refunded == sum(r.amount for r in done if r.payment_id == p.id)
        if p.captured:
            assert p.status == payment_status_after(p.captured, p.refunded)
    for ln in lines:
        units = sum(int(i["quantity"]) for r in done for i in r.lines if i["line_id"] == ln.id)
        held = sum(int(i["quantity"]) for r in active for i in r.lines if i["line_id"] == ln.id)
        assert ln.qty_refunded == units <= ln.quantity
        assert held <= ln.quantity
    assert sum(r.shipping for r in active) <= o.shipping
    for r in refunds:
        assert r.amount > 0
        if r.lines or r.shipping:  # a line refund is exactly its quote
            assert r.amount == sum(int(i["amount"]) for i in r.lines) + r.shipping


ORDERS = st.fixed_dictionaries(
    {
        "lines": st.lists(
            st.tuples(st.sampled_from(SKUS), st.integers(1, 4)),
            min_size=1,
            max_size=3,
            unique_by=lambda t: t[0],
        ),
        "shipping": st.integers(0, 999),
        "discount": st.integers(0, 600),
        "ship": st.booleans(),
        "gateway": st.sampled_from(["manual", "bank_transfer"]),
    }
)
WHO = st.sampled_from(["agent", "admin"])
PICKS = st.lists(st.tuples(st.integers(0, 2), st.integers(0, 5), st.booleans()), max_size=3)
ACTIONS = st.lists(
    st.one_of(
        st.tuples(st.just("lines"), PICKS, st.booleans(), WHO, st.booleans()),
        st.tuples(st.just("amount"), st.integers(-1, 20_000), WHO, st.booleans()),
        st.tuples(st.just("approve"), st.integers(0, 9)),
        st.tuples(st.just("cancel"), st.integers(0, 9)),
        st.tuples(st.just("execute"), st.integers(0, 9)),
        st.tuples(st.just("retry"), st.integers(0, 9)),
        st.tuples(st.just("cancel_order"), WHO),
    ),
    min_size=1,
    max_size=10,
)


def setup_order(w: World, spec: dict) -> None:
    admin = w.desks["admin"]
    o = rs.place(admin, spec["lines"], shipping=spec["shipping"], discount=spec["discount"])
    w.number = o.number
    gw = spec["gateway"]
    if gw in ("manual", "bank_transfer"):
        admin.orders.confirm_payment(o.number, gateway=gw, method="bank_transfer")
    else:
        admin.orders.confirm_payment(o.number, gateway=gw, method="card", reference="pay_1")
    if spec["ship"] and o.has_physical:
        admin.orders.ship(o.number, carrier="DHL", tracking="JD1")


def request_for(w: World, action: tuple) -> tuple[RefundRequest, str, bool]:
    kind = action[0]
    if kind == "lines":
        _, picks, shipping, who, approve = action
        ids = line_ids(w.engine, w.number)
        chosen = [LinePick(ids[i % len(ids)], q, restock) for i, q, restock in picks]
        return RefundRequest("damaged", lines=chosen, include_shipping=shipping), who, approve
    _, value, who, approve = action
    if kind == "share":  # a percentage of what was paid
        value = max(1, rs.order(w.engine, w.number).paid * value // 100)
    return RefundRequest("customer_request", amount=value), who, approve


def step(w: World, action: tuple) -> None:
    kind = action[0]
    agent, admin = w.desks["agent"], w.desks["admin"]
    if kind in ("lines", "amount", "share"):
        request, who, approve = request_for(w, action)
        d = w.desks[who]
        if approve and who == "agent":  # the right is checked before anything else
            with pytest.raises(Denied):
                d.refunds.create(w.number, request, approve=True)
            return
        try:
            quote = d.refunds.preview(w.number, request)
        except ServiceError as exc:
            with pytest.raises(type(exc)):
                d.refunds.create(w.number, request, approve=approve)
            return
        made = d.refunds.create(w.number, request, approve=approve)
        assert made.amount == quote.amount
        w.made.append(int(made.id or 0))
        return
    if kind == "cancel_order":
        d = w.desks[action[1]]
        try:
            d.orders.cancel(w.number, reason="customer_request")
        except ServiceError:
            return
        for r in d.refunds.list_refunds(order_ref=w.number):
            if r.id not in w.made:
                w.made.append(r.id)
        return
    rid = w.refund_id(action[1])
    if rid is None:
        return
    try:
        if kind == "approve":
            admin.refunds.approve(rid)
        elif kind == "cancel":
            agent.refunds.cancel(rid)
        elif kind == "retry":
            agent.refunds.retry(rid)
        else:
            agent.refunds.execute_sync(rid, w.adapters)
    except ServiceError:
        pass


@FAST
@given(spec=ORDERS, limit=st.integers(500, 6000), actions=ACTIONS)
def test_refunds_by_hand_always_add_up(template, spec, limit, actions) -> None:
    w = World(template, limit, {})
    try:
        setup_order(w, spec)
        check(w.engine, w.number)
        for action in actions:
            step(w, action)
            check(w.engine, w.number)
        # whatever is left approved is paid back by hand when executed
        for rid in w.made:
            if rs.refund(w.engine, rid).status == "approved":
                w.desks["agent"].refunds.execute_sync(rid, {})
                assert rs.refund(w.engine, rid).status == "succeeded"
        check(w.engine, w.number)
    finally:
        w.close()


# -- the same against a gateway that refuses, loses answers and settles late ----------------

OUTCOMES = st.lists(
    st.sampled_from(["ok", "ok", "refuse", "refuse", "async_fail", "lost", "unreached", "pending"]),
    min_size=4,
    max_size=12,
)
GATEWAY_ACTIONS = st.lists(
    st.tuples(
        # repeated kinds weigh what makes money move
        st.sampled_from(
            ["share", "share", "execute", "execute", "execute", "retry", "retry"]
            + ["cancel", "sync", "settle"]
        ),
        st.integers(1, 100),  # share: percent of what was paid; others: which refund
    ).map(lambda t: (t[0], t[1], "agent", False) if t[0] == "share" else t),
    min_size=1,
    max_size=14,
)


def sync_once(w: World, fake: rs.FakeGateway) -> None:
    """What the payment sync does for refunds: recover, then refresh pending ones."""
    svc = RefundService(w.desks["admin"].ctx)
    asyncio.run(svc.recover({"fake": fake}, grace=timedelta(0)))
    for ref in svc.pending_refs("fake"):
        svc.record(asyncio.run(fake.fetch_refund(ref)))


def check_gateway(w: World, fake: rs.FakeGateway) -> None:
    paid = rs.order(w.engine, w.number).paid
    # the money that really left: never more than was captured
    assert sum(r.amount for r in fake.succeeded()) <= paid


@FAST
@given(spec=ORDERS, outcomes=OUTCOMES, actions=GATEWAY_ACTIONS)
@example(
    # refund everything: refused; refund everything again: sent; retry the first
    spec={"lines": [("TEE-M", 1)], "shipping": 0, "discount": 0, "ship": False, "gateway": "fake"},
    outcomes=["refuse", "ok", "ok"],
    actions=[
        ("share", 100, "agent", False),
        ("execute", 0),
        ("share", 100, "agent", False),
        ("execute", 1),
        ("retry", 0),
        ("execute", 0),
    ],
)
def test_refunds_at_a_flaky_gateway_move_money_once(template, spec, outcomes, actions) -> None:
    spec = {**spec, "gateway": "fake"}
    fake = rs.FakeGateway(script=list(outcomes))
    w = World(template, 10**9, {"fake": fake})
    try:
        setup_order(w, spec)
        for action in actions:
            if action[0] == "sync":
                sync_once(w, fake)
            elif action[0] == "settle":
                for r in fake.made:
                    if r.status == "pending":
                        r.status = "succeeded"
            else:
                step(w, action)
            check(w.engine, w.number)
            check_gateway(w, fake)
        # once everything settles and the sync has run, we agree with the gateway
        for r in fake.made:
            if r.status == "pending":
                r.status = "succeeded"
        fake.script.clear()
        for _ in range(2):
            sync_once(w, fake)
        check(w.engine, w.number)
        check_gateway(w, fake)
        assert rs.order(w.engine, w.number).refunded == sum(r.amount for r in fake.succeeded())
    finally:
        w.close()
