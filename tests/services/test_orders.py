"""Order use cases on a temporary SQLite file: change, event, audit, rollback, conflicts."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Engine, MetaData, select, text, update
from sqlmodel import SQLModel

from pulse_tui.domain.status import CancelReason
from pulse_tui.services import orders as orders_mod
from pulse_tui.services.desk import Desk
from pulse_tui.services.errors import Conflict, InvalidInput, NotFound, RuleViolation
from pulse_tui.services.orders import AddressInput, LineRequest
from pulse_tui.storage import queries
from pulse_tui.storage.db import read_session, write_session
from pulse_tui.storage.models import (
    AuditEntry,
    Order,
    OrderEvent,
    OrderLine,
    OrderTag,
    Payment,
    Product,
    Refund,
    Shipment,
)
from tests import factories
from tests.factories import ADMIN, place

# -- helpers (imported by the other service tests) ---------------------------


def db_state(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table (and the FTS index), for "nothing changed" checks."""
    md: MetaData = SQLModel.metadata
    out: dict[str, list[tuple[Any, ...]]] = {}
    with engine.connect() as conn:
        for table in md.sorted_tables:
            out[table.name] = sorted((tuple(r) for r in conn.execute(table.select())), key=repr)
        out["order_search"] = [
            tuple(r) for r in conn.execute(text("SELECT rowid, * FROM order_search ORDER BY rowid"))
        ]
    return out


def get_order(engine: Engine, number: str) -> Order:
    with read_session(engine) as s:
        o = queries.find_order(s, number)
        assert o is not None
        return o


def events(engine: Engine, number: str) -> list[OrderEvent]:
    with read_session(engine) as s:
        o = queries.find_order(s, number)
        assert o is not None
        return list(
            s.execute(
                select(OrderEvent).where(OrderEvent.order_id == o.id).order_by(OrderEvent.id)
            ).scalars()
        )


def audits(engine: Engine, number: str) -> list[AuditEntry]:
    with read_session(engine) as s:
        return queries.audit_entries(s, "order", number)


def product(engine: Engine, sku: str) -> Product:
    with read_session(engine) as s:
        return s.execute(select(Product).where(Product.sku == sku)).scalar_one()


def rows(engine: Engine, model: type, number: str) -> list[Any]:
    with read_session(engine) as s:
        o = queries.find_order(s, number)
        assert o is not None
        return list(s.execute(select(model).where(model.order_id == o.id)).scalars())  # type: ignore[attr-defined]


def set_order(engine: Engine, number: str, **values: Any) -> None:
    """Simulate what another subsystem (payment sync) would have done."""
    with write_session(engine) as s:
        s.execute(update(Order).where(Order.number == number).values(**values))


def shipped_order(d: Desk) -> Order:
    o = place(d)
    d.orders.confirm_payment(o.number)
    return d.orders.ship(o.number, carrier="DHL", tracking="JD0001")


# -- place -------------------------------------------------------------------


def test_place_creates_order_lines_event_audit_and_reserves_stock(
    engine: Engine, admin_desk: Desk
) -> None:
    o = place(admin_desk, lines=(("MUG-BLUE", 2), ("EBOOK-PY", 1)))
    got = get_order(engine, o.number)
    assert got.number == "PB-100001"
    assert (got.status, got.payment_status, got.fulfillment_status) == (
        "pending",
        "unpaid",
        "unfulfilled",
    )
    assert got.version == 1
    # 2 × 12.50 at 19 % = 25.00 + 4.75; ebook 19.99 at 7 % = 1.3993 → 1.40
    assert (got.subtotal, got.tax, got.shipping, got.total) == (2975 + 2139, 475 + 140, 495, 5609)
    assert got.has_physical and got.item_count == 3 and got.country == "DE"
    lines = rows(engine, OrderLine, o.number)
    assert sorted((ln.sku, ln.quantity, ln.tax, ln.line_total) for ln in lines) == [
        ("EBOOK-PY", 1, 140, 2139),
        ("MUG-BLUE", 2, 475, 2975),
    ]
    assert product(engine, "MUG-BLUE").stock_reserved == 2
    assert product(engine, "EBOOK-PY").stock_reserved == 0  # digital: nothing to reserve
    (ev,) = events(engine, o.number)
    assert (ev.kind, ev.actor) == ("placed", "ada")
    assert "3 item(s)" in ev.message and "€56.09" in ev.message
    (au,) = audits(engine, o.number)
    assert (au.action, au.actor, au.before) == ("order.place", "ada", None)
    assert au.after is not None and au.after["total"] == 5609 and au.after["status"] == "pending"
    with read_session(engine) as s:
        page = queries.list_orders(s, queries.OrderFilter(text="mug"))
    assert [r.number for r in page.rows] == [o.number]


