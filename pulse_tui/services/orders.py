"""Order use cases: the only code that changes orders.

Each public method is one use case and one transaction: permission check,
domain rule, change, OrderEvent, AuditEntry, optimistic lock on the order.
Callers pass the ``expected_version`` they showed the operator; a stale one
raises Conflict and changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from operator import attrgetter
from typing import Any, cast

from sqlalchemy import CursorResult, Select, bindparam, case, delete, select, update
from sqlalchemy.orm import Session
from sqlmodel import col

from pulse_tui.domain import status as sm
from pulse_tui.domain.filters import FilterError, normalize_tag
from pulse_tui.domain.geo import normalize_country
from pulse_tui.domain.money import MoneyError, format_money, normalize_currency
from pulse_tui.domain.numbers import order_number
from pulse_tui.domain.payments import parse_method
from pulse_tui.domain.permissions import Permission, Role
from pulse_tui.domain.refunds import payment_status_after
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
from pulse_tui.storage.sql import id_in

from .audit import (
    ORDER_AUDIT_FIELDS,
    AuditRow,
    EventRow,
    order_snapshot,
    record_audit,
    record_audits,
    record_event,
    record_events,
    table_of,
)
from .context import Context
from .errors import Conflict, InvalidInput, NotFound, RuleViolation

MAX_QUANTITY = 10_000
# ids per guarded UPDATE, under every database's parameter limit
_IN_CHUNK = 5_000


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


# -- batches -------------------------------------------------------------------
#
# The order use cases below are written once, for a list of orders inside a
# caller's transaction (``*_in`` methods): the public single-order methods run
# them for one order, bulk actions (services.bulk) for a chunk of hundreds.
# They read the few columns the rules need as tuples (no ORM object per order)
# and write with one executemany per table: a guarded UPDATE per order
# (``WHERE id = ? AND version = ?``, the optimistic lock), its OrderEvent and
# its AuditEntry.

_ORDERS = table_of(Order)
_LINES = table_of(OrderLine)
_PRODUCTS = table_of(Product)
_SHIPMENTS = table_of(Shipment)
_TAGS = table_of(OrderTag)

TARGET_COLUMNS = (
    "id",
    "number",
    "version",
    "status",
    "payment_status",
    "fulfillment_status",
    "on_hold",
    "hold_reason",
    "cancel_reason",
    "paid",
    "refunded",
    "total",
    "currency",
    "has_physical",
)


@dataclass(slots=True)
class OrderTarget:
    """An order as a use case sees it: the columns its rules and audit need."""

    id: int
    number: str
    version: int
    status: str
    payment_status: str
    fulfillment_status: str
    on_hold: bool
    hold_reason: str | None
    cancel_reason: str | None
    paid: int
    refunded: int
    total: int
    currency: str
    has_physical: bool

    def state(self) -> OrderState:
        return _state(
            self.status,
            self.payment_status,
            self.fulfillment_status,
            bool(self.on_hold),
            bool(self.has_physical),
        )

    def snapshot(self) -> dict[str, Any]:
        return dict(zip(ORDER_AUDIT_FIELDS, _audit_values(self), strict=True))


_audit_values = attrgetter(*ORDER_AUDIT_FIELDS)


@lru_cache(maxsize=1024)
def _state(
    status: str, payment_status: str, fulfillment_status: str, on_hold: bool, has_physical: bool
) -> OrderState:
    # A bulk chunk has a handful of distinct states: build each (enums) once.
    return OrderState(
        status=OrderStatus(status),
        payment_status=PaymentStatus(payment_status),
        fulfillment_status=FulfillmentStatus(fulfillment_status),
        on_hold=on_hold,
        has_physical=has_physical,
    )


def select_targets() -> Select[Any]:
    """The use cases' view of orders (``OrderTarget`` columns) in id order,
    row-locked where the database can (FOR UPDATE; SQLite's BEGIN IMMEDIATE
    already holds the lock). Callers add the WHERE."""
    cols = (_ORDERS.c[n] for n in TARGET_COLUMNS)
    return select(*cols).order_by(_ORDERS.c.id).with_for_update()


def fetch_targets(s: Session, stmt: Select[Any]) -> list[OrderTarget]:
    # .all(): one fetchall, not a fetchone per row
    return [OrderTarget(*r) for r in s.connection().execute(stmt).all()]


def load_targets(s: Session, ids: Sequence[int]) -> list[OrderTarget]:
    """The orders with these ids that exist, in id order, row-locked."""
    if not ids:
        return []
    return fetch_targets(s, select_targets().where(id_in(s, _ORDERS.c.id, ids)))


@dataclass
class BatchOutcome:
    """What a use case did to a list of orders: changed (after-state), or
    skipped with the domain's reason."""

    changed: list[OrderTarget] = field(default_factory=list)
    skipped: list[tuple[OrderTarget, str]] = field(default_factory=list)


