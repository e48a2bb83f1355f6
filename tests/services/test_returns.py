"""Returns (RMA) on a temporary SQLite file: every step, its effects on goods and
money, who may do it, bad input, conflicts, and repeats after a crash."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from pulse_tui.domain.refunds import LinePick
from pulse_tui.services import returns as returns_mod
from pulse_tui.services.desk import Desk
from pulse_tui.services.errors import Conflict, Denied, InvalidInput, NotFound, RuleViolation
from pulse_tui.services.refunds import RefundRequest
from pulse_tui.services.returns import ReceivedItem, ReturnPick, ReturnRow
from pulse_tui.storage import queries
from pulse_tui.storage.db import read_session
from pulse_tui.storage.models import Order, OrderLine, Payment, Refund, Return
from tests import factories
from tests.factories import ADMIN, AGENT, VIEWER, WAREHOUSE, place
from tests.services.test_orders import db_state, events, get_order, product, rows

# 2 × MUG-BLUE (12.50 + 19 %): 2975; 1 × TEE-M (25.00 + 19 %): 2975; shipping 495.
MUG_LINE, TEE_LINE, SHIPPING = 2975, 2975, 495


@pytest.fixture
def desks(engine: Engine, clock: factories.FrozenClock) -> dict[str, Desk]:
    return {
        a.role.value: factories.desk(engine, a, clock) for a in (ADMIN, AGENT, WAREHOUSE, VIEWER)
    }


@pytest.fixture
def agent(desks: dict[str, Desk]) -> Desk:
    return desks["agent"]


@pytest.fixture
def wes(desks: dict[str, Desk]) -> Desk:
    return desks["warehouse"]


def shipped(d: Desk, lines: Any = (("MUG-BLUE", 2), ("TEE-M", 1))) -> str:
    """A paid (by hand) and shipped order; returns its number."""
    o = place(d, lines=lines)
    d.orders.confirm_payment(o.number)
    d.orders.ship(o.number, carrier="DHL", tracking="JD0001")
    return o.number


def ret_row(engine: Engine, return_id: int) -> Return:
    with read_session(engine) as s:
        r = s.get(Return, return_id)
        assert r is not None
        return r


def return_audits(engine: Engine, return_id: int) -> list[str]:
    with read_session(engine) as s:
        return [a.action for a in queries.audit_entries(s, "return", str(return_id))]


def kinds(engine: Engine, number: str) -> list[str]:
    return [e.kind for e in events(engine, number)]


def lines_by_sku(engine: Engine, number: str) -> dict[str, OrderLine]:
    return {ln.sku: ln for ln in rows(engine, OrderLine, number)}


def refunds_of(engine: Engine, number: str) -> list[Refund]:
    return rows(engine, Refund, number)


def order_count(engine: Engine) -> int:
    with read_session(engine) as s:
        return int(s.execute(select(func.count()).select_from(Order)).scalar_one())


def to_status(d: Desk, wes: Desk, number: str, status: str) -> ReturnRow:
    """A return of 2 × MUG-BLUE on ``number``, brought to ``status``."""
    r = d.returns.request(number, [ReturnPick("MUG-BLUE", 2)], "damaged")
    if status == "requested":
        return r
    r = d.returns.authorize(r.id)
    if status == "authorized":
        return r
    return wes.returns.receive(r.id, [ReceivedItem("MUG-BLUE", 2, "resellable")])


# -- the whole flow -------------------------------------------------------------------


def test_request_authorize_receive_refund_moves_goods_and_money_once(
    engine: Engine, admin_desk: Desk, agent: Desk, wes: Desk
) -> None:
    number = shipped(admin_desk)
    assert (product(engine, "MUG-BLUE").stock_on_hand, product(engine, "TEE-M").stock_on_hand) == (
        498,
        499,
    )

    r = agent.returns.request(
        number,
        [ReturnPick("mug-blue", 2), ReturnPick("TEE-M", 1)],
        "Wrong item",
        note="sent the wrong colour",
    )
    assert (r.status, r.reason, r.note, r.created_by) == (
        "requested",
        "wrong_item",
        "sent the wrong colour",
        "alan",
    )
    assert [(ln["sku"], ln["quantity"], ln["received"]) for ln in r.lines] == [
        ("MUG-BLUE", 2, 0),
        ("TEE-M", 1, 0),
    ]
    assert product(engine, "MUG-BLUE").stock_on_hand == 498  # nothing moves on request

    r = agent.returns.authorize(r.id, note="label sent")
    assert (r.status, r.decided_by, r.decision_note) == ("authorized", "alan", "label sent")

    r = wes.returns.receive(
        r.id,
        [
            ReceivedItem("MUG-BLUE", 1, "resellable"),
            ReceivedItem("MUG-BLUE", 1, "damaged"),
            ReceivedItem("TEE-M", 1, "Damaged"),
        ],
    )
    assert (r.status, r.received_by) == ("received", "wes")
    got = {ln["sku"]: ln for ln in r.lines}
    assert (got["MUG-BLUE"]["received"], got["MUG-BLUE"]["condition"]) == (2, "mixed")
    assert (got["MUG-BLUE"]["resellable"], got["MUG-BLUE"]["damaged"]) == (1, 1)
    assert (got["TEE-M"]["received"], got["TEE-M"]["condition"]) == (1, "damaged")
    # resellable back on the shelf, damaged not
    assert product(engine, "MUG-BLUE").stock_on_hand == 499
    assert product(engine, "TEE-M").stock_on_hand == 499
    lines = lines_by_sku(engine, number)
    assert (lines["MUG-BLUE"].qty_returned, lines["TEE-M"].qty_returned) == (2, 1)
    order = get_order(engine, number)
    assert (order.status, order.fulfillment_status) == ("shipped", "returned")

    refund = agent.returns.refund(r.id)
    assert (refund.amount, refund.reason, refund.status, refund.return_id) == (
        MUG_LINE + TEE_LINE,
        "return",
        "approved",
        r.id,
    )
    assert refund.idempotency_key == f"return-{r.id}"
    assert all(not ln["restock"] for ln in refund.lines)
    r = agent.returns.get(r.id)
    assert (r.status, r.refund_id) == ("refunded", refund.id)

    done = agent.refunds.execute_sync(int(refund.id or 0))  # paid by hand: paid back by hand
    assert done.status == "succeeded"
    order = get_order(engine, number)
    assert (order.refunded, order.payment_status) == (MUG_LINE + TEE_LINE, "partially_refunded")
    assert product(engine, "MUG-BLUE").stock_on_hand == 499  # the refund restocked nothing more
    assert len(refunds_of(engine, number)) == 1

    timeline = kinds(engine, number)
    for kind in ("return_requested", "return_authorized", "return_received", "return_refunded"):
        assert timeline.count(kind) == 1, kind
    received = next(e for e in events(engine, number) if e.kind == "return_received")
    assert "1 × MUG-BLUE resellable" in received.message
    assert "back in stock: 1 × MUG-BLUE" in received.message
    assert return_audits(engine, r.id) == [
        "return.request",
        "return.authorize",
        "return.receive",
        "return.refund",
    ]
    with read_session(engine) as s:
        order_actions = [a.action for a in queries.audit_entries(s, "order", number)]
    for step in ("request", "authorize", "receive", "refund"):
        assert f"return.{step}" in order_actions


def test_partial_return_leaves_the_rest_returnable(
    engine: Engine, admin_desk: Desk, agent: Desk, wes: Desk
) -> None:
    number = shipped(admin_desk)
    r = agent.returns.request(number, [ReturnPick("MUG-BLUE", 2)], "customer request")
    opts = agent.returns.options(number)
    assert {ln.sku: (ln.shipped, ln.returnable) for ln in opts.lines} == {
        "MUG-BLUE": (2, 0),  # both are in the open return
        "TEE-M": (1, 1),
    }
    agent.returns.authorize(r.id)
    # one of the two authorised units arrives
    wes.returns.receive(r.id, [ReceivedItem("MUG-BLUE", 1, "resellable")])
    assert get_order(engine, number).fulfillment_status == "partially_returned"
    assert lines_by_sku(engine, number)["MUG-BLUE"].qty_returned == 1
    # the unit that never came back may be asked back again
    assert {ln.sku: ln.returnable for ln in agent.returns.options(number).lines} == {
        "MUG-BLUE": 1,
        "TEE-M": 1,
    }
    refund = agent.returns.refund(r.id)
    assert refund.amount == 1488  # alloc(1 of 2) of 29.75, half up: the refund rules' numbers


def test_digital_line_returned_resellable_touches_no_stock(
    engine: Engine, admin_desk: Desk, agent: Desk, wes: Desk
) -> None:
    o = place(admin_desk, lines=(("EBOOK-PY", 1),))
    admin_desk.orders.confirm_payment(o.number)
    admin_desk.orders.deliver(o.number)
    r = agent.returns.request(o.number, [ReturnPick("EBOOK-PY", 1)], "other")
    agent.returns.authorize(r.id)
    wes.returns.receive(r.id, [ReceivedItem("EBOOK-PY", 1, "resellable")])
    assert product(engine, "EBOOK-PY").stock_on_hand == 0
    assert get_order(engine, o.number).fulfillment_status == "returned"


def test_reject_needs_a_note_and_frees_the_units(
    engine: Engine, admin_desk: Desk, agent: Desk
) -> None:
    number = shipped(admin_desk)
    r = agent.returns.request(number, [ReturnPick("MUG-BLUE", 2)], "damaged")
    before = db_state(engine)
    with pytest.raises(InvalidInput, match="rejection note cannot be empty"):
        agent.returns.reject(r.id, "  ")
    assert db_state(engine) == before

    r = agent.returns.reject(r.id, "outside the 30-day window")
    assert (r.status, r.decided_by, r.decision_note) == (
        "rejected",
        "alan",
        "outside the 30-day window",
    )
    assert "return_rejected" in kinds(engine, number)
    assert return_audits(engine, r.id) == ["return.request", "return.reject"]
    assert {ln.sku: ln.returnable for ln in agent.returns.options(number).lines}["MUG-BLUE"] == 2
    with pytest.raises(RuleViolation, match="the return is rejected; receive needs it authorized"):
        agent.returns.receive(r.id, [ReceivedItem("MUG-BLUE", 1, "resellable")])


# -- exchange -------------------------------------------------------------------------


def test_exchange_customer_owes_the_difference(
    engine: Engine, admin_desk: Desk, agent: Desk, wes: Desk
) -> None:
    number = shipped(admin_desk)
    r = agent.returns.request(number, [ReturnPick("MUG-BLUE", 1)], "wrong item")
    agent.returns.authorize(r.id)
    wes.returns.receive(r.id, [ReceivedItem("MUG-BLUE", 1, "resellable")])
    reserved = product(engine, "TEE-M").stock_reserved

    res = agent.returns.exchange(r.id, [("tee-m", 1)])
    credit = 1488  # one of the two mugs, by the refund rules
    assert (res.credit, res.difference, res.refund_id) == (credit, TEE_LINE - credit, None)
    assert (res.ret.status, res.ret.exchange_order_number) == ("exchanged", res.order_number)
    new = get_order(engine, res.order_number)
    original = get_order(engine, number)
    assert new.customer_id == original.customer_id and new.currency == original.currency
    assert new.shipping_address == original.shipping_address
    assert (new.subtotal, new.discount, new.shipping, new.total) == (
        TEE_LINE,
        credit,
        0,
        TEE_LINE - credit,
    )
    assert (new.status, new.payment_status) == ("pending", "unpaid")  # waits for the difference
    assert product(engine, "TEE-M").stock_reserved == reserved + 1
    assert refunds_of(engine, number) == []  # nothing given back
    assert "return_exchanged" in kinds(engine, number)
    assert "return_exchanged" in kinds(engine, res.order_number)
    assert return_audits(engine, r.id)[-1] == "return.exchange"
    stored = ret_row(engine, r.id)
    assert stored.exchange_order_id == new.id
    assert stored.lines[0]["credit"] == credit


def test_exchanged_units_and_credit_cannot_be_refunded_again(
    engine: Engine, admin_desk: Desk, agent: Desk, wes: Desk
) -> None:
    """The exchange gave the returned mug's value back as credit: refunding that
    mug (or the whole order) afterwards would pay it out twice."""
    number = shipped(admin_desk)
    r = agent.returns.request(number, [ReturnPick("MUG-BLUE", 2)], "wrong item")
    agent.returns.authorize(r.id)
    wes.returns.receive(r.id, [ReceivedItem("MUG-BLUE", 2, "resellable")])
    res = agent.returns.exchange(r.id, [("tee-m", 1)])
    opts = agent.refunds.options(number)
    mug = next(ln for ln in opts.lines if ln.sku == "MUG-BLUE")
    assert mug.refundable == 0
    assert opts.refundable == get_order(engine, number).paid - res.credit
    before = db_state(engine)
    with pytest.raises(RuleViolation, match="only 0 of 2 left to refund"):
        agent.refunds.create(
            number, RefundRequest(reason="damaged", lines=[LinePick(mug.line_id, 1)])
        )
    with pytest.raises(RuleViolation, match="can be refunded"):
        agent.refunds.create(
            number, RefundRequest(reason="other", amount=get_order(engine, number).paid)
        )
    assert db_state(engine) == before


def test_exchange_for_less_refunds_the_difference_and_settles_the_new_order(
    engine: Engine, admin_desk: Desk, agent: Desk, wes: Desk
) -> None:
    number = shipped(admin_desk)
    r = to_status(agent, wes, number, "received")  # 2 mugs back: 29.75 credit
    res = agent.returns.exchange(r.id, [("MUG-BLUE", 1)])  # one mug: 14.88
    assert (res.credit, res.difference) == (MUG_LINE, 1488 - MUG_LINE)
    (refund,) = refunds_of(engine, number)
    assert res.refund_id == refund.id
    assert (refund.amount, refund.reason, refund.return_id, refund.idempotency_key) == (
        MUG_LINE - 1488,
        "return",
        r.id,
        f"exchange-{r.id}",
    )
    assert agent.returns.get(r.id).refund_id == refund.id
    new = get_order(engine, res.order_number)
    assert (new.discount, new.total) == (1488, 0)
    # nothing to pay: the new order moves on to be shipped
    assert (new.status, new.payment_status) == ("processing", "paid")
    (pay,) = rows(engine, Payment, res.order_number)
    assert (pay.gateway, pay.amount, pay.captured) == ("exchange", 0, 0)
    new_kinds = kinds(engine, res.order_number)
    assert new_kinds.index("return_exchanged") < new_kinds.index("payment_confirmed")


def test_exchange_crash_after_placing_does_not_place_twice(
    engine: Engine, admin_desk: Desk, agent: Desk, wes: Desk, monkeypatch: pytest.MonkeyPatch
) -> None:
    number = shipped(admin_desk)
    # everything comes back, so after the difference refund less is refundable
    # than the credit: the retry must not count its own refund against it
    r = agent.returns.request(number, [ReturnPick("MUG-BLUE", 2), ReturnPick("TEE-M", 1)], "other")
    agent.returns.authorize(r.id)
    wes.returns.receive(
        r.id, [ReceivedItem("MUG-BLUE", 2, "resellable"), ReceivedItem("TEE-M", 1, "resellable")]
    )
    real = returns_mod.ReturnService._mark_exchanged

    def crash(*_a: Any, **_k: Any) -> Any:
        raise RuntimeError("power cut")

    monkeypatch.setattr(returns_mod.ReturnService, "_mark_exchanged", crash)
    orders_before = order_count(engine)
    with pytest.raises(RuntimeError):
        agent.returns.exchange(r.id, [("MUG-BLUE", 1)])
    # the order and the difference refund were committed; the return was not
    assert order_count(engine) == orders_before + 1
    assert len(refunds_of(engine, number)) == 1
    assert ret_row(engine, r.id).status == "received"

    monkeypatch.setattr(returns_mod.ReturnService, "_mark_exchanged", real)
    res = agent.returns.exchange(r.id, [("MUG-BLUE", 1)])
    assert order_count(engine) == orders_before + 1  # the same replacement order
    (refund,) = refunds_of(engine, number)  # the same difference refund
    credit = MUG_LINE + TEE_LINE
    assert (res.refund_id, res.credit, res.difference, res.ret.status) == (
        refund.id,
        credit,
        1488 - credit,
        "exchanged",
    )
    assert refund.amount == credit - 1488
    assert get_order(engine, res.order_number).status == "processing"


def test_exchange_that_cannot_be_linked_withdraws_its_order(
    engine: Engine, admin_desk: Desk, agent: Desk, wes: Desk, monkeypatch: pytest.MonkeyPatch
) -> None:
    number = shipped(admin_desk)
    r = to_status(agent, wes, number, "received")

    def lost_race(*_a: Any, **_k: Any) -> Any:
        raise RuleViolation("the return is exchanged; exchange needs it received")

    monkeypatch.setattr(returns_mod.ReturnService, "_mark_exchanged", lost_race)
    reserved = product(engine, "TEE-M").stock_reserved
    with pytest.raises(RuleViolation):
        agent.returns.exchange(r.id, [("TEE-M", 1)])
    with read_session(engine) as s:
        placed = s.execute(select(Order).order_by(Order.id.desc()).limit(1)).scalar_one()  # type: ignore[union-attr]
    assert placed.number != number and placed.status == "cancelled"
    assert product(engine, "TEE-M").stock_reserved == reserved


# -- refund safety --------------------------------------------------------------------


def test_crash_between_refund_and_return_is_completed_by_a_retry(
    engine: Engine, admin_desk: Desk, agent: Desk, wes: Desk, monkeypatch: pytest.MonkeyPatch
) -> None:
    number = shipped(admin_desk)
    r = to_status(agent, wes, number, "received")
    real = returns_mod.ReturnService._step

    @contextmanager
    def crash_on_refund(self: Any, return_id: int, step: str, ev: int | None) -> Iterator[Any]:
        if step == "refund":
            raise RuntimeError("power cut")
        with real(self, return_id, step, ev) as got:
            yield got

    monkeypatch.setattr(returns_mod.ReturnService, "_step", crash_on_refund)
    with pytest.raises(RuntimeError):
        agent.returns.refund(r.id)
    (made,) = refunds_of(engine, number)
    assert made.return_id == r.id and ret_row(engine, r.id).status == "received"

    monkeypatch.setattr(returns_mod.ReturnService, "_step", real)
    again = agent.returns.refund(r.id)
    assert again.id == made.id
    assert len(refunds_of(engine, number)) == 1
    assert (ret_row(engine, r.id).status, ret_row(engine, r.id).refund_id) == ("refunded", made.id)


def test_refund_twice_is_refused_and_makes_one_refund(
    engine: Engine, admin_desk: Desk, agent: Desk, wes: Desk
) -> None:
    number = shipped(admin_desk)
    r = to_status(agent, wes, number, "received")
    agent.returns.refund(r.id)
    before = db_state(engine)
    with pytest.raises(RuleViolation, match="the return is refunded; refund needs it received"):
        agent.returns.refund(r.id)
    assert db_state(engine) == before
    assert len(refunds_of(engine, number)) == 1


def test_two_operators_refunding_at_once_make_one_refund(
    engine: Engine, admin_desk: Desk, agent: Desk, wes: Desk, monkeypatch: pytest.MonkeyPatch
) -> None:
    number = shipped(admin_desk)
    r = to_status(agent, wes, number, "received")
    real = returns_mod.RefundService.create
    raced: list[Any] = []

    def create_then_race(self: Any, *a: Any, **k: Any) -> Any:
        refund = real(self, *a, **k)
        if not raced:  # the other operator completes the whole step meanwhile
            raced.append(None)
            raced.append(admin_desk.returns.refund(r.id))
        return refund

    monkeypatch.setattr(returns_mod.RefundService, "create", create_then_race)
    mine = agent.returns.refund(r.id)
    assert mine.id == raced[1].id
    assert len(refunds_of(engine, number)) == 1
    assert kinds(engine, number).count("return_refunded") == 1
    assert ret_row(engine, r.id).refund_id == mine.id


def test_refund_the_rules_refuse_changes_nothing(
    engine: Engine, admin_desk: Desk, agent: Desk, wes: Desk
) -> None:
    number = shipped(admin_desk)
    r = to_status(agent, wes, number, "received")
    total = get_order(engine, number).total
    admin_desk.refunds.create(number, RefundRequest(reason="other", amount=total))
    before = db_state(engine)
    with pytest.raises(RuleViolation, match="nothing is left to refund"):
        agent.returns.refund(r.id)
    with pytest.raises(RuleViolation, match="no credit for return"):
        agent.returns.exchange(r.id, [("MUG-BLUE", 1)])
    assert db_state(engine) == before


def test_a_cancelled_return_refund_can_be_made_again(
    engine: Engine, admin_desk: Desk, agent: Desk, wes: Desk, monkeypatch: pytest.MonkeyPatch
) -> None:
    number = shipped(admin_desk)
    r = to_status(agent, wes, number, "received")

    @contextmanager
    def crash(self: Any, return_id: int, step: str, ev: int | None) -> Iterator[Any]:
        raise RuntimeError("power cut")
        yield  # pragma: no cover

    real = returns_mod.ReturnService._step
    monkeypatch.setattr(returns_mod.ReturnService, "_step", crash)
    with pytest.raises(RuntimeError):
        agent.returns.refund(r.id)
    monkeypatch.setattr(returns_mod.ReturnService, "_step", real)
    (first,) = refunds_of(engine, number)
    agent.refunds.cancel(int(first.id or 0), note="wrong payment")
    again = agent.returns.refund(r.id)
    assert again.id != first.id and again.idempotency_key == f"return-{r.id}-2"
    assert ret_row(engine, r.id).refund_id == again.id


def test_cancelling_a_returns_refund_reopens_the_return(
    engine: Engine, admin_desk: Desk, agent: Desk, wes: Desk
) -> None:
    number = shipped(admin_desk, lines=(("MUG-BLUE", 40),))  # 595.00: above the limit
    r = agent.returns.request(number, [ReturnPick("MUG-BLUE", 40)], "damaged")
    agent.returns.authorize(r.id)
    wes.returns.receive(r.id, [ReceivedItem("MUG-BLUE", 40, "damaged")])
    first = agent.returns.refund(r.id)
    assert first.status == "requested" and ret_row(engine, r.id).status == "refunded"
    agent.refunds.cancel(int(first.id or 0), note="customer keeps a voucher instead")
    back = ret_row(engine, r.id)
    assert (back.status, back.refund_id) == ("received", None)
    assert kinds(engine, number)[-2:] == ["refund_cancelled", "return_reopened"]
    assert return_audits(engine, r.id)[-1] == "return.reopen"
    # its units can be refunded again (a new key) or exchanged
    again = admin_desk.returns.refund(r.id, approve=True)
    assert again.idempotency_key == f"return-{r.id}-2" and again.status == "approved"
    assert ret_row(engine, r.id).refund_id == again.id


def test_cancelling_another_refund_leaves_the_return_alone(
    engine: Engine, admin_desk: Desk, agent: Desk, wes: Desk
) -> None:
    number = shipped(admin_desk, lines=(("MUG-BLUE", 2), ("TEE-M", 1)))
    r = to_status(agent, wes, number, "received")
    made = agent.returns.refund(r.id)
    other = agent.refunds.create(number, RefundRequest(reason="customer_request", amount=100))
    agent.refunds.cancel(int(other.id or 0))
    assert (ret_row(engine, r.id).status, ret_row(engine, r.id).refund_id) == ("refunded", made.id)
    assert "return_reopened" not in kinds(engine, number)


def test_refund_above_the_limit_waits_unless_an_admin_approves(
    engine: Engine, admin_desk: Desk, agent: Desk, wes: Desk
) -> None:
    number = shipped(admin_desk, lines=(("MUG-BLUE", 40),))  # 595.00 > 500.00
    r = agent.returns.request(number, [ReturnPick("MUG-BLUE", 40)], "damaged")
    agent.returns.authorize(r.id)
    wes.returns.receive(r.id, [ReceivedItem("MUG-BLUE", 40, "damaged")])
    before = db_state(engine)
    with pytest.raises(Denied):
        agent.returns.refund(r.id, approve=True)
    assert db_state(engine) == before
    assert agent.returns.refund(r.id).status == "requested"


# -- who may do what ------------------------------------------------------------------

STEPS: dict[str, tuple[str, Callable[[Desk, int], Any]]] = {
    # step: (status the return must be in, the call)
    "request": ("", lambda d, _rid: None),
    "authorize": ("requested", lambda d, rid: d.returns.authorize(rid)),
    "reject": ("requested", lambda d, rid: d.returns.reject(rid, "no")),
    "receive": (
        "authorized",
        lambda d, rid: d.returns.receive(rid, [ReceivedItem("MUG-BLUE", 2, "resellable")]),
    ),
    "refund": ("received", lambda d, rid: d.returns.refund(rid)),
    "exchange": ("received", lambda d, rid: d.returns.exchange(rid, [("MUG-BLUE", 1)])),
}


@pytest.mark.parametrize(
    ("step", "role"),
    [
        ("request", "viewer"),
        ("request", "warehouse"),
        ("authorize", "viewer"),
        ("authorize", "warehouse"),
        ("reject", "warehouse"),
        ("receive", "viewer"),
        ("refund", "viewer"),
        ("refund", "warehouse"),
        ("exchange", "warehouse"),
    ],
)
def test_each_step_is_refused_for_a_role_that_may_not(
    engine: Engine, admin_desk: Desk, desks: dict[str, Desk], step: str, role: str
) -> None:
    number = shipped(admin_desk)
    status, call = STEPS[step]
    rid = to_status(desks["agent"], desks["warehouse"], number, status).id if status else 0
    before = db_state(engine)
    with pytest.raises(Denied, match=f"a {role} may not"):
        if step == "request":
            desks[role].returns.request(number, [ReturnPick("MUG-BLUE", 1)], "damaged")
        else:
            call(desks[role], rid)
    assert db_state(engine) == before


@pytest.mark.parametrize("step", ["receive"])
def test_agents_and_admins_may_receive_too(
    admin_desk: Desk, desks: dict[str, Desk], step: str
) -> None:
    number = shipped(admin_desk)
    status, call = STEPS[step]
    rid = to_status(desks["agent"], desks["warehouse"], number, status).id
    assert call(desks["agent"], rid).status == "received"


def test_viewers_may_read_returns(admin_desk: Desk, desks: dict[str, Desk]) -> None:
    number = shipped(admin_desk)
    r = to_status(desks["agent"], desks["warehouse"], number, "requested")
    viewer = desks["viewer"]
    assert viewer.returns.get(r.id).status == "requested"
    assert [x.id for x in viewer.returns.list_returns(order_ref=number)] == [r.id]
    assert viewer.returns.options(number).number == number


# -- bad input and wrong status -------------------------------------------------------


@pytest.mark.parametrize(
    ("picks", "reason", "error", "message"),
    [
        ([ReturnPick("NOPE-1", 1)], "damaged", InvalidInput, "NOPE-1 is not on this order"),
        ([ReturnPick("CAP-RED", 1)], "damaged", InvalidInput, "CAP-RED is not on this order"),
        ([ReturnPick("MUG-BLUE", 3)], "damaged", RuleViolation, "only 2 unit"),
        (
            [ReturnPick("MUG-BLUE", 2), ReturnPick("MUG-BLUE", 1)],
            "damaged",
            RuleViolation,
            "asked 3",
        ),
        ([ReturnPick("MUG-BLUE", 0)], "damaged", InvalidInput, "at least 1"),
        ([], "damaged", InvalidInput, "at least one line"),
        ([ReturnPick("MUG-BLUE", 1)], "bored", InvalidInput, "unknown refund reason 'bored'"),
        ([ReturnPick("MUG-BLUE", 1)], "order_cancelled", InvalidInput, "not a return reason"),
    ],
)
def test_bad_requests_are_refused_and_change_nothing(
    engine: Engine,
    admin_desk: Desk,
    agent: Desk,
    picks: list[ReturnPick],
    reason: str,
    error: type[Exception],
    message: str,
) -> None:
    number = shipped(admin_desk)
    before = db_state(engine)
    with pytest.raises(error, match=message):
        agent.returns.request(number, picks, reason)
    assert db_state(engine) == before


def test_units_in_an_open_return_cannot_be_asked_twice(
    engine: Engine, admin_desk: Desk, agent: Desk
) -> None:
    number = shipped(admin_desk)
    agent.returns.request(number, [ReturnPick("MUG-BLUE", 2)], "damaged")
    before = db_state(engine)
    with pytest.raises(RuleViolation, match="MUG-BLUE: only 0 unit"):
        agent.returns.request(number, [ReturnPick("MUG-BLUE", 1)], "damaged")
    assert db_state(engine) == before


@pytest.mark.parametrize("state", ["pending", "processing", "cancelled"])
def test_orders_with_nothing_shipped_refuse_a_return(
    engine: Engine, admin_desk: Desk, agent: Desk, state: str
) -> None:
    o = place(admin_desk)
    if state == "processing":
        admin_desk.orders.confirm_payment(o.number)
    if state == "cancelled":
        admin_desk.orders.cancel(o.number, reason="customer_request")
    before = db_state(engine)
    expected = {
        "pending": "nothing was paid and shipped yet",
        "processing": "only 0 unit",
        "cancelled": "the order is cancelled",
    }[state]
    with pytest.raises(RuleViolation, match=expected):
        agent.returns.request(o.number, [ReturnPick("MUG-BLUE", 1)], "damaged")
    assert db_state(engine) == before
    if state != "processing":
        assert agent.returns.options(o.number).problem is not None


@pytest.mark.parametrize(
    ("items", "error", "message"),
    [
        ([ReceivedItem("TEE-M", 1, "resellable")], InvalidInput, "TEE-M is not in this return"),
        ([ReceivedItem("MUG-BLUE", 3, "resellable")], RuleViolation, "2 unit.* authorised, 3"),
        (
            [ReceivedItem("MUG-BLUE", 2, "resellable"), ReceivedItem("MUG-BLUE", 1, "damaged")],
            RuleViolation,
            "authorised, 3 received",
        ),
        ([ReceivedItem("MUG-BLUE", 1, "soggy")], InvalidInput, "unknown condition 'soggy'"),
        ([ReceivedItem("MUG-BLUE", 0, "damaged")], InvalidInput, "at least 1"),
        ([], InvalidInput, "at least one received unit"),
    ],
)
def test_bad_receipts_are_refused_and_change_nothing(
    engine: Engine,
    admin_desk: Desk,
    agent: Desk,
    wes: Desk,
    items: list[ReceivedItem],
    error: type[Exception],
    message: str,
) -> None:
    number = shipped(admin_desk)
    r = to_status(agent, wes, number, "authorized")
    before = db_state(engine)
    with pytest.raises(error, match=message):
        wes.returns.receive(r.id, items)
    assert db_state(engine) == before


@pytest.mark.parametrize(
    ("status", "step", "message"),
    [
        ("requested", "receive", "the return is requested; receive needs it authorized"),
        ("requested", "refund", "the return is requested; refund needs it received"),
        ("requested", "exchange", "the return is requested; exchange needs it received"),
        ("authorized", "authorize", "the return is authorized; authorize needs it requested"),
        ("authorized", "refund", "the return is authorized; refund needs it received"),
        ("received", "reject", "the return is received; reject needs it requested"),
        ("received", "receive", "the return is received; receive needs it authorized"),
    ],
)
def test_steps_out_of_order_are_refused_and_change_nothing(
    engine: Engine,
    admin_desk: Desk,
    agent: Desk,
    wes: Desk,
    status: str,
    step: str,
    message: str,
) -> None:
    number = shipped(admin_desk)
    r = to_status(agent, wes, number, status)
    before = db_state(engine)
    with pytest.raises(RuleViolation, match=message):
        STEPS[step][1](agent, r.id)
    assert db_state(engine) == before


def test_bad_exchanges_are_refused_and_change_nothing(
    engine: Engine, admin_desk: Desk, agent: Desk, wes: Desk
) -> None:
    number = shipped(admin_desk)
    r = to_status(agent, wes, number, "received")
    before = db_state(engine)
    with pytest.raises(NotFound, match="no product NOPE-1"):
        agent.returns.exchange(r.id, [("NOPE-1", 1)])
    with pytest.raises(InvalidInput, match="priced in USD"):
        agent.returns.exchange(r.id, [("CAP-RED", 1)])
    with pytest.raises(InvalidInput, match="at least one replacement line"):
        agent.returns.exchange(r.id, [])
    with pytest.raises(InvalidInput, match="whole number of at least 1"):
        agent.returns.exchange(r.id, [("TEE-M", 0)])
    with pytest.raises(RuleViolation, match="only .* in stock"):
        agent.returns.exchange(r.id, [("TEE-M", 9999)])
    with pytest.raises(InvalidInput, match="payment #999 is not a payment of"):
        agent.returns.exchange(r.id, [("MUG-BLUE", 1)], payment_id=999)
    assert db_state(engine) == before


def test_unknown_return_and_status(agent: Desk) -> None:
    with pytest.raises(NotFound, match="no return #999"):
        agent.returns.authorize(999)
    with pytest.raises(NotFound, match="no return #999"):
        agent.returns.get(999)
    with pytest.raises(InvalidInput, match="unknown return status 'lost'"):
        agent.returns.list_returns(status="lost")
    with pytest.raises(NotFound, match="no order PB-999999"):
        agent.returns.request("PB-999999", [ReturnPick("MUG-BLUE", 1)], "damaged")


# -- optimistic locking ----------------------------------------------------------------


def test_stale_version_is_a_conflict_and_changes_nothing(
    engine: Engine, admin_desk: Desk, agent: Desk, wes: Desk
) -> None:
    number = shipped(admin_desk)
    seen = agent.returns.options(number).version
    admin_desk.orders.add_note(number, "someone else was here")
    before = db_state(engine)
    with pytest.raises(Conflict, match="changed by someone else"):
        agent.returns.request(number, [ReturnPick("MUG-BLUE", 1)], "damaged", expected_version=seen)
    assert db_state(engine) == before

    r = agent.returns.request(
        number, [ReturnPick("MUG-BLUE", 2)], "damaged", expected_version=seen + 1
    )
    before = db_state(engine)
    with pytest.raises(Conflict):
        agent.returns.authorize(r.id, expected_version=seen)
    assert db_state(engine) == before
    agent.returns.authorize(r.id, expected_version=get_order(engine, number).version)
    received = wes.returns.receive(r.id, [ReceivedItem("MUG-BLUE", 2, "damaged")])
    before = db_state(engine)
    with pytest.raises(Conflict):
        agent.returns.exchange(received.id, [("MUG-BLUE", 1)], expected_version=seen)
    assert db_state(engine) == before


def test_every_step_bumps_the_order_version(admin_desk: Desk, agent: Desk, wes: Desk) -> None:
    number = shipped(admin_desk)
    versions = [agent.returns.options(number).version]
    r = to_status(agent, wes, number, "requested")
    versions.append(agent.returns.options(number).version)
    agent.returns.authorize(r.id)
    versions.append(agent.returns.options(number).version)
    wes.returns.receive(r.id, [ReceivedItem("MUG-BLUE", 1, "damaged")])
    versions.append(agent.returns.options(number).version)
    assert versions == sorted(set(versions)) and len(versions) == 4


# -- reads -------------------------------------------------------------------------------


def test_list_returns_open_first_and_filters(admin_desk: Desk, agent: Desk, wes: Desk) -> None:
    a = shipped(admin_desk)
    b = shipped(admin_desk)
    first = to_status(agent, wes, a, "requested")
    agent.returns.reject(first.id, "no")
    second = to_status(agent, wes, b, "authorized")
    third = agent.returns.request(a, [ReturnPick("TEE-M", 1)], "damaged")
    assert [x.id for x in agent.returns.list_returns()] == [third.id, second.id, first.id]
    assert [x.id for x in agent.returns.list_returns(status="rejected")] == [first.id]
    assert [x.id for x in agent.returns.list_returns(order_ref=a)] == [third.id, first.id]
    assert agent.returns.counts()["requested"] == 1
    row = agent.returns.get(second.id)
    assert (row.order_number, row.currency, row.exchange_order_number) == (b, "EUR", None)