def test_place_with_note_and_tax_inclusive(engine: Engine, admin_desk: Desk) -> None:
    o = admin_desk.orders.place(
        customer_id=1,
        lines=[LineRequest("mug-blue", 1), LineRequest("MUG-BLUE", 1)],
        currency="eur",
        shipping_address=AddressInput("A", "1 St", "Berlin", "de"),
        tax_inclusive=True,
        discount=100,
        note="leave at the door",
    )
    got = get_order(engine, o.number)
    # one line of 2 (same SKU merged); 2500 gross at 19 % → tax 399
    assert [(ln.quantity, ln.tax, ln.line_total) for ln in rows(engine, OrderLine, o.number)] == [
        (2, 399, 2500)
    ]
    assert (got.tax, got.discount, got.total, got.currency) == (399, 100, 2400, "EUR")
    assert got.shipping_address["country"] == "DE"
    assert [e.kind for e in events(engine, o.number)] == ["placed", "note"]


def test_order_numbers_ascend(admin_desk: Desk) -> None:
    numbers = [place(admin_desk).number for _ in range(3)]
    assert numbers == ["PB-100001", "PB-100002", "PB-100003"]


def _deactivate(engine: Engine, sku: str) -> None:
    with write_session(engine) as s:
        s.execute(update(Product).where(Product.sku == sku).values(active=False))


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"lines": (("NOPE-1", 1),)}, NotFound, "no product NOPE-1"),
        ({"lines": (("MUG-BLUE", 499),)}, RuleViolation, "MUG-BLUE: only 498 in stock, 499 wanted"),
        (
            {"lines": (("MUG-BLUE", 300), ("mug-blue", 199))},
            RuleViolation,
            "only 498 in stock, 499 wanted",
        ),
        ({"lines": (("MUG-BLUE", 0),)}, InvalidInput, "quantity must be at least 1, got 0"),
        ({"lines": (("MUG-BLUE", -3),)}, InvalidInput, "quantity must be at least 1, got -3"),
        ({"lines": (("MUG-BLUE", 1.5),)}, InvalidInput, "quantity must be a whole number"),
        ({"lines": ()}, InvalidInput, "at least one line"),
        (
            {"lines": (("MUG-BLUE", 1), ("CAP-RED", 1))},
            InvalidInput,
            "CAP-RED is priced in USD, the order is in EUR",
        ),
        ({"currency": "XYZ"}, InvalidInput, "unknown currency 'XYZ'"),
        ({"currency": "USD"}, InvalidInput, "MUG-BLUE is priced in EUR, the order is in USD"),
        ({"country": "XX"}, InvalidInput, "unknown country 'XX'"),
        ({"country": "Germany"}, InvalidInput, "unknown country"),
        ({"customer_id": 999}, NotFound, "no customer #999"),
        ({"shipping": -1}, InvalidInput, "shipping must be at least 0"),
        ({"inactive": "MUG-BLUE"}, InvalidInput, "MUG-BLUE is not active"),
    ],
)
def test_place_validation_changes_nothing(
    engine: Engine, admin_desk: Desk, kwargs: dict[str, Any], error: type, message: str
) -> None:
    place(admin_desk)  # something already there
    if "inactive" in kwargs:
        _deactivate(engine, kwargs.pop("inactive"))
    before = db_state(engine)
    with pytest.raises(error) as exc:
        place(admin_desk, **kwargs)
    assert message in str(exc.value)
    assert db_state(engine) == before