EventSpec = tuple[str, str, dict[str, Any]]  # kind, message, data of a timeline event


@dataclass
class _Change:
    target: OrderTarget  # updated in place to the after-state
    before: dict[str, Any]
    values: dict[str, Any]  # the order columns this use case sets
    event: EventSpec | None = None  # written by _commit, at the commit's time
    tags: tuple[list[str], list[str]] | None = None  # (before, after) when tags changed


def transition_target(target: str) -> OrderStatus:
    """The status an operator may ask for by hand (``transition``), or InvalidInput /
    RuleViolation saying which use case owns that move instead."""
    try:
        to = OrderStatus(target.strip().lower())
    except ValueError:
        allowed = ", ".join(s.value for s in OrderStatus)
        raise InvalidInput(f"unknown status {target!r} (one of: {allowed})") from None
    if to == OrderStatus.SHIPPED:
        raise InvalidInput("shipping needs a carrier and tracking number: use ship")
    if to == OrderStatus.REFUNDED:
        raise RuleViolation("refunded is set by the refund process, not by hand")
    if to == OrderStatus.PENDING:
        raise RuleViolation("an order never goes back to pending")
    return to


def parse_cancel_reason(reason: CancelReason | str) -> CancelReason:
    try:
        return CancelReason(str(reason).strip().lower())
    except ValueError:
        allowed = ", ".join(r.value for r in CancelReason)
        raise InvalidInput(f"unknown cancel reason {reason!r} (one of: {allowed})") from None


def normalize_tags(tags: Sequence[str]) -> list[str]:
    """Tags as stored (the query language's normalisation), sorted, unique."""
    try:
        return sorted({normalize_tag(t) for t in tags})
    except FilterError as exc:
        raise InvalidInput(str(exc)) from None


def clean_carrier(text: str) -> str:
    return _clean(text, "carrier", 40)


def clean_tracking(text: str) -> str:
    return _clean(text, "tracking number", 64).replace(" ", "")


def clean_hold_reason(text: str) -> str:
    return _clean(text, "hold reason", 200)


