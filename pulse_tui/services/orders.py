"""Order use cases: the only code that changes orders.

Each public method is one use case and one transaction: permission check,
domain rule, change, OrderEvent, AuditEntry, optimistic lock on the order.
Callers pass the ``expected_version`` they showed the operator; a stale one
raises Conflict and changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import CursorResult, select, update
from sqlalchemy.orm import Session
from sqlmodel import col

from pulse_tui.domain import status as sm
from pulse_tui.domain.filters import FilterError, normalize_tag
from pulse_tui.domain.geo import normalize_country
from pulse_tui.domain.money import MoneyError, format_money, normalize_currency
from pulse_tui.domain.numbers import order_number
from pulse_tui.domain.payments import parse_method
from pulse_tui.domain.permissions import Permission
from pulse_tui.domain.status import (
    CancelReason,
    FulfillmentStatus,
    OrderState,
    OrderStatus,
    PaymentStatus,
    TransitionError,
)
from pulse_tui.domain.text import clean_free_text
from pulse_tui.domain.totals import LineInput, TotalsError, order_totals
from pulse_tui.storage import queries
from pulse_tui.storage.db import write_session
from pulse_tui.storage.models import (
    Address,
    Customer,
    Order,
    OrderLine,
    OrderTag,
    Payment,
    Product,
    Shipment,
)
from pulse_tui.storage.search import reindex_orders

from .audit import order_snapshot, record_audit, record_event
from .context import Context
from .errors import Conflict, InvalidInput, NotFound, RuleViolation

MAX_QUANTITY = 10_000


@dataclass(frozen=True)
class LineRequest:
    sku: str
    quantity: int


@dataclass(frozen=True)
class AddressInput:
    name: str
    line1: str
    city: str
    country: str
    postal_code: str | None = None
    region: str | None = None
    line2: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}


def state_of(order: Order) -> OrderState:
    return OrderState(
        status=OrderStatus(order.status),
        payment_status=PaymentStatus(order.payment_status),
        fulfillment_status=FulfillmentStatus(order.fulfillment_status),
        on_hold=order.on_hold,
        has_physical=order.has_physical,
    )


class OrderService:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    # -- the shared mechanism ------------------------------------------------

    @contextmanager
    def _locked(
        self, ref: str | int, expected_version: int | None, action: str
    ) -> Iterator[tuple[Session, Order, dict[str, Any]]]:
        """Open the use case's transaction with the order locked at its version.

        Bumps ``version`` with a guarded UPDATE first, so a concurrent writer
        (or a stale screen) gets Conflict before anything else is written.
        Writes the audit entry (before/after) when the body succeeds.
        """
        with write_session(self.ctx.engine) as session:
            order = queries.find_order(session, ref)
            if order is None:
                raise NotFound(f"no order {ref}")
            version = order.version if expected_version is None else expected_version
            res = cast(
                "CursorResult[Any]",
                session.execute(
                    update(Order)
                    .where(col(Order.id) == order.id, col(Order.version) == version)
                    .values(version=col(Order.version) + 1, updated_at=self.ctx.now())
                    .execution_options(synchronize_session=False)
                ),
            )
            if res.rowcount != 1:
                raise Conflict(
                    f"{order.number} was changed by someone else "
                    f"(you saw version {version}, it is now {order.version}); reload and retry"
                )
            session.refresh(order)
            before = order_snapshot(order)
            before["version"] = version
            yield session, order, before
            session.flush()
            after = order_snapshot(order)
            if "tags" in before:  # the body recorded tags: show them after too
                after["tags"] = sorted(
                    session.execute(
                        select(col(OrderTag.tag)).where(col(OrderTag.order_id) == order.id)
                    ).scalars()
                )
            record_audit(session, self.ctx, action, "order", order.number, before, after)

    def _transition_rule(self, order: Order, target: OrderStatus, *, system: bool = False) -> None:
        try:
            sm.check_transition(state_of(order), target, self.ctx.actor.role, system=system)
        except TransitionError as exc:
            raise RuleViolation(f"{order.number}: {exc}") from None

    # -- reads ---------------------------------------------------------------

    def detail(self, ref: str | int) -> queries.OrderDetail:
        self.ctx.actor.require(Permission.READ, "read orders")
        from pulse_tui.storage.db import read_session

        with read_session(self.ctx.engine) as session:
            d = queries.order_detail(session, ref)
        if d is None:
            raise NotFound(f"no order {ref}")
        if not self.ctx.actor.can(Permission.READ_PAYMENTS):
            d.payments = []
            d.refunds = []
        return d

    def offered_transitions(self, order: Order) -> list[sm.Transition]:
        return sm.offered_transitions(state_of(order), self.ctx.actor.role)

    # -- place ---------------------------------------------------------------

    def place(
        self,
        *,
        customer_id: int,
        lines: Sequence[LineRequest],
        currency: str,
        shipping_address: AddressInput,
        billing_address: AddressInput | None = None,
        shipping: int = 0,
        discount: int = 0,
        tax_inclusive: bool = False,
        note: str | None = None,
    ) -> Order:
        """Agents and admins. Creates a pending, unpaid order and reserves stock."""
        self.ctx.actor.require(Permission.EDIT, "place orders")
        try:
            cur = normalize_currency(currency)
            country = normalize_country(shipping_address.country)
            bill_country = normalize_country((billing_address or shipping_address).country)
        except (MoneyError, ValueError) as exc:
            raise InvalidInput(str(exc)) from None
        if not lines:
            raise InvalidInput("an order needs at least one line")
        for ln in lines:
            if isinstance(ln.quantity, bool) or not isinstance(ln.quantity, int):
                raise InvalidInput(f"{ln.sku}: quantity must be a whole number")
            if ln.quantity < 1:
                raise InvalidInput(f"{ln.sku}: quantity must be at least 1, got {ln.quantity}")
            if ln.quantity > MAX_QUANTITY:
                raise InvalidInput(f"{ln.sku}: quantity above {MAX_QUANTITY}")
        with write_session(self.ctx.engine) as session:
            customer = session.get(Customer, customer_id)
            if customer is None:
                raise NotFound(f"no customer #{customer_id}")
            wanted: dict[str, int] = {}
            for ln in lines:
                wanted[ln.sku.upper()] = wanted.get(ln.sku.upper(), 0) + ln.quantity
            products = {
                p.sku: p
                for p in session.execute(
                    select(Product).where(col(Product.sku).in_(list(wanted)))
                ).scalars()
            }
            for sku, qty in wanted.items():
                p = products.get(sku)
                if p is None:
                    raise NotFound(f"no product {sku}")
                if not p.active:
                    raise InvalidInput(f"{sku} is not active")
                if p.currency != cur:
                    raise InvalidInput(f"{sku} is priced in {p.currency}, the order is in {cur}")
                if p.kind == "physical" and p.stock_on_hand - p.stock_reserved < qty:
                    avail = p.stock_on_hand - p.stock_reserved
                    raise RuleViolation(f"{sku}: only {avail} in stock, {qty} wanted")
            try:
                totals = order_totals(
                    [
                        LineInput(products[s].unit_price, q, products[s].tax_rate_bp)
                        for s, q in wanted.items()
                    ],
                    shipping=shipping,
                    discount=discount,
                    tax_inclusive=tax_inclusive,
                )
            except TotalsError as exc:
                raise InvalidInput(str(exc)) from None
            now = self.ctx.now()
            next_id = (
                session.execute(
                    select(col(Order.id)).order_by(col(Order.id).desc()).limit(1)
                ).scalar_one_or_none()
                or 0
            ) + 1
            order = Order(
                id=next_id,
                number=order_number(next_id),
                customer_id=customer_id,
                status=OrderStatus.PENDING.value,
                payment_status=PaymentStatus.UNPAID.value,
                fulfillment_status=FulfillmentStatus.UNFULFILLED.value,
                currency=cur,
                tax_inclusive=tax_inclusive,
                subtotal=totals.subtotal,
                discount=totals.discount,
                shipping=totals.shipping,
                tax=totals.tax,
                total=totals.total,
                placed_at=now,
                updated_at=now,
                country=country,
                shipping_address={**shipping_address.as_dict(), "country": country},
                billing_address={
                    **(billing_address or shipping_address).as_dict(),
                    "country": bill_country,
                },
                has_physical=any(products[s].kind == "physical" for s in wanted),
                item_count=sum(wanted.values()),
            )
            session.add(order)
            session.flush()
            for (sku, qty), lt in zip(wanted.items(), totals.lines, strict=True):
                p = products[sku]
                session.add(
                    OrderLine(
                        order_id=_id(order),
                        product_id=p.id,
                        sku=sku,
                        name=p.name,
                        kind=p.kind,
                        quantity=qty,
                        unit_price=p.unit_price,
                        tax_rate_bp=p.tax_rate_bp,
                        tax=lt.tax,
                        line_total=lt.total,
                    )
                )
                if p.kind == "physical":
                    p.stock_reserved += qty
            record_event(
                session,
                self.ctx,
                order,
                "placed",
                f"Order placed: {order.item_count} item(s), {format_money(order.total, cur)}",
            )
            if note:
                self._note(session, order, note)
            record_audit(
                session, self.ctx, "order.place", "order", order.number, None, order_snapshot(order)
            )
            session.flush()
            reindex_orders(session, [_id(order)])
            return order

    # -- money ---------------------------------------------------------------

    def confirm_payment(
        self,
        ref: str | int,
        *,
        expected_version: int | None = None,
        gateway: str = "manual",
        method: str = "bank_transfer",
        reference: str | None = None,
        card_brand: str | None = None,
        card_last4: str | None = None,
    ) -> Order:
        """Agents and admins (and the payment sync as ``gateway:*``): the order's
        total is paid; a pending order moves to processing."""
        self.ctx.actor.require(Permission.HOLD, "confirm payments")
        if card_last4 is not None and not (len(card_last4) == 4 and card_last4.isdigit()):
            raise InvalidInput("card last4 must be exactly four digits")
        if reference:
            reference = _clean(reference, "payment reference", 200)
        try:
            method_v = parse_method(method).value
        except ValueError as exc:
            raise InvalidInput(str(exc)) from None
        with self._locked(ref, expected_version, "order.confirm_payment") as (s, order, _):
            # A payment already attached at this gateway and still waiting is
            # the one being confirmed: settle it rather than add a second row.
            waiting = s.execute(
                select(Payment)
                .where(
                    col(Payment.order_id) == _id(order),
                    col(Payment.gateway) == gateway,
                    col(Payment.status).in_(
                        [PaymentStatus.UNPAID.value, PaymentStatus.AUTHORIZED.value]
                    ),
                )
                .order_by(col(Payment.id).desc())
                .limit(1)
            ).scalar_one_or_none()
            if waiting is not None and reference and not waiting.gateway_ref:
                waiting.gateway_ref = reference
            self._take_payment(
                s,
                order,
                gateway=gateway,
                method=method_v,
                reference=reference,
                card_brand=card_brand,
                card_last4=card_last4,
                payment=waiting,
            )
            return order

    def _take_payment(
        self,
        s: Session,
        order: Order,
        *,
        gateway: str,
        method: str,
        reference: str | None = None,
        card_brand: str | None = None,
        card_last4: str | None = None,
        payment: Payment | None = None,
    ) -> Payment:
        """The order's total is paid (inside a ``_locked`` transaction).

        Shared by confirm_payment and the payment sync (services.payments),
        which passes the pending ``payment`` row it already holds instead of
        having a new one added.
        """
        if order.status in (OrderStatus.CANCELLED, OrderStatus.REFUNDED):
            raise RuleViolation(f"{order.number} is {order.status}: no payment can be taken")
        if order.payment_status in sm.PAID_STATES:
            raise RuleViolation(f"{order.number} is already paid")
        if payment is None:
            payment = Payment(
                order_id=_id(order),
                gateway=gateway,
                method=method,
                gateway_ref=reference,
                status=PaymentStatus.PAID.value,
                currency=order.currency,
                amount=order.total,
                captured=order.total,
                card_brand=card_brand,
                card_last4=card_last4,
                created_at=self.ctx.now(),
            )
            s.add(payment)
        else:
            payment.status = PaymentStatus.PAID.value
            payment.captured = order.total
            payment.card_brand = card_brand or payment.card_brand
            payment.card_last4 = card_last4 or payment.card_last4
        order.paid = order.total
        order.payment_status = PaymentStatus.PAID.value
        record_event(
            s,
            self.ctx,
            order,
            "payment_confirmed",
            f"Payment of {format_money(order.total, order.currency)} received "
            f"({gateway}, {method})",
            {"reference": reference},
        )
        if order.status == OrderStatus.PENDING:
            self._transition_rule(order, OrderStatus.PROCESSING, system=True)
            order.status = OrderStatus.PROCESSING.value
            record_event(s, self.ctx, order, "status", "pending → processing")
        return payment

    # -- lifecycle -----------------------------------------------------------

    def start_processing(self, ref: str | int, *, expected_version: int | None = None) -> Order:
        """Agents and admins: pending → processing once payment is authorised or paid."""
        self.ctx.actor.require(Permission.HOLD, "start processing")
        with self._locked(ref, expected_version, "order.start_processing") as (s, order, _):
            self._transition_rule(order, OrderStatus.PROCESSING)
            order.status = OrderStatus.PROCESSING.value
            record_event(s, self.ctx, order, "status", "pending → processing")
            return order

    def ship(
        self, ref: str | int, *, carrier: str, tracking: str, expected_version: int | None = None
    ) -> Order:
        """Warehouse, agents, admins: ships every unfulfilled line (processing → shipped)."""
        self.ctx.actor.require(Permission.FULFIL, "ship orders")
        carrier_c = _clean(carrier, "carrier", 40)
        tracking_c = _clean(tracking, "tracking number", 64).replace(" ", "")
        with self._locked(ref, expected_version, "order.ship") as (s, order, _):
            self._transition_rule(order, OrderStatus.SHIPPED)
            lines = _lines(s, order)
            shipped = []
            for ln in lines:
                qty = ln.quantity - ln.qty_fulfilled
                if qty <= 0:
                    continue
                ln.qty_fulfilled = ln.quantity
                shipped.append({"sku": ln.sku, "quantity": qty})
                if ln.kind == "physical":
                    p = s.get(Product, ln.product_id)
                    assert p is not None
                    p.stock_reserved = max(0, p.stock_reserved - qty)
                    p.stock_on_hand = max(0, p.stock_on_hand - qty)
            s.add(
                Shipment(
                    order_id=_id(order),
                    carrier=carrier_c,
                    tracking_number=tracking_c,
                    shipped_at=self.ctx.now(),
                    lines=shipped,
                )
            )
            order.status = OrderStatus.SHIPPED.value
            order.fulfillment_status = FulfillmentStatus.FULFILLED.value
            record_event(
                s,
                self.ctx,
                order,
                "shipped",
                f"Shipped with {carrier_c}, tracking {tracking_c}",
                {"carrier": carrier_c, "tracking": tracking_c, "lines": shipped},
            )
            s.flush()
            reindex_orders(s, [_id(order)])
            return order

    def deliver(self, ref: str | int, *, expected_version: int | None = None) -> Order:
        """Warehouse, agents, admins: shipped → delivered, or a digital-only
        order processing → delivered."""
        self.ctx.actor.require(Permission.FULFIL, "mark orders delivered")
        with self._locked(ref, expected_version, "order.deliver") as (s, order, _):
            self._transition_rule(order, OrderStatus.DELIVERED)
            now = self.ctx.now()
            for sh in s.execute(
                select(Shipment).where(col(Shipment.order_id) == order.id)
            ).scalars():
                if sh.status != "delivered":
                    sh.status, sh.delivered_at = "delivered", now
            for ln in _lines(s, order):
                ln.qty_fulfilled = ln.quantity
            order.status = OrderStatus.DELIVERED.value
            order.fulfillment_status = FulfillmentStatus.FULFILLED.value
            record_event(s, self.ctx, order, "delivered", "Delivered")
            return order

    def cancel(
        self,
        ref: str | int,
        *,
        reason: CancelReason | str,
        note: str | None = None,
        expected_version: int | None = None,
    ) -> Order:
        """Agents and admins: pending/processing → cancelled; releases reserved
        stock; a paid order gets a refund request for what was paid."""
        self.ctx.actor.require(Permission.CANCEL, "cancel orders")
        try:
            code = CancelReason(str(reason).strip().lower())
        except ValueError:
            allowed = ", ".join(r.value for r in CancelReason)
            raise InvalidInput(f"unknown cancel reason {reason!r} (one of: {allowed})") from None
        note_c = _clean(note, "note") if note else None
        with self._locked(ref, expected_version, "order.cancel") as (s, order, _):
            self._transition_rule(order, OrderStatus.CANCELLED)
            for ln in _lines(s, order):
                open_qty = ln.quantity - ln.qty_fulfilled
                if ln.kind == "physical" and open_qty > 0:
                    p = s.get(Product, ln.product_id)
                    assert p is not None
                    p.stock_reserved = max(0, p.stock_reserved - open_qty)
            order.status = OrderStatus.CANCELLED.value
            order.cancel_reason = code.value
            order.on_hold, order.hold_reason = False, None
            msg = f"Cancelled: {code.value.replace('_', ' ')}" + (f" — {note_c}" if note_c else "")
            record_event(s, self.ctx, order, "cancelled", msg, {"reason": code.value})
            # A paid order's money goes back through the one refund path.
            from .refunds import refund_on_cancel

            refund_on_cancel(s, self.ctx, order)
            return order

    def transition(
        self,
        ref: str | int,
        target: str,
        *,
        reason: str | None = None,
        expected_version: int | None = None,
    ) -> Order:
        """Move an order to ``target`` through the use case that owns that move."""
        try:
            to = OrderStatus(target.strip().lower())
        except ValueError:
            allowed = ", ".join(s.value for s in OrderStatus)
            raise InvalidInput(f"unknown status {target!r} (one of: {allowed})") from None
        actions: dict[OrderStatus, Callable[[], Order]] = {
            OrderStatus.PROCESSING: lambda: self.start_processing(
                ref, expected_version=expected_version
            ),
            OrderStatus.DELIVERED: lambda: self.deliver(ref, expected_version=expected_version),
            OrderStatus.CANCELLED: lambda: self.cancel(
                ref, reason=reason or CancelReason.OTHER, expected_version=expected_version
            ),
        }
        if to == OrderStatus.SHIPPED:
            raise InvalidInput("shipping needs a carrier and tracking number: use ship")
        if to == OrderStatus.REFUNDED:
            raise RuleViolation("refunded is set by the refund process, not by hand")
        if to == OrderStatus.PENDING:
            raise RuleViolation("an order never goes back to pending")
        return actions[to]()

    # -- holds, notes, tags --------------------------------------------------

    def hold(self, ref: str | int, *, reason: str, expected_version: int | None = None) -> Order:
        """Agents and admins: put an order on hold (blocks fulfilment)."""
        self.ctx.actor.require(Permission.HOLD, "put orders on hold")
        reason_c = _clean(reason, "hold reason", 200)
        with self._locked(ref, expected_version, "order.hold") as (s, order, _):
            self._put_on_hold(s, order, reason_c)
            return order

    def _put_on_hold(self, s: Session, order: Order, reason: str) -> None:
        """Hold ``order`` (inside a ``_locked`` transaction); shared with the payment sync."""
        problem = sm.hold_problem(state_of(order), hold=True)
        if problem:
            raise RuleViolation(f"{order.number}: {problem}")
        order.on_hold, order.hold_reason = True, reason
        record_event(s, self.ctx, order, "held", f"On hold: {reason}", {"reason": reason})

    def release(
        self, ref: str | int, *, note: str | None = None, expected_version: int | None = None
    ) -> Order:
        """Agents and admins: take an order off hold."""
        self.ctx.actor.require(Permission.HOLD, "release holds")
        note_c = _clean(note, "note") if note else None
        with self._locked(ref, expected_version, "order.release") as (s, order, _):
            problem = sm.hold_problem(state_of(order), hold=False)
            if problem:
                raise RuleViolation(f"{order.number}: {problem}")
            was = order.hold_reason
            order.on_hold, order.hold_reason = False, None
            record_event(
                s,
                self.ctx,
                order,
                "released",
                "Released from hold" + (f": {note_c}" if note_c else ""),
                {"was": was},
            )
            return order

    def add_note(self, ref: str | int, text: str, *, expected_version: int | None = None) -> Order:
        """Warehouse, agents, admins: a note on the timeline."""
        self.ctx.actor.require(Permission.NOTE, "add notes")
        note_c = _clean(text, "note")
        with self._locked(ref, expected_version, "order.note") as (s, order, _):
            self._note(s, order, note_c)
            return order

    def _note(self, s: Session, order: Order, text: str) -> None:
        record_event(s, self.ctx, order, "note", _clean(text, "note"))

    def tag(
        self,
        ref: str | int,
        add: Sequence[str] = (),
        remove: Sequence[str] = (),
        *,
        expected_version: int | None = None,
    ) -> Order:
        """Agents and admins: add or remove tags."""
        self.ctx.actor.require(Permission.EDIT, "tag orders")
        try:
            add_n = sorted({normalize_tag(t) for t in add})
            rem_n = sorted({normalize_tag(t) for t in remove})
        except FilterError as exc:
            raise InvalidInput(str(exc)) from None
        if not add_n and not rem_n:
            raise InvalidInput("name at least one tag to add or remove")
        with self._locked(ref, expected_version, "order.tag") as (s, order, before):
            have = set(
                s.execute(
                    select(col(OrderTag.tag)).where(col(OrderTag.order_id) == order.id)
                ).scalars()
            )
            added = [t for t in add_n if t not in have]
            removed = [t for t in rem_n if t in have]
            if not added and not removed:
                raise RuleViolation(f"{order.number}: tags already as asked")
            for t in added:
                s.add(OrderTag(order_id=_id(order), tag=t))
            for t in removed:
                tag_row = s.get(OrderTag, (order.id, t))
                if tag_row is not None:
                    s.delete(tag_row)
            before["tags"] = sorted(have)
            parts = [f"+{t}" for t in added] + [f"-{t}" for t in removed]
            record_event(
                s,
                self.ctx,
                order,
                "tagged",
                "Tags " + " ".join(parts),
                {"added": added, "removed": removed},
            )
            return order


def _id(order: Order) -> int:
    """The id of a flushed order (SQLModel types it Optional until then)."""
    assert order.id is not None
    return order.id


def _lines(s: Session, order: Order) -> list[OrderLine]:
    return list(
        s.execute(
            select(OrderLine).where(col(OrderLine.order_id) == order.id).order_by(col(OrderLine.id))
        ).scalars()
    )


def _clean(text: str | None, what: str, max_len: int = 2000) -> str:
    try:
        return clean_free_text(text or "", what, max_len=max_len)
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None


__all__ = ["AddressInput", "LineRequest", "OrderService", "state_of", "Address"]