def test_place_note_with_card_number_is_refused(engine: Engine, admin_desk: Desk) -> None:
    before = db_state(engine)
    with pytest.raises(InvalidInput, match="card number"):
        admin_desk.orders.place(
            customer_id=1,
            lines=[LineRequest("MUG-BLUE", 1)],
            currency="EUR",
            shipping_address=AddressInput("A", "1 St", "Berlin", "DE"),
            note="card 4111 1111 1111 1111",
        )
    assert db_state(engine) == before


# -- payment, processing -----------------------------------------------------


def test_confirm_payment_refuses_a_card_number_as_reference(
    engine: Engine, admin_desk: Desk
) -> None:
    o = place(admin_desk)
    before = db_state(engine)
    with pytest.raises(InvalidInput, match="card number"):
        admin_desk.orders.confirm_payment(o.number, reference="4111-1111-1111-1111")
    assert db_state(engine) == before


def test_confirm_payment(engine: Engine, admin_desk: Desk) -> None:
    o = place(admin_desk)
    admin_desk.orders.confirm_payment(
        o.number,
        expected_version=1,
        gateway="stripe",
        method="card",
        reference="pi_1",
        card_brand="visa",
        card_last4="4242",
    )
    got = get_order(engine, o.number)
    assert (got.status, got.payment_status, got.paid, got.version) == (
        "processing",
        "paid",
        got.total,
        2,
    )
    (pay,) = rows(engine, Payment, o.number)
    assert (pay.gateway, pay.method, pay.gateway_ref, pay.amount, pay.captured) == (
        "stripe",
        "card",
        "pi_1",
        got.total,
        got.total,
    )
    assert (pay.card_brand, pay.card_last4, pay.status) == ("visa", "4242", "paid")
    evs = events(engine, o.number)
    assert [e.kind for e in evs] == ["placed", "payment_confirmed", "status"]
    assert evs[1].data == {"reference": "pi_1"}
    assert evs[2].message == "pending → processing"
    au = audits(engine, o.number)[-1]
    assert au.action == "order.confirm_payment"
    assert au.before is not None and au.after is not None
    assert (au.before["status"], au.before["payment_status"], au.before["version"]) == (
        "pending",
        "unpaid",
        1,
    )
    assert (au.after["status"], au.after["payment_status"], au.after["version"]) == (
        "processing",
        "paid",
        2,
    )
    with pytest.raises(RuleViolation, match="already paid"):
        admin_desk.orders.confirm_payment(o.number)


def test_confirm_payment_refusals(engine: Engine, admin_desk: Desk) -> None:
    o = place(admin_desk)
    before = db_state(engine)
    with pytest.raises(InvalidInput, match="four digits"):
        admin_desk.orders.confirm_payment(o.number, card_last4="42")
    with pytest.raises(NotFound, match="no order PB-999999"):
        admin_desk.orders.confirm_payment("PB-999999")
    assert db_state(engine) == before
    admin_desk.orders.cancel(o.number, reason="fraud")
    before = db_state(engine)
    with pytest.raises(RuleViolation, match="is cancelled: no payment can be taken"):
        admin_desk.orders.confirm_payment(o.number)
    assert db_state(engine) == before


def test_start_processing(engine: Engine, admin_desk: Desk) -> None:
    o = place(admin_desk)
    before = db_state(engine)
    with pytest.raises(RuleViolation, match="payment is unpaid: confirm the payment first"):
        admin_desk.orders.start_processing(o.number)
    assert db_state(engine) == before
    set_order(engine, o.number, payment_status="authorized")
    admin_desk.orders.start_processing(o.number, expected_version=1)
    got = get_order(engine, o.number)
    assert (got.status, got.version) == ("processing", 2)
    assert events(engine, o.number)[-1].kind == "status"
    au = audits(engine, o.number)[-1]
    assert au.action == "order.start_processing"
    assert au.before["status"] == "pending" and au.after["status"] == "processing"  # type: ignore[index]


# -- fulfilment --------------------------------------------------------------