def clean_note(text: str) -> str:
    return _clean(text, "note")


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
        problem = self.transition_problem(state_of(order), target, system=system)
        if problem:
            raise RuleViolation(f"{order.number}: {problem}")

    def transition_problem(
        self, state: OrderState, target: OrderStatus, *, system: bool = False
    ) -> str | None:
        """Why this actor cannot move an order in ``state`` to ``target`` (None: it can)."""
        return _transition_problem(state, target, self.ctx.actor.role, system)

    # -- the batch mechanism (one transaction, many orders) -------------------

    def _one(
        self,
        ref: str | int,
        expected_version: int | None,
        body: Callable[[Session, list[OrderTarget]], BatchOutcome],
    ) -> Order:
        """Run a batch use case for one order in its own transaction: NotFound,
        Conflict on a stale ``expected_version``, RuleViolation with the reason."""
        with write_session(self.ctx.engine) as s:
            by = _ORDERS.c.id == ref if isinstance(ref, int) else _ORDERS.c.number == ref
            oid = s.connection().execute(select(_ORDERS.c.id).where(by)).scalar_one_or_none()
            targets = load_targets(s, [oid]) if oid is not None else []
            if not targets:
                raise NotFound(f"no order {ref}")
            t = targets[0]
            if expected_version is not None and expected_version != t.version:
                raise Conflict(
                    f"{t.number} was changed by someone else "
                    f"(you saw version {expected_version}, it is now {t.version}); "
                    "reload and retry"
                )
            out = body(s, targets)
            if out.skipped:
                raise RuleViolation(f"{t.number}: {out.skipped[0][1]}")
            order = s.get(Order, t.id, populate_existing=True)
            assert order is not None
            return order

    def _change(self, t: OrderTarget, values: dict[str, Any]) -> _Change:
        """Start changing ``t``: its before-image, the new values, the version bump."""
        before = t.snapshot()
        ch = _Change(t, before, values)
        for k, v in values.items():
            setattr(t, k, v)
        t.version += 1
        return ch

    def _commit(
        self,
        s: Session,
        action: str,
        changes: list[_Change],
        *,
        run_id: str | None,
        before_audit: Callable[[], None] | None = None,
    ) -> None:
        """Write ``changes``: guarded UPDATEs, events, (``before_audit``), audit entries.

        One time for the whole batch (it is one transaction). Orders that were at
        the same version and get the same new values are updated by one
        statement guarded on that version; fewer rows updated than asked means
        someone else changed one meanwhile: Conflict, and the caller's
        transaction rolls back.
        """
        if not changes:
            return
        now = self.ctx.now()
        groups: dict[tuple[int, tuple[tuple[str, Any], ...]], list[int]] = {}
        for c in changes:
            key = (c.before["version"], tuple(c.values.items()))
            groups.setdefault(key, []).append(c.target.id)
        conn = s.connection()
        for (version, values), ids in groups.items():
            for i in range(0, len(ids), _IN_CHUNK):
                part = ids[i : i + _IN_CHUNK]
                res = conn.execute(
                    _ORDERS.update()
                    .where(_ORDERS.c.version == version, id_in(conn, _ORDERS.c.id, part))
                    .values({**dict(values), "version": version + 1, "updated_at": now})
                )
                if res.rowcount != len(part):
                    raise Conflict(
                        f"{len(part) - res.rowcount} of these orders were changed by someone "
                        "else meanwhile; reload and retry"
                    )
        actor = self.ctx.actor.label
        events = []
        for c in changes:
            if c.event is not None:
                kind, message, data = c.event
                if run_id is not None:
                    data = {**data, "bulk_run": run_id}
                events.append(EventRow(c.target.id, now, kind, actor, message, data))
        record_events(s, events, self.ctx)
        if before_audit is not None:
            before_audit()
        audits = []
        for c in changes:
            before, after = c.before, c.target.snapshot()
            if c.tags is not None:
                before, after = {**before, "tags": c.tags[0]}, {**after, "tags": c.tags[1]}
            if run_id is not None:
                after["bulk_run"] = run_id
            audits.append(AuditRow(now, actor, action, "order", c.target.number, before, after))
        record_audits(s, audits)

    def _line_rows(self, s: Session, ids: Sequence[int]) -> dict[int, list[Any]]:
        """Each order's lines (id order) as rows of id, product_id, sku, kind,
        quantity, qty_fulfilled, qty_refunded."""
        out: dict[int, list[Any]] = {i: [] for i in ids}
        if not ids:
            return out
        c = _LINES.c
        stmt = (
            select(
                c.order_id,
                c.id,
                c.product_id,
                c.sku,
                c.kind,
                c.quantity,
                c.qty_fulfilled,
                c.qty_refunded,
            )
            .where(id_in(s, c.order_id, ids))
            .order_by(c.id)
        )
        for r in s.connection().execute(stmt):
            out[r[0]].append(r[1:])
        return out

    def _take_stock(self, s: Session, reserved: dict[int, int], on_hand: dict[int, int]) -> None:
        """Release reserved units / remove units on hand per product (never below 0)."""
        p = _PRODUCTS.c
        if not reserved and not on_hand:
            return
        q_res: Any = bindparam("q_res")
        q_hand: Any = bindparam("q_hand")
        stmt = (
            _PRODUCTS.update()
            .where(p.id == bindparam("b_pid"))
            .values(
                stock_reserved=case((p.stock_reserved < q_res, 0), else_=p.stock_reserved - q_res),
                stock_on_hand=case((p.stock_on_hand < q_hand, 0), else_=p.stock_on_hand - q_hand),
            )
        )
        pids = sorted(set(reserved) | set(on_hand))
        s.connection().execute(
            stmt,
            [
                {"b_pid": pid, "q_res": reserved.get(pid, 0), "q_hand": on_hand.get(pid, 0)}
                for pid in pids
            ],
        )

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
            payment.captured = order.total
            # a refund the gateway settled before we saw the capture counts too
            payment.status = _paid_status(payment.captured, payment.refunded)
            payment.card_brand = card_brand or payment.card_brand
            payment.card_last4 = card_last4 or payment.card_last4
        order.paid = order.total
        order.payment_status = _paid_status(order.paid, order.refunded)
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
        return self._one(ref, expected_version, self.start_processing_in)

    def start_processing_in(
        self, s: Session, targets: Sequence[OrderTarget], *, run_id: str | None = None
    ) -> BatchOutcome:
        """start_processing for each of ``targets`` inside the caller's transaction."""
        out, changes = BatchOutcome(), []
        for t in targets:
            problem = self.transition_problem(t.state(), OrderStatus.PROCESSING)
            if problem:
                out.skipped.append((t, problem))
                continue
            ch = self._change(t, {"status": OrderStatus.PROCESSING.value})
            ch.event = _event("status", "pending → processing")
            changes.append(ch)
        self._commit(s, "order.start_processing", changes, run_id=run_id)
        out.changed = [c.target for c in changes]
        return out

    def ship(
        self, ref: str | int, *, carrier: str, tracking: str, expected_version: int | None = None
    ) -> Order:
        """Warehouse, agents, admins: ships every unfulfilled line (processing → shipped)."""
        self.ctx.actor.require(Permission.FULFIL, "ship orders")
        carrier_c = clean_carrier(carrier)
        tracking_c = clean_tracking(tracking)
        return self._one(
            ref,
            expected_version,
            lambda s, ts: self.ship_in(s, ts, carrier=carrier_c, tracking={ts[0].id: tracking_c}),
        )

    def ship_in(
        self,
        s: Session,
        targets: Sequence[OrderTarget],
        *,
        carrier: str,
        tracking: dict[int, str],
        run_id: str | None = None,
    ) -> BatchOutcome:
        """ship for each of ``targets`` (order id → cleaned tracking number in
        ``tracking``, carrier cleaned) inside the caller's transaction."""
        out, changes = BatchOutcome(), []
        eligible = []
        for t in targets:
            problem = self.transition_problem(t.state(), OrderStatus.SHIPPED)
            if problem:
                out.skipped.append((t, problem))
            else:
                eligible.append(t)
        lines = self._line_rows(s, [t.id for t in eligible])
        line_updates: list[dict[str, Any]] = []
        shipments: list[dict[str, Any]] = []
        reserved: dict[int, int] = {}
        for t in eligible:
            shipped = []
            for line_id, product_id, sku, kind, quantity, fulfilled, refunded in lines[t.id]:
                # Units refunded before shipping never ship (orders ship whole
                # from processing, so every refunded unit here is unshipped).
                qty = quantity - fulfilled - refunded
                if qty <= 0:
                    continue
                line_updates.append({"b_id": line_id, "qty_fulfilled": fulfilled + qty})
                shipped.append({"sku": sku, "quantity": qty})
                if kind == "physical":
                    reserved[product_id] = reserved.get(product_id, 0) + qty
            ch = self._change(
                t,
                {
                    "status": OrderStatus.SHIPPED.value,
                    "fulfillment_status": FulfillmentStatus.FULFILLED.value,
                },
            )
            number = tracking[t.id]
            shipments.append(
                {
                    "order_id": t.id,
                    "carrier": carrier,
                    "tracking_number": number,
                    "status": "shipped",
                    "shipped_at": self.ctx.now(),
                    "delivered_at": None,
                    "lines": shipped,
                }
            )
            ch.event = _event(
                "shipped",
                f"Shipped with {carrier}, tracking {number}",
                {"carrier": carrier, "tracking": number, "lines": shipped},
            )
            changes.append(ch)
        conn = s.connection()
        if line_updates:
            conn.execute(_LINES.update().where(_LINES.c.id == bindparam("b_id")), line_updates)
        self._take_stock(s, reserved, reserved)
        if shipments:
            conn.execute(_SHIPMENTS.insert(), shipments)
        self._commit(s, "order.ship", changes, run_id=run_id)
        reindex_orders(s, [c.target.id for c in changes])
        out.changed = [c.target for c in changes]
        return out

    def deliver(self, ref: str | int, *, expected_version: int | None = None) -> Order:
        """Warehouse, agents, admins: shipped → delivered, or a digital-only
        order processing → delivered."""
        self.ctx.actor.require(Permission.FULFIL, "mark orders delivered")
        return self._one(ref, expected_version, self.deliver_in)

    def deliver_in(
        self, s: Session, targets: Sequence[OrderTarget], *, run_id: str | None = None
    ) -> BatchOutcome:
        """deliver for each of ``targets`` inside the caller's transaction."""
        out, changes = BatchOutcome(), []
        for t in targets:
            problem = self.transition_problem(t.state(), OrderStatus.DELIVERED)
            if problem:
                out.skipped.append((t, problem))
                continue
            ch = self._change(
                t,
                {
                    "status": OrderStatus.DELIVERED.value,
                    "fulfillment_status": FulfillmentStatus.FULFILLED.value,
                },
            )
            ch.event = _event("delivered", "Delivered")
            changes.append(ch)
        if changes:
            # Set-based, one statement each for the chunk's shipments and lines.
            conn = s.connection()
            ids = [c.target.id for c in changes]
            sh = _SHIPMENTS.c
            conn.execute(
                _SHIPMENTS.update()
                .where(id_in(conn, sh.order_id, ids), sh.status != "delivered")
                .values(status="delivered", delivered_at=self.ctx.now())
            )
            conn.execute(
                _LINES.update()
                .where(id_in(conn, _LINES.c.order_id, ids))
                .values(qty_fulfilled=_LINES.c.quantity)
            )
        self._commit(s, "order.deliver", changes, run_id=run_id)
        out.changed = [c.target for c in changes]
        return out

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
        code = parse_cancel_reason(reason)
        note_c = clean_note(note) if note else None
        return self._one(
            ref, expected_version, lambda s, ts: self.cancel_in(s, ts, reason=code, note=note_c)
        )

    def cancel_in(
        self,
        s: Session,
        targets: Sequence[OrderTarget],
        *,
        reason: CancelReason,
        note: str | None = None,
        run_id: str | None = None,
    ) -> BatchOutcome:
        """cancel for each of ``targets`` inside the caller's transaction (reason
        parsed, note cleaned): releases reserved stock; a paid order gets its
        refund request through services.refunds.refund_on_cancel."""
        out, changes = BatchOutcome(), []
        for t in targets:
            problem = self.transition_problem(t.state(), OrderStatus.CANCELLED)
            if problem:
                out.skipped.append((t, problem))
                continue
            ch = self._change(
                t,
                {
                    "status": OrderStatus.CANCELLED.value,
                    "cancel_reason": reason.value,
                    "on_hold": False,
                    "hold_reason": None,
                },
            )
            msg = f"Cancelled: {reason.value.replace('_', ' ')}" + (f" — {note}" if note else "")
            ch.event = _event("cancelled", msg, {"reason": reason.value})
            changes.append(ch)
        ids = [c.target.id for c in changes]
        reserved: dict[int, int] = {}
        for rows in self._line_rows(s, ids).values():
            for _line_id, product_id, _sku, kind, quantity, qty_fulfilled, _refunded in rows:
                if kind == "physical" and quantity - qty_fulfilled > 0:
                    reserved[product_id] = reserved.get(product_id, 0) + quantity - qty_fulfilled
        self._take_stock(s, reserved, {})

        def refunds() -> None:
            # A paid order's money goes back through the one refund path.
            from .refunds import refund_on_cancel

            orders = {
                o.id: o
                for o in s.execute(
                    select(Order)
                    .where(col(Order.id).in_(ids))
                    .execution_options(populate_existing=True)
                ).scalars()
            }
            for c in changes:
                order = orders[c.target.id]
                refund_on_cancel(s, self.ctx, order)
            s.flush()
            for c in changes:  # the refund path may have changed the order itself
                order = orders[c.target.id]
                for f in TARGET_COLUMNS:
                    setattr(c.target, f, getattr(order, f))

        self._commit(s, "order.cancel", changes, run_id=run_id, before_audit=refunds)
        out.changed = [c.target for c in changes]
        return out

    def transition(
        self,
        ref: str | int,
        target: str,
        *,
        reason: str | None = None,
        expected_version: int | None = None,
    ) -> Order:
        """Move an order to ``target`` through the use case that owns that move."""
        to = transition_target(target)
        actions: dict[OrderStatus, Callable[[], Order]] = {
            OrderStatus.PROCESSING: lambda: self.start_processing(
                ref, expected_version=expected_version
            ),
            OrderStatus.DELIVERED: lambda: self.deliver(ref, expected_version=expected_version),
            OrderStatus.CANCELLED: lambda: self.cancel(
                ref, reason=reason or CancelReason.OTHER, expected_version=expected_version
            ),
        }
        return actions[to]()

    # -- holds, notes, tags --------------------------------------------------

    def hold(self, ref: str | int, *, reason: str, expected_version: int | None = None) -> Order:
        """Agents and admins: put an order on hold (blocks fulfilment)."""
        self.ctx.actor.require(Permission.HOLD, "put orders on hold")
        reason_c = clean_hold_reason(reason)
        return self._one(ref, expected_version, lambda s, ts: self.hold_in(s, ts, reason=reason_c))

    def hold_in(
        self,
        s: Session,
        targets: Sequence[OrderTarget],
        *,
        reason: str,
        run_id: str | None = None,
    ) -> BatchOutcome:
        """hold for each of ``targets`` (reason cleaned) inside the caller's transaction."""
        out, changes = BatchOutcome(), []
        for t in targets:
            problem = sm.hold_problem(t.state(), hold=True)
            if problem:
                out.skipped.append((t, problem))
                continue
            ch = self._change(t, {"on_hold": True, "hold_reason": reason})
            ch.event = _event(*_held_event(reason))
            changes.append(ch)
        self._commit(s, "order.hold", changes, run_id=run_id)
        out.changed = [c.target for c in changes]
        return out

    def _put_on_hold(self, s: Session, order: Order, reason: str) -> None:
        """Hold ``order`` (inside a ``_locked`` transaction); shared with the payment sync."""
        problem = sm.hold_problem(state_of(order), hold=True)
        if problem:
            raise RuleViolation(f"{order.number}: {problem}")
        order.on_hold, order.hold_reason = True, reason
        record_event(s, self.ctx, order, *_held_event(reason))

    def release(
        self, ref: str | int, *, note: str | None = None, expected_version: int | None = None
    ) -> Order:
        """Agents and admins: take an order off hold."""
        self.ctx.actor.require(Permission.HOLD, "release holds")
        note_c = clean_note(note) if note else None
        return self._one(ref, expected_version, lambda s, ts: self.release_in(s, ts, note=note_c))

    def release_in(
        self,
        s: Session,
        targets: Sequence[OrderTarget],
        *,
        note: str | None = None,
        run_id: str | None = None,
    ) -> BatchOutcome:
        """release for each of ``targets`` (note cleaned) inside the caller's transaction."""
        out, changes = BatchOutcome(), []
        for t in targets:
            problem = sm.hold_problem(t.state(), hold=False)
            if problem:
                out.skipped.append((t, problem))
                continue
            was = t.hold_reason
            ch = self._change(t, {"on_hold": False, "hold_reason": None})
            ch.event = _event(
                "released",
                "Released from hold" + (f": {note}" if note else ""),
                {"was": was},
            )
            changes.append(ch)
        self._commit(s, "order.release", changes, run_id=run_id)
        out.changed = [c.target for c in changes]
        return out

    def add_note(self, ref: str | int, text: str, *, expected_version: int | None = None) -> Order:
        """Warehouse, agents, admins: a note on the timeline."""
        self.ctx.actor.require(Permission.NOTE, "add notes")
        note_c = clean_note(text)
        return self._one(ref, expected_version, lambda s, ts: self.note_in(s, ts, text=note_c))

    def note_in(
        self,
        s: Session,
        targets: Sequence[OrderTarget],
        *,
        text: str,
        run_id: str | None = None,
    ) -> BatchOutcome:
        """add_note for each of ``targets`` (text cleaned) inside the caller's transaction."""
        changes = []
        for t in targets:
            ch = self._change(t, {})
            ch.event = _event("note", text)
            changes.append(ch)
        self._commit(s, "order.note", changes, run_id=run_id)
        return BatchOutcome(changed=[c.target for c in changes])

    def _note(self, s: Session, order: Order, text: str) -> None:
        record_event(s, self.ctx, order, "note", clean_note(text))

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
        add_n, rem_n = normalize_tags(add), normalize_tags(remove)
        if not add_n and not rem_n:
            raise InvalidInput("name at least one tag to add or remove")
        return self._one(
            ref, expected_version, lambda s, ts: self.tag_in(s, ts, add=add_n, remove=rem_n)
        )

    def tag_in(
        self,
        s: Session,
        targets: Sequence[OrderTarget],
        *,
        add: Sequence[str] = (),
        remove: Sequence[str] = (),
        run_id: str | None = None,
    ) -> BatchOutcome:
        """tag for each of ``targets`` (tags normalised) inside the caller's transaction."""
        out, changes = BatchOutcome(), []
        have: dict[int, set[str]] = {t.id: set() for t in targets}
        if targets:
            rows = s.connection().execute(
                select(_TAGS.c.order_id, _TAGS.c.tag).where(_TAGS.c.order_id.in_(list(have)))
            )
            for oid, tag_ in rows:
                have[oid].add(tag_)
        inserts: list[dict[str, Any]] = []
        deletes: list[dict[str, Any]] = []
        for t in targets:
            added = [x for x in add if x not in have[t.id]]
            removed = [x for x in remove if x in have[t.id]]
            if not added and not removed:
                why = [f"already tagged {x}" for x in add] + [f"not tagged {x}" for x in remove]
                out.skipped.append((t, "tags already as asked: " + ", ".join(why)))
                continue
            ch = self._change(t, {})
            after = (have[t.id] | set(added)) - set(removed)
            ch.tags = (sorted(have[t.id]), sorted(after))
            inserts += [{"order_id": t.id, "tag": x} for x in added]
            deletes += [{"b_oid": t.id, "b_tag": x} for x in removed]
            parts = [f"+{x}" for x in added] + [f"-{x}" for x in removed]
            ch.event = _event(
                "tagged", "Tags " + " ".join(parts), {"added": added, "removed": removed}
            )
            changes.append(ch)
        conn = s.connection()
        if inserts:
            conn.execute(_TAGS.insert(), inserts)
        if deletes:
            conn.execute(
                delete(_TAGS).where(
                    _TAGS.c.order_id == bindparam("b_oid"), _TAGS.c.tag == bindparam("b_tag")
                ),
                deletes,
            )
        self._commit(s, "order.tag", changes, run_id=run_id)
        out.changed = [c.target for c in changes]
        return out


@lru_cache(maxsize=1024)
def _transition_problem(
    state: OrderState, target: OrderStatus, role: Role, system: bool
) -> str | None:
    # A pure function of a few enums: a bulk chunk asks it once per distinct state.
    try:
        sm.check_transition(state, target, role, system=system)
    except TransitionError as exc:
        return str(exc)
    return None


def _event(kind: str, message: str, data: dict[str, Any] | None = None) -> EventSpec:
    return kind, message, data or {}


def _held_event(reason: str) -> EventSpec:
    return "held", f"On hold: {reason}", {"reason": reason}


def _paid_status(paid: int, refunded: int) -> str:
    """Status of money just taken: paid (a zero total included), unless refunds
    the gateway settled before we saw the capture already gave some back."""
    if refunded <= 0:
        return PaymentStatus.PAID.value
    return payment_status_after(paid, refunded).value


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


__all__ = [
    "AddressInput",
    "BatchOutcome",
    "LineRequest",
    "OrderService",
    "OrderTarget",
    "load_targets",
    "state_of",
    "Address",
]