def test_ship_and_deliver(engine: Engine, admin_desk: Desk) -> None:
    o = place(admin_desk, lines=(("MUG-BLUE", 2), ("TEE-M", 1)))
    admin_desk.orders.confirm_payment(o.number)
    admin_desk.orders.ship(o.number, carrier=" DHL ", tracking="JD 0001 2345", expected_version=2)
    got = get_order(engine, o.number)
    assert (got.status, got.fulfillment_status, got.version) == ("shipped", "fulfilled", 3)
    (sh,) = rows(engine, Shipment, o.number)
    assert (sh.carrier, sh.tracking_number, sh.status) == ("DHL", "JD00012345", "shipped")
    assert sorted((x["sku"], x["quantity"]) for x in sh.lines) == [("MUG-BLUE", 2), ("TEE-M", 1)]
    assert all(ln.qty_fulfilled == ln.quantity for ln in rows(engine, OrderLine, o.number))
    mug = product(engine, "MUG-BLUE")
    assert (mug.stock_on_hand, mug.stock_reserved) == (498, 0)
    ev = events(engine, o.number)[-1]
    assert ev.kind == "shipped" and ev.data["tracking"] == "JD00012345"
    assert audits(engine, o.number)[-1].action == "order.ship"
    with read_session(engine) as s:
        assert [
            r.number for r in queries.list_orders(s, queries.OrderFilter(text="jd00012345")).rows
        ] == [o.number]

    admin_desk.orders.deliver(o.number, expected_version=3)
    got = get_order(engine, o.number)
    assert (got.status, got.version) == ("delivered", 4)
    (sh,) = rows(engine, Shipment, o.number)
    assert sh.status == "delivered" and sh.delivered_at is not None
    assert events(engine, o.number)[-1].kind == "delivered"
    au = audits(engine, o.number)[-1]
    assert au.action == "order.deliver" and au.after["status"] == "delivered"  # type: ignore[index]


def test_digital_order_delivers_without_shipping(engine: Engine, admin_desk: Desk) -> None:
    o = place(admin_desk, lines=(("EBOOK-PY", 1),), country="FR")
    admin_desk.orders.confirm_payment(o.number)
    before = db_state(engine)
    with pytest.raises(RuleViolation, match="only digital goods"):
        admin_desk.orders.ship(o.number, carrier="DHL", tracking="X1")
    assert db_state(engine) == before
    admin_desk.orders.deliver(o.number)
    got = get_order(engine, o.number)
    assert (got.status, got.fulfillment_status) == ("delivered", "fulfilled")
    assert rows(engine, Shipment, o.number) == []


def test_physical_order_cannot_skip_shipping(engine: Engine, admin_desk: Desk) -> None:
    o = place(admin_desk)
    admin_desk.orders.confirm_payment(o.number)
    before = db_state(engine)
    with pytest.raises(RuleViolation, match="physical goods: ship it first"):
        admin_desk.orders.deliver(o.number)
    with pytest.raises(InvalidInput, match="tracking number cannot be empty"):
        admin_desk.orders.ship(o.number, carrier="DHL", tracking=" ")
    assert db_state(engine) == before


# -- cancel ------------------------------------------------------------------


def test_cancel_pending_releases_stock(engine: Engine, admin_desk: Desk) -> None:
    o = place(admin_desk, lines=(("MUG-BLUE", 3),))
    assert product(engine, "MUG-BLUE").stock_reserved == 3
    admin_desk.orders.cancel(o.number, reason="customer_request", note="changed mind")
    got = get_order(engine, o.number)
    assert (got.status, got.cancel_reason, got.version) == ("cancelled", "customer_request", 2)
    assert product(engine, "MUG-BLUE").stock_reserved == 0
    assert product(engine, "MUG-BLUE").stock_on_hand == 500
    ev = events(engine, o.number)[-1]
    assert ev.kind == "cancelled" and ev.message == "Cancelled: customer request — changed mind"
    assert rows(engine, Refund, o.number) == []
    au = audits(engine, o.number)[-1]
    assert au.action == "order.cancel" and au.after["cancel_reason"] == "customer_request"  # type: ignore[index]


def test_cancel_paid_order_creates_its_refund_and_releases_stock(
    engine: Engine, admin_desk: Desk
) -> None:
    """The refund goes through the one refund path: an admin's is approved at
    once (sending it is the refund service's job, tested there)."""
    o = place(admin_desk, lines=(("MUG-BLUE", 2),))
    admin_desk.orders.hold(o.number, reason="address check")
    admin_desk.orders.confirm_payment(o.number)
    admin_desk.orders.cancel(o.number, reason=CancelReason.ADDRESS_INVALID)
    got = get_order(engine, o.number)
    assert (got.status, got.on_hold, got.hold_reason) == ("cancelled", False, None)
    (ref,) = rows(engine, Refund, o.number)
    assert (ref.amount, ref.currency, ref.status, ref.reason, ref.created_by) == (
        got.total,
        "EUR",
        "approved",
        "order_cancelled",
        "ada",
    )
    assert len(ref.idempotency_key) >= 32
    assert product(engine, "MUG-BLUE").stock_reserved == 0
    assert [e.kind for e in events(engine, o.number)][-3:] == [
        "cancelled",
        "refund_requested",
        "refund_approved",
    ]


def test_cancel_refusals(engine: Engine, admin_desk: Desk) -> None:
    o = shipped_order(admin_desk)
    before = db_state(engine)
    with pytest.raises(InvalidInput, match="unknown cancel reason 'bored'"):
        admin_desk.orders.cancel(o.number, reason="bored")
    with pytest.raises(RuleViolation, match="cannot go from shipped to cancelled"):
        admin_desk.orders.cancel(o.number, reason="other")
    assert db_state(engine) == before


# -- holds, notes, tags ------------------------------------------------------


def test_hold_blocks_fulfilment_until_released(engine: Engine, admin_desk: Desk) -> None:
    o = place(admin_desk)
    admin_desk.orders.confirm_payment(o.number)
    admin_desk.orders.hold(o.number, reason="address check", expected_version=2)
    got = get_order(engine, o.number)
    assert (got.on_hold, got.hold_reason, got.version) == (True, "address check", 3)
    ev = events(engine, o.number)[-1]
    assert (ev.kind, ev.data) == ("held", {"reason": "address check"})
    au = audits(engine, o.number)[-1]
    assert (
        au.action == "order.hold" and au.before["on_hold"] is False and au.after["on_hold"] is True
    )  # type: ignore[index]
    before = db_state(engine)
    with pytest.raises(RuleViolation, match="on hold: release it first"):
        admin_desk.orders.ship(o.number, carrier="DHL", tracking="T1")
    with pytest.raises(RuleViolation, match="already on hold"):
        admin_desk.orders.hold(o.number, reason="again")
    assert db_state(engine) == before

    admin_desk.orders.release(o.number, note="address fine")
    got = get_order(engine, o.number)
    assert (got.on_hold, got.hold_reason, got.version) == (False, None, 4)
    ev = events(engine, o.number)[-1]
    assert (ev.kind, ev.message, ev.data) == (
        "released",
        "Released from hold: address fine",
        {"was": "address check"},
    )
    assert audits(engine, o.number)[-1].action == "order.release"
    with pytest.raises(RuleViolation, match="not on hold"):
        admin_desk.orders.release(o.number)
    admin_desk.orders.ship(o.number, carrier="DHL", tracking="T1")


def test_add_note(engine: Engine, admin_desk: Desk) -> None:
    o = place(admin_desk)
    admin_desk.orders.add_note(o.number, "  gift wrap please ", expected_version=1)
    ev = events(engine, o.number)[-1]
    assert (ev.kind, ev.message, ev.actor) == ("note", "gift wrap please", "ada")
    assert get_order(engine, o.number).version == 2
    assert audits(engine, o.number)[-1].action == "order.note"
    before = db_state(engine)
    for bad, msg in [("", "cannot be empty"), ("4111-1111-1111-1111", "card number")]:
        with pytest.raises(InvalidInput, match=msg):
            admin_desk.orders.add_note(o.number, bad)
    assert db_state(engine) == before


def test_tag(engine: Engine, admin_desk: Desk) -> None:
    o = place(admin_desk)
    admin_desk.orders.tag(o.number, ["VIP", "gift"], expected_version=1)
    assert sorted(t.tag for t in rows(engine, OrderTag, o.number)) == ["gift", "vip"]
    ev = events(engine, o.number)[-1]
    assert (ev.kind, ev.message) == ("tagged", "Tags +gift +vip")
    au = audits(engine, o.number)[-1]
    assert au.action == "order.tag"
    assert au.before["tags"] == [] and au.after["tags"] == ["gift", "vip"]  # type: ignore[index]
    admin_desk.orders.tag(o.number, add=["rush"], remove=["gift"])
    assert sorted(t.tag for t in rows(engine, OrderTag, o.number)) == ["rush", "vip"]
    au = audits(engine, o.number)[-1]
    assert au.before["tags"] == ["gift", "vip"] and au.after["tags"] == ["rush", "vip"]  # type: ignore[index]
    assert get_order(engine, o.number).version == 3
    before = db_state(engine)
    with pytest.raises(RuleViolation, match="tags already as asked"):
        admin_desk.orders.tag(o.number, ["vip"])
    with pytest.raises(InvalidInput, match="bad tag"):
        admin_desk.orders.tag(o.number, ["no spaces"])
    with pytest.raises(InvalidInput, match="at least one tag"):
        admin_desk.orders.tag(o.number)
    assert db_state(engine) == before


# -- transition dispatch -----------------------------------------------------


def test_transition_dispatches_to_the_owning_use_case(engine: Engine, admin_desk: Desk) -> None:
    o = place(admin_desk)
    before = db_state(engine)
    for target, error, msg in [
        ("shipped", InvalidInput, "needs a carrier and tracking number"),
        ("refunded", RuleViolation, "set by the refund process"),
        ("pending", RuleViolation, "never goes back to pending"),
        ("bogus", InvalidInput, "unknown status 'bogus'"),
        ("processing", RuleViolation, "confirm the payment first"),
        ("delivered", RuleViolation, "cannot go from pending to delivered"),
    ]:
        with pytest.raises(error, match=msg):
            admin_desk.orders.transition(o.number, target)
    assert db_state(engine) == before

    set_order(engine, o.number, payment_status="authorized")
    admin_desk.orders.transition(o.number, " Processing ", expected_version=1)
    assert get_order(engine, o.number).status == "processing"
    assert audits(engine, o.number)[-1].action == "order.start_processing"

    with pytest.raises(InvalidInput, match="unknown cancel reason"):
        admin_desk.orders.transition(o.number, "cancelled", reason="meh")
    admin_desk.orders.transition(o.number, "cancelled", reason="fraud")
    got = get_order(engine, o.number)
    assert (got.status, got.cancel_reason) == ("cancelled", "fraud")
    assert audits(engine, o.number)[-1].action == "order.cancel"

    d = place(admin_desk, lines=(("EBOOK-PY", 1),))
    admin_desk.orders.confirm_payment(d.number)
    admin_desk.orders.transition(d.number, "delivered")
    assert get_order(engine, d.number).status == "delivered"

    p = place(admin_desk)
    admin_desk.orders.transition(p.number, "cancelled")
    assert get_order(engine, p.number).cancel_reason == "other"


def test_detail_and_offered(engine: Engine, admin_desk: Desk) -> None:
    o = shipped_order(admin_desk)
    d = admin_desk.orders.detail(o.number)
    assert d.order.number == o.number
    assert [e.kind for e in d.events] == ["shipped", "status", "payment_confirmed", "placed"]
    assert [t.action for t in admin_desk.orders.offered_transitions(d.order)] == ["deliver"]
    with pytest.raises(NotFound, match="no order PB-1"):
        admin_desk.orders.detail("PB-1")


# -- a failure mid-action leaves nothing behind ------------------------------


def _boom(*_a: Any, **_k: Any) -> None:
    raise RuntimeError("disk on fire")


def _paid(d: Desk) -> str:
    o = place(d)
    d.orders.confirm_payment(o.number)
    return o.number


def _held(d: Desk) -> str:
    o = place(d)
    d.orders.hold(o.number, reason="check")
    return o.number


ACTIONS = {
    "place": (lambda d: None, lambda d, n: place(d, lines=(("MUG-BLUE", 3),))),
    "confirm_payment": (lambda d: place(d).number, lambda d, n: d.orders.confirm_payment(n)),
    "start_processing": (
        lambda d: place(d).number,
        lambda d, n: (
            (set_order(d.engine, n, payment_status="authorized"), None)[1]
            or d.orders.start_processing(n)
        ),
    ),
    "ship": (_paid, lambda d, n: d.orders.ship(n, carrier="DHL", tracking="JD1")),
    "deliver": (
        lambda d: shipped_order(d).number,
        lambda d, n: d.orders.deliver(n),
    ),
    "cancel_paid": (_paid, lambda d, n: d.orders.cancel(n, reason="fraud")),
    "hold": (lambda d: place(d).number, lambda d, n: d.orders.hold(n, reason="x")),
    "release": (_held, lambda d, n: d.orders.release(n)),
    "note": (lambda d: place(d).number, lambda d, n: d.orders.add_note(n, "hello")),
    "tag": (lambda d: place(d).number, lambda d, n: d.orders.tag(n, ["vip"])),
}


@pytest.mark.parametrize("action", ACTIONS)
@pytest.mark.parametrize("patched", ["record_audit", "record_event"])
def test_failure_mid_action_leaves_nothing_behind(
    engine: Engine, admin_desk: Desk, monkeypatch: pytest.MonkeyPatch, action: str, patched: str
) -> None:
    setup, act = ACTIONS[action]
    number = setup(admin_desk)
    if action == "start_processing":
        set_order(engine, number, payment_status="authorized")
    before = db_state(engine)
    monkeypatch.setattr(orders_mod, patched, _boom)
    monkeypatch.setattr(orders_mod, patched + "s", _boom)  # the batch writers
    with pytest.raises(RuntimeError, match="disk on fire"):
        act(admin_desk, number)
    assert db_state(engine) == before
    monkeypatch.undo()
    act(admin_desk, number)  # and it works once the fault is gone
    assert db_state(engine) != before


def test_failure_after_the_second_event_rolls_back_everything(
    engine: Engine, admin_desk: Desk, monkeypatch: pytest.MonkeyPatch
) -> None:
    """confirm_payment writes a payment and two events; fail on the second."""
    o = place(admin_desk)
    before = db_state(engine)
    real = orders_mod.record_event
    calls: list[str] = []

    def flaky(*a: Any, **k: Any) -> Any:
        calls.append(a[3])
        if len(calls) == 2:
            raise RuntimeError("crash between events")
        return real(*a, **k)

    monkeypatch.setattr(orders_mod, "record_event", flaky)
    with pytest.raises(RuntimeError):
        admin_desk.orders.confirm_payment(o.number)
    assert calls == ["payment_confirmed", "status"]
    assert db_state(engine) == before


# -- optimistic locking ------------------------------------------------------

STALE = {
    "confirm_payment": lambda d, n, v: d.orders.confirm_payment(n, expected_version=v),
    "ship": lambda d, n, v: d.orders.ship(n, carrier="UPS", tracking="1Z", expected_version=v),
    "cancel": lambda d, n, v: d.orders.cancel(n, reason="other", expected_version=v),
    "hold": lambda d, n, v: d.orders.hold(n, reason="second look", expected_version=v),
    "note": lambda d, n, v: d.orders.add_note(n, "second", expected_version=v),
    "tag": lambda d, n, v: d.orders.tag(n, ["late"], expected_version=v),
    "transition": lambda d, n, v: d.orders.transition(
        n, "cancelled", reason="other", expected_version=v
    ),
}


@pytest.mark.parametrize("second", STALE)
def test_second_session_with_stale_version_gets_conflict(engine: Engine, second: str) -> None:
    first = factories.desk(engine, ADMIN)
    other = factories.desk(engine, factories.AGENT)
    o = place(first)
    if second == "ship":
        first.orders.confirm_payment(o.number)
    # both screens show the order at the same version
    seen_a = first.orders.detail(o.number).order.version
    seen_b = other.orders.detail(o.number).order.version
    assert seen_a == seen_b
    first.orders.add_note(o.number, "first", expected_version=seen_a)
    after_first = db_state(engine)
    with pytest.raises(Conflict) as exc:
        STALE[second](other, o.number, seen_b)
    assert "changed by someone else" in str(exc.value)
    assert f"version {seen_b}, it is now {seen_b + 1}" in str(exc.value)
    assert exc.value.exit_code == 4
    assert db_state(engine) == after_first
    # after reloading, the same action goes through
    STALE[second](other, o.number, seen_b + 1)
    assert get_order(engine, o.number).version == seen_b + 2
