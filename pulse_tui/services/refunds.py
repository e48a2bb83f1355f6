"""Refunds: money given back exactly once.

The life of a refund (``domain.refunds.RefundStatus``)::

    requested ──approve (admin)──▶ approved ──send──▶ pending ──▶ succeeded
        │   (within the limit: approved at once)         └──────▶ failed ──retry──▶ approved
        └──cancel──▶ cancelled ◀──cancel── approved / failed

Exactly once, in three steps that each commit on their own:

1. ``create`` commits the refund row with its idempotency key (one order
   transaction: version lock, event, audit). Nothing has been sent.
2. ``execute`` *claims* the row: one guarded UPDATE approved → pending with
   ``sent_at``. Only the process whose UPDATE changed the row calls the
   gateway, so two operators, two screens or two syncs never send twice.
   The key goes to the gateway as its idempotency key and our refund id into
   the refund's metadata.
3. The gateway's answer is recorded (``record``). If we crash, time out or
   lose the answer between 2 and 3, the row stays pending with no gateway
   reference; ``recover`` (run by the payment sync) first looks the refund up
   at the gateway by our metadata and records what it finds, and only when the
   gateway has none — and the claim is older than a grace period, so no call
   is still in flight — claims the row again and sends with the *same* key.

Money moves on the order only when the gateway says succeeded: payment and
order ``refunded`` grow, payment statuses follow the numbers, refunded units
are counted per line (and restocked when asked), and a full refund moves the
order to ``refunded`` (a cancelled order stays cancelled).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, select, update
from sqlalchemy.orm import Session
from sqlmodel import col

from pulse_tui.domain import refunds as rules
from pulse_tui.domain import status as sm
from pulse_tui.domain.money import format_money
from pulse_tui.domain.permissions import Permission
from pulse_tui.domain.refunds import (
    ACTIVE,
    LinePick,
    LineState,
    Quote,
    RefundError,
    RefundReason,
    RefundStatus,
    ReturnStatus,
)
from pulse_tui.domain.status import OrderStatus, PaymentStatus
from pulse_tui.gateways.base import ORDER_METADATA_KEY, GatewayAdapter, GatewayError, RefundInfo
from pulse_tui.storage import queries
from pulse_tui.storage.db import read_session, write_session
from pulse_tui.storage.models import Order, OrderLine, Payment, Product, Refund, Return

from .audit import record_audit, record_event
from .context import Context
from .errors import Conflict, InvalidInput, NotFound, RuleViolation

DEFAULT_LIMIT = 50_000
# How long a claimed refund with no answer is left alone before recovery may
# send it again (after looking it up at the gateway): longer than any HTTP
# call of ours can take, so a call still in flight is never doubled.
RESEND_GRACE = timedelta(minutes=2)
# Gateways whose refunds we pay back by hand: executing records them as done.
MANUAL_GATEWAYS = frozenset({"manual", "bank_transfer"})
REFUNDED_HOLD = "refund"


# -- what the screens and the CLI get ---------------------------------------------


@dataclass(frozen=True)
class LineOption:
    line_id: int
    sku: str
    name: str
    quantity: int
    refundable: int  # units not yet in an active refund
    unit_value: int  # value of one unit (line value / quantity, for display)
    physical: bool
    fulfilled: int


@dataclass(frozen=True)
class PaymentOption:
    payment_id: int
    gateway: str
    method: str
    label: str
    captured: int
    refundable: int


@dataclass(frozen=True)
class RefundOptions:
    """Everything the refund screen needs to build its form."""

    order_id: int
    number: str
    version: int
    currency: str
    status: str
    lines: list[LineOption]
    shipping_refundable: int
    refundable: int  # the order's paid minus every active refund
    payments: list[PaymentOption]
    reasons: tuple[RefundReason, ...]
    limit: int
    may_approve: bool


@dataclass(frozen=True)
class RefundRequest:
    """What an operator asks for: lines (with quantities and restock), the
    shipping, or a free amount — and why."""

    reason: str
    lines: Sequence[LinePick] = ()
    include_shipping: bool = False
    amount: int | None = None
    payment_id: int | None = None
    note: str | None = None


@dataclass(frozen=True)
class RefundRow:
    id: int
    order_id: int
    order_number: str
    amount: int
    currency: str
    reason: str
    status: str
    gateway: str | None
    gateway_ref: str | None
    created_by: str
    created_at: datetime
    updated_at: datetime
    approved_by: str | None
    failure_reason: str | None
    attempt: int
    return_id: int | None
    lines: list[dict[str, Any]] = field(default_factory=list)
    shipping: int = 0
    tax: int = 0
    note: str | None = None


@dataclass(frozen=True)
class _Claim:
    refund_id: int
    order_number: str
    gateway: str
    payment_ref: str | None
    amount: int
    currency: str
    key: str


def _order_id(s: Session, order_ref: str | int | None) -> int | None:
    """The id of the order a listing is narrowed to (None: every order)."""
    if order_ref is None:
        return None
    order = queries.find_order(s, order_ref)
    if order is None:
        raise NotFound(f"no order {order_ref}")
    return int(order.id or 0)


def _limit(ctx: Context, currency: str) -> int:
    """The approval limit for refunds in ``currency`` (minor units)."""
    return ctx.settings.refund_limit(currency) if ctx.settings is not None else DEFAULT_LIMIT


def _bad(exc: RefundError) -> InvalidInput:
    return InvalidInput(str(exc))


def _attempt_key(refund: Refund) -> str:
    """The key sent to the gateway: the row's own for the first attempt, one per
    attempt after a failure the gateway reported (a new attempt is a new request)."""
    if refund.attempt <= 1:
        return refund.idempotency_key
    return f"{refund.idempotency_key}:{refund.attempt}"


# -- reading the numbers the rules need -----------------------------------------------


def _active_refunds(s: Session, order_id: int) -> list[Refund]:
    """Refunds holding money on the order, plus the credit of each exchanged
    return as if it were one (not stored): those units and that value were
    given back as a replacement, so a refund must not pay them out again."""
    held = list(
        s.execute(
            select(Refund).where(
                col(Refund.order_id) == order_id,
                col(Refund.status).in_([st.value for st in ACTIVE]),
            )
        ).scalars()
    )
    exchanged = s.execute(
        select(Return).where(
            col(Return.order_id) == order_id, col(Return.status) == ReturnStatus.EXCHANGED.value
        )
    ).scalars()
    for ret in exchanged:
        lines = [ln for ln in ret.lines or [] if int(ln.get("received") or 0) > 0]
        held.append(
            Refund(  # never added to the session
                order_id=order_id,
                amount=sum(int(ln.get("credit") or 0) for ln in lines),
                currency="",
                reason="exchange credit",
                status=RefundStatus.SUCCEEDED.value,
                idempotency_key=f"exchange-credit-{ret.id}",
                lines=[{"line_id": ln["line_id"], "quantity": ln["received"]} for ln in lines],
                created_by="",
            )
        )
    return held


def _lines(s: Session, order_id: int) -> list[OrderLine]:
    return list(
        s.execute(
            select(OrderLine).where(col(OrderLine.order_id) == order_id).order_by(col(OrderLine.id))
        ).scalars()
    )


def _line_of(item: Mapping[str, Any], by_sku: Mapping[str, int]) -> int | None:
    """The order line a refund's line entry is about: by id, or (rows written
    by older code and the demo seeder) by SKU."""
    if item.get("line_id") is not None:
        return int(item["line_id"])
    return by_sku.get(str(item.get("sku", "")).upper())


def _line_states(order: Order, lines: list[OrderLine], active: list[Refund]) -> list[LineState]:
    by_sku = {ln.sku.upper(): int(ln.id or 0) for ln in lines}
    committed: dict[int, int] = {}
    for r in active:
        for item in r.lines or []:
            line_id = _line_of(item, by_sku)
            if line_id is not None:
                committed[line_id] = committed.get(line_id, 0) + int(item.get("quantity", 0))
    values = rules.line_values([ln.line_total for ln in lines], order.discount)
    return [
        LineState(
            line_id=int(ln.id or 0),
            sku=ln.sku,
            quantity=ln.quantity,
            value=v,
            tax=ln.tax,
            committed=min(ln.quantity, committed.get(int(ln.id or 0), 0)),
        )
        for ln, v in zip(lines, values, strict=True)
    ]


def _payments(s: Session, order_id: int) -> list[Payment]:
    return list(
        s.execute(
            select(Payment).where(col(Payment.order_id) == order_id).order_by(col(Payment.id))
        ).scalars()
    )


def _payment_refundable(p: Payment, active: list[Refund]) -> int:
    if p.status not in (*sm.PAID_STATES, PaymentStatus.REFUNDED):
        return 0
    held = sum(r.amount for r in active if r.payment_id == p.id)
    return max(0, p.captured - held)


def _payment_label(p: Payment) -> str:
    card = f" {p.card_brand or 'card'} •••• {p.card_last4}" if p.card_last4 else ""
    ref = f" {p.gateway_ref}" if p.gateway_ref else ""
    return f"#{p.id} {p.gateway} {p.method}{card}{ref}"


def _order_refundable(order: Order, active: list[Refund]) -> int:
    return max(0, order.paid - sum(r.amount for r in active))


def _describe(quote: Quote, currency: str) -> str:
    parts = [f"{q.quantity} × {q.sku}" for q in quote.lines]
    if quote.shipping:
        parts.append("shipping")
    what = ", ".join(parts) if parts else "a free amount"
    return f"{format_money(quote.amount, currency)} ({what})"


class RefundService:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def _orders(self) -> Any:
        from .orders import OrderService

        return OrderService(self.ctx)

    # -- reads ------------------------------------------------------------------

    def options(self, order_ref: str | int) -> RefundOptions:
        """Agents and admins: what may be refunded on this order now."""
        self.ctx.actor.require(Permission.REFUND, "refund orders")
        with read_session(self.ctx.engine) as s:
            order = queries.find_order(s, order_ref)
            if order is None:
                raise NotFound(f"no order {order_ref}")
            oid = int(order.id or 0)
            active = _active_refunds(s, oid)
            lines = _lines(s, oid)
            states = _line_states(order, lines, active)
            payments = _payments(s, oid)
            ship_done = sum(r.shipping for r in active)
            return RefundOptions(
                order_id=oid,
                number=order.number,
                version=order.version,
                currency=order.currency,
                status=order.status,
                lines=[
                    LineOption(
                        line_id=st.line_id,
                        sku=ln.sku,
                        name=ln.name,
                        quantity=ln.quantity,
                        refundable=st.quantity - st.committed,
                        unit_value=st.value // max(1, st.quantity),
                        physical=ln.kind == "physical",
                        fulfilled=ln.qty_fulfilled,
                    )
                    for ln, st in zip(lines, states, strict=True)
                ],
                shipping_refundable=max(0, order.shipping - ship_done),
                refundable=_order_refundable(order, active),
                payments=[
                    PaymentOption(
                        payment_id=int(p.id or 0),
                        gateway=p.gateway,
                        method=p.method,
                        label=_payment_label(p),
                        captured=p.captured,
                        refundable=_payment_refundable(p, active),
                    )
                    for p in payments
                    if p.captured > 0
                ],
                reasons=rules.OPERATOR_REASONS,
                limit=_limit(self.ctx, order.currency),
                may_approve=self.ctx.actor.can(Permission.REFUND_ANY),
            )

    def preview(self, order_ref: str | int, request: RefundRequest) -> Quote:
        """Agents and admins: the amounts a refund would give back (nothing is written)."""
        self.ctx.actor.require(Permission.REFUND, "refund orders")
        with read_session(self.ctx.engine) as s:
            order = queries.find_order(s, order_ref)
            if order is None:
                raise NotFound(f"no order {order_ref}")
            quote, _payment = self._quote(s, order, request)
            return quote

    def _quote(self, s: Session, order: Order, request: RefundRequest) -> tuple[Quote, Payment]:
        try:
            rules.parse_reason(request.reason)
        except RefundError as exc:
            raise _bad(exc) from None
        oid = int(order.id or 0)
        active = _active_refunds(s, oid)
        payments = [p for p in _payments(s, oid) if p.captured > 0]
        if not payments or order.paid <= 0:
            raise RuleViolation(f"{order.number}: nothing was paid, so nothing can be refunded")
        if request.payment_id is not None:
            chosen = [p for p in payments if p.id == request.payment_id]
            if not chosen:
                raise InvalidInput(
                    f"payment #{request.payment_id} is not a payment of {order.number}"
                )
            payment = chosen[0]
        else:
            open_ = [p for p in payments if _payment_refundable(p, active) > 0]
            if len(open_) > 1:
                ids = ", ".join(f"#{p.id}" for p in open_)
                raise InvalidInput(
                    f"{order.number} has {len(open_)} payments ({ids}): choose which one to refund"
                )
            payment = open_[0] if open_ else payments[0]
        refundable = min(_payment_refundable(payment, active), _order_refundable(order, active))
        try:
            quote = rules.quote(
                _line_states(order, _lines(s, oid), active),
                request.lines,
                shipping=order.shipping,
                shipping_committed=sum(r.shipping for r in active),
                include_shipping=request.include_shipping,
                amount=request.amount,
                refundable=refundable,
                currency=order.currency,
            )
        except RefundError as exc:
            raise RuleViolation(f"{order.number}: {exc}") from None
        return quote, payment

    def get(self, refund_id: int) -> RefundRow:
        self.ctx.actor.require(Permission.READ_PAYMENTS, "read refunds")
        rows = self.list_refunds(ids=[refund_id])
        if not rows:
            raise NotFound(f"no refund #{refund_id}")
        return rows[0]

    def list_refunds(
        self,
        *,
        status: str | None = None,
        order_ref: str | int | None = None,
        ids: Sequence[int] = (),
        limit: int = 200,
        offset: int = 0,
    ) -> list[RefundRow]:
        """Everyone who may see payments: refunds across orders, failed and
        waiting-for-approval first, then newest first."""
        self.ctx.actor.require(Permission.READ_PAYMENTS, "read refunds")
        if status is not None and status not in {st.value for st in RefundStatus}:
            allowed = ", ".join(st.value for st in RefundStatus)
            raise InvalidInput(f"unknown refund status {status!r} (one of: {allowed})")
        with read_session(self.ctx.engine) as s:
            rows = queries.refund_rows(
                s,
                first=[[st.value] for st in rules.NEEDS_ATTENTION],
                status=status,
                order_id=_order_id(s, order_ref),
                ids=ids,
                limit=limit,
                offset=offset,
            )
        return [_row(r, number, gateway) for r, number, gateway in rows]

    def counts(self) -> dict[str, int]:
        """Refunds per status (the refunds screen's tabs)."""
        self.ctx.actor.require(Permission.READ_PAYMENTS, "read refunds")
        with read_session(self.ctx.engine) as s:
            got = queries.count_by_status(s, Refund)
        return {st.value: int(got.get(st.value, 0)) for st in RefundStatus}

    # -- create, approve, cancel, retry ------------------------------------------

    def create(
        self,
        order_ref: str | int,
        request: RefundRequest,
        *,
        approve: bool = False,
        expected_version: int | None = None,
        idempotency_key: str | None = None,
        return_id: int | None = None,
    ) -> Refund:
        """Agents and admins. Commits a refund request with its idempotency key;
        within the refund limit it is approved at once, above it it waits for an
        admin (``approve=True`` lets an admin approve in the same step). Nothing
        is sent: ``execute`` does that.

        ``idempotency_key`` (a screen passes one per dialog, a script may pass
        its own) makes a repeated submit return the refund already made."""
        self.ctx.actor.require(Permission.REFUND, "refund orders")
        if approve:
            self.ctx.actor.require(Permission.REFUND_ANY, "approve refunds")
        note = self._orders_clean(request.note, "note") if request.note else None
        key = (idempotency_key or "").strip() or str(uuid.uuid4())
        if len(key) > 200:
            raise InvalidInput("idempotency key is longer than 200 characters")
        try:
            reason = rules.parse_reason(request.reason)
        except RefundError as exc:
            raise _bad(exc) from None
        if reason == RefundReason.ORDER_CANCELLED:
            raise InvalidInput("order_cancelled refunds come from cancelling the order")
        if reason == RefundReason.RETURN and return_id is None:
            raise InvalidInput("return refunds come from a return (pulse returns refund)")
        if idempotency_key:
            with read_session(self.ctx.engine) as s:
                same = self._by_key(s, key)
                if same is not None:
                    return self._same_request(s, same, order_ref)
        svc = self._orders()
        try:
            with svc._locked(order_ref, expected_version, "refund.create") as (s, order, _):
                same = self._by_key(s, key)
                if same is not None:  # a double submit that raced us: write nothing
                    self._same_request(s, same, order.id)
                    s.expunge(same)  # keep it readable after the rollback
                    raise _Unchanged(same)
                return self._create_in(s, order, request, reason, key, note, approve, return_id)
        except _Unchanged as done:
            return cast(Refund, done.args[0])

    def _create_in(
        self,
        s: Session,
        order: Order,
        request: RefundRequest,
        reason: RefundReason,
        key: str,
        note: str | None,
        approve: bool,
        return_id: int | None,
    ) -> Refund:
        quote, payment = self._quote(s, order, request)
        refund = self._add(
            s,
            order,
            payment,
            quote,
            reason=reason,
            key=key,
            note=note,
            approve=approve,
            return_id=return_id,
        )
        return refund

    def _orders_clean(self, text: str | None, what: str) -> str:
        from .orders import _clean

        return _clean(text, what, 500)

    @staticmethod
    def _same_request(s: Session, refund: Refund, order_ref: str | int | None) -> Refund:
        """A repeated key names the refund already made — for the same order only."""
        order = queries.find_order(s, order_ref) if order_ref is not None else None
        if order is None or order.id != refund.order_id:
            raise Conflict(f"that idempotency key was already used for refund #{refund.id}")
        return refund

    @staticmethod
    def _by_key(s: Session, key: str) -> Refund | None:
        return s.execute(
            select(Refund).where(col(Refund.idempotency_key) == key)
        ).scalar_one_or_none()

    def _add(
        self,
        s: Session,
        order: Order,
        payment: Payment,
        quote: Quote,
        *,
        reason: RefundReason,
        key: str,
        note: str | None = None,
        approve: bool = False,
        return_id: int | None = None,
    ) -> Refund:
        """The refund row, its events and audit entry (inside the order's transaction)."""
        now = self.ctx.now()
        # Above the limit a refund waits for an admin, unless an admin approves
        # it as they create it (``approve``; require() checked the right).
        limit = _limit(self.ctx, order.currency)
        waits = quote.amount > limit and not approve
        refund = Refund(
            order_id=int(order.id or 0),
            payment_id=payment.id,
            amount=quote.amount,
            currency=order.currency,
            reason=reason.value,
            status=(RefundStatus.REQUESTED if waits else RefundStatus.APPROVED).value,
            idempotency_key=key,
            lines=[
                {
                    "line_id": q.line_id,
                    "sku": q.sku,
                    "quantity": q.quantity,
                    "amount": q.amount,
                    "tax": q.tax,
                    "restock": q.restock,
                }
                for q in quote.lines
            ],
            shipping=quote.shipping,
            tax=quote.tax,
            note=note,
            return_id=return_id,
            created_by=self.ctx.actor.label,
            created_at=now,
            updated_at=now,
            approved_by=None if waits else self.ctx.actor.label,
            approved_at=None if waits else now,
        )
        s.add(refund)
        s.flush()
        what = _describe(quote, order.currency)
        record_event(
            s,
            self.ctx,
            order,
            "refund_requested",
            f"Refund #{refund.id} of {what} requested: {reason.value.replace('_', ' ')}"
            + (f" — {note}" if note else ""),
            {"refund": refund.id, "amount": quote.amount, "payment": payment.id},
        )
        if waits:
            record_event(
                s,
                self.ctx,
                order,
                "refund_awaiting_approval",
                f"Refund #{refund.id} is above the {format_money(limit, order.currency)}"
                " limit: waiting for an admin's approval",
                {"refund": refund.id},
            )
        else:
            record_event(
                s,
                self.ctx,
                order,
                "refund_approved",
                f"Refund #{refund.id} approved"
                + (" (within the limit)" if quote.amount <= limit else ""),
                {"refund": refund.id},
            )
        record_audit(s, self.ctx, "refund.create", "refund", refund.id or 0, None, _snap(refund))
        return refund

    def approve(self, refund_id: int) -> Refund:
        """Admins: approve a refund waiting above the limit (it may then be sent)."""
        self.ctx.actor.require(Permission.REFUND_ANY, "approve refunds")
        return self._step(
            refund_id,
            "refund.approve",
            (RefundStatus.REQUESTED,),
            RefundStatus.APPROVED,
            lambda r: f"Refund #{r.id} approved",
            approved=True,
        )

    def cancel(self, refund_id: int, note: str | None = None) -> Refund:
        """Agents and admins: withdraw a refund not yet sent (requested, approved or
        failed); what it held becomes refundable again."""
        self.ctx.actor.require(Permission.REFUND, "cancel refunds")
        note_c = self._orders_clean(note, "note") if note else None
        return self._step(
            refund_id,
            "refund.cancel",
            (RefundStatus.REQUESTED, RefundStatus.APPROVED, RefundStatus.FAILED),
            RefundStatus.CANCELLED,
            lambda r: f"Refund #{r.id} cancelled" + (f": {note_c}" if note_c else ""),
            then=self._reopen_return,
        )

    def _reopen_return(self, s: Session, order: Order, refund: Refund) -> None:
        """The return this refund was made for (if any, and if it is still the
        return's refund) is received again, in the cancel's transaction: its
        units can be refunded (under a new key) or exchanged once more."""
        ret = s.get(Return, refund.return_id) if refund.return_id is not None else None
        if ret is None or ret.refund_id != refund.id:
            return
        status = rules.reopened_return_status(ret.status)
        if status is None:
            return
        before = {"status": ret.status, "refund_id": ret.refund_id}
        ret.status = status.value
        ret.refund_id = None
        ret.updated_at = self.ctx.now()
        record_event(
            s,
            self.ctx,
            order,
            "return_reopened",
            f"Return #{ret.id} is {status.value} again: its refund #{refund.id} was cancelled",
            {"return": ret.id, "refund": refund.id},
        )
        after = {"status": ret.status, "refund_id": None}
        record_audit(s, self.ctx, "return.reopen", "return", ret.id or 0, before, after)

    def retry(self, refund_id: int) -> Refund:
        """Agents and admins: a failed refund goes back to approved as a new
        attempt (with its own idempotency key) and may be sent again — only if
        it still fits: while it was failed it held no money, so another refund
        may have taken it."""
        self.ctx.actor.require(Permission.REFUND, "retry refunds")
        with read_session(self.ctx.engine) as s:
            found = s.get(Refund, refund_id)
            if found is None:
                raise NotFound(f"no refund #{refund_id}")
            order_id = found.order_id
        with self._orders()._locked(order_id, None, "refund.retry") as (s, order, _):
            refund = s.get(Refund, refund_id)
            assert refund is not None
            if refund.status != RefundStatus.FAILED:
                raise RuleViolation(f"refund #{refund_id} is {refund.status}; this needs it failed")
            self._still_fits(s, order, refund)
            before = _snap(refund)
            refund.attempt += 1
            refund.failure_reason = None
            refund.sent_at = None
            refund.gateway_ref = None  # the failed attempt's; this attempt has none yet
            refund.status = RefundStatus.APPROVED.value
            refund.updated_at = self.ctx.now()
            record_event(
                s,
                self.ctx,
                order,
                "refund_approved",
                f"Refund #{refund.id} retried (attempt {refund.attempt})",
                {"refund": refund.id},
            )
            record_audit(s, self.ctx, "refund.retry", "refund", refund_id, before, _snap(refund))
            s.flush()
            s.expunge(refund)
            return refund

    @staticmethod
    def _still_fits(s: Session, order: Order, refund: Refund) -> None:
        oid = int(order.id or 0)
        active = _active_refunds(s, oid)
        payment = s.get(Payment, refund.payment_id) if refund.payment_id else None
        room = _order_refundable(order, active)
        if payment is not None:
            room = min(room, _payment_refundable(payment, active))
        problem = None
        if refund.amount > room:
            problem = f"{format_money(room, order.currency)} is still refundable"
        states = {st.line_id: st for st in _line_states(order, _lines(s, oid), active)}
        by_sku = {st.sku.upper(): st.line_id for st in states.values()}
        for item in refund.lines or []:
            st = states.get(_line_of(item, by_sku) or 0)
            if st is not None and int(item.get("quantity", 0)) > st.quantity - st.committed:
                problem = f"only {st.quantity - st.committed} of {st.sku} are left to refund"
        if refund.shipping > order.shipping - sum(r.shipping for r in active):
            problem = "the shipping was refunded meanwhile"
        if problem:
            raise RuleViolation(
                f"refund #{refund.id} no longer fits ({problem}); cancel it and make a new one"
            )

    def _step(
        self,
        refund_id: int,
        action: str,
        sources: tuple[RefundStatus, ...],
        target: RefundStatus,
        message: Callable[[Refund], str],
        *,
        approved: bool = False,
        then: Callable[[Session, Order, Refund], None] | None = None,
    ) -> Refund:
        with write_session(self.ctx.engine) as s:
            refund = s.get(Refund, refund_id)
            if refund is None:
                raise NotFound(f"no refund #{refund_id}")
            if refund.status not in sources:
                allowed = " or ".join(src.value for src in sources)
                raise RuleViolation(
                    f"refund #{refund_id} is {refund.status}; this needs it {allowed}"
                )
            order = s.get(Order, refund.order_id)
            assert order is not None
            before = _snap(refund)
            text = message(refund)
            refund.status = target.value
            refund.updated_at = self.ctx.now()
            if approved:
                refund.approved_by, refund.approved_at = self.ctx.actor.label, self.ctx.now()
            record_event(s, self.ctx, order, f"refund_{target.value}", text, {"refund": refund.id})
            record_audit(s, self.ctx, action, "refund", refund_id, before, _snap(refund))
            if then is not None:
                then(s, order, refund)
            s.flush()
            s.expunge(refund)
            return refund

    # -- sending -------------------------------------------------------------------

    def execute_sync(
        self, refund_id: int, adapters: Mapping[str, GatewayAdapter] | None = None
    ) -> Refund:
        """``execute`` for code without an event loop (the CLI, TUI thread workers)."""
        return asyncio.run(self.execute(refund_id, adapters))

    async def execute(
        self, refund_id: int, adapters: Mapping[str, GatewayAdapter] | None = None
    ) -> Refund:
        """Agents and admins (and the sync): send an approved refund to its
        gateway, exactly once (see the module docstring). Returns the refund as
        it stands afterwards: succeeded, pending (the gateway will settle it, or
        the answer was lost and recovery will find it), or failed with why."""
        self.ctx.actor.require(Permission.REFUND, "send refunds")
        claim = await asyncio.to_thread(self._claim, refund_id)
        if claim is not None:
            async with _adapters(self.ctx, adapters) as ads:
                await self._send(claim, ads)
        return await asyncio.to_thread(self._load, refund_id)

    def _load(self, refund_id: int) -> Refund:
        with read_session(self.ctx.engine) as s:
            refund = s.get(Refund, refund_id)
            if refund is None:
                raise NotFound(f"no refund #{refund_id}")
            s.expunge(refund)
            return refund

    def _claim(self, refund_id: int, *, resend_before: datetime | None = None) -> _Claim | None:
        """approved → pending (or, for recovery, a stale pending claim renewed),
        in one guarded UPDATE. None when another process holds it or it is not
        approved. Refunds of hand-paid payments are recorded as done here."""
        now = self.ctx.now()
        with write_session(self.ctx.engine) as s:
            refund = s.get(Refund, refund_id)
            if refund is None:
                raise NotFound(f"no refund #{refund_id}")
            if refund.status == RefundStatus.REQUESTED:
                raise RuleViolation(f"refund #{refund_id} waits for an admin's approval")
            guard: Any
            if resend_before is None:
                guard = col(Refund.status) == RefundStatus.APPROVED.value
            else:
                guard = (
                    (col(Refund.status) == RefundStatus.PENDING.value)
                    & col(Refund.gateway_ref).is_(None)
                    & (col(Refund.sent_at) < resend_before)
                )
            res = cast(
                "CursorResult[Any]",
                s.execute(
                    update(Refund)
                    .where(col(Refund.id) == refund_id, guard)
                    .values(status=RefundStatus.PENDING.value, sent_at=now, updated_at=now)
                    .execution_options(synchronize_session=False)
                ),
            )
            if res.rowcount != 1:
                return None
            s.refresh(refund)
            payment = s.get(Payment, refund.payment_id) if refund.payment_id else None
            order = s.get(Order, refund.order_id)
            assert order is not None
            gateway = payment.gateway if payment is not None else "manual"
            if payment is None or gateway in MANUAL_GATEWAYS or not payment.gateway_ref:
                return _Claim(
                    refund_id, order.number, gateway, None, refund.amount, refund.currency, ""
                )
            record_event(
                s,
                self.ctx,
                order,
                "refund_sent",
                f"Refund #{refund.id} of {format_money(refund.amount, refund.currency)} "
                f"sent to {gateway}"
                + (" again (no answer came back)" if resend_before is not None else ""),
                {"refund": refund.id, "attempt": refund.attempt},
            )
            return _Claim(
                refund_id=refund_id,
                order_number=order.number,
                gateway=gateway,
                payment_ref=payment.gateway_ref,
                amount=refund.amount,
                currency=refund.currency,
                key=_attempt_key(refund),
            )

    async def _send(self, claim: _Claim, adapters: Mapping[str, GatewayAdapter]) -> None:
        if claim.payment_ref is None:  # paid by hand (bank transfer): paid back by hand
            info = RefundInfo(
                claim.gateway,
                f"manual-{claim.refund_id}",
                "",
                "succeeded",
                claim.amount,
                claim.currency,
                str(claim.refund_id),
            )
            await asyncio.to_thread(self._succeed, claim.refund_id, info, True)
            return
        adapter = adapters.get(claim.gateway)
        if adapter is None:
            await asyncio.to_thread(
                self.record_failure,
                claim.refund_id,
                f"{claim.gateway} is not configured here; the payment sync sends it once it is",
                definite=False,
            )
            return
        assert claim.payment_ref is not None
        try:
            info = await adapter.create_refund(
                claim.payment_ref,
                claim.amount,
                claim.currency,
                idempotency_key=claim.key,
                refund_id=str(claim.refund_id),
                metadata={ORDER_METADATA_KEY: claim.order_number},
            )
        except GatewayError as exc:
            # 4xx: the gateway refused this request for good. Anything else
            # (timeout, 5xx, connection): we do not know; recovery asks first.
            definite = not exc.retryable and exc.status is not None and exc.status < 500
            await asyncio.to_thread(
                self.record_failure, claim.refund_id, str(exc), definite=definite
            )
            return
        await asyncio.to_thread(self.record, info)

    def record_failure(self, refund_id: int, reason: str, *, definite: bool) -> None:
        """The gateway refused (``definite``: failed, may be retried as a new
        attempt) or we could not tell (stays pending for recovery)."""
        with write_session(self.ctx.engine) as s:
            refund = s.get(Refund, refund_id)
            if refund is None or refund.status != RefundStatus.PENDING or refund.gateway_ref:
                return
            order = s.get(Order, refund.order_id)
            assert order is not None
            before = _snap(refund)
            refund.failure_reason = reason[:500]
            refund.updated_at = self.ctx.now()
            if definite:
                refund.status = RefundStatus.FAILED.value
                text = f"Refund #{refund.id} failed: {reason}"
                kind = "refund_failed"
            else:
                text = f"Refund #{refund.id}: no answer from the gateway ({reason}); will check"
                kind = "refund_unknown"
            record_event(s, self.ctx, order, kind, text, {"refund": refund.id})
            record_audit(s, self.ctx, f"refund.{kind}", "refund", refund_id, before, _snap(refund))

    def record(self, info: RefundInfo) -> bool:
        """Record what the gateway says of one of our refunds (its answer to a
        send, a lookup, or the sync's refresh). Idempotent: returns whether
        anything changed. Money moves on the order when it says succeeded."""
        with read_session(self.ctx.engine) as s:
            refund = self._find(s, info)
            if refund is None or (refund.status == info.status and refund.gateway_ref == info.ref):
                return False
            refund_id = int(refund.id or 0)
        if info.status == RefundStatus.SUCCEEDED:
            return self._succeed(refund_id, info)
        with write_session(self.ctx.engine) as s:
            refund = s.get(Refund, refund_id)
            assert refund is not None
            if refund.status in (RefundStatus.SUCCEEDED, RefundStatus.CANCELLED):
                return False
            if refund.status == info.status and refund.gateway_ref == info.ref:
                return False
            order = s.get(Order, refund.order_id)
            assert order is not None
            before = _snap(refund)
            refund.gateway_ref = info.ref
            refund.status = info.status
            refund.failure_reason = info.failure_reason if info.status == "failed" else None
            refund.updated_at = self.ctx.now()
            if info.status == RefundStatus.FAILED:
                why = info.failure_reason or "no reason given"
                text = f"Refund #{refund.id} failed at {info.gateway}: {why}"
            else:
                text = f"Refund #{refund.id} is {info.status} at {info.gateway} ({info.ref})"
            record_event(
                s,
                self.ctx,
                order,
                f"refund_{info.status}",
                text,
                {"refund": refund.id, "reference": info.ref},
            )
            record_audit(s, self.ctx, "refund.sync", "refund", refund_id, before, _snap(refund))
            return True

    def _succeed(self, refund_id: int, info: RefundInfo, manual: bool = False) -> bool:
        """The money went back: settle it in the order's transaction (once)."""
        with read_session(self.ctx.engine) as s:
            refund = s.get(Refund, refund_id)
            if refund is None or refund.status == RefundStatus.SUCCEEDED:
                return False
            order_id = refund.order_id
        try:
            with self._orders()._locked(order_id, None, "refund.succeeded") as (s, _o, _b):
                refund = s.get(Refund, refund_id)
                assert refund is not None
                if refund.status == RefundStatus.SUCCEEDED:
                    raise _Unchanged  # rolls back the version bump too
                self._settle(s, refund, info, manual=manual)
        except _Unchanged:
            return False
        return True

    @staticmethod
    def _find(s: Session, info: RefundInfo) -> Refund | None:
        refund = s.execute(
            select(Refund).where(col(Refund.gateway_ref) == info.ref)
        ).scalar_one_or_none()
        if refund is None and info.refund_id and info.refund_id.isdigit():
            candidate = s.get(Refund, int(info.refund_id))
            # our metadata id is only ours on this payment
            if candidate is not None and candidate.payment_id is not None:
                p = s.get(Payment, candidate.payment_id)
                if p is not None and (not info.payment_ref or p.gateway_ref == info.payment_ref):
                    refund = candidate
        return refund

    def _settle(
        self, s: Session, refund: Refund, info: RefundInfo, *, manual: bool = False
    ) -> None:
        """Money went back: the refund, its payment, its lines and the order
        follow (inside the order's transaction)."""
        order = s.get(Order, refund.order_id)
        assert order is not None
        before = _snap(refund)
        refund.status = RefundStatus.SUCCEEDED.value
        refund.gateway_ref = info.ref
        refund.failure_reason = None
        refund.updated_at = self.ctx.now()
        if refund.payment_id is not None:
            payment = s.get(Payment, refund.payment_id)
            if payment is not None:
                payment.refunded += refund.amount
                payment.status = rules.payment_status_after(
                    payment.captured, payment.refunded
                ).value
        order.refunded += refund.amount
        order.payment_status = rules.payment_status_after(order.paid, order.refunded).value
        order_lines = _lines(s, int(order.id or 0))
        lines = {int(ln.id or 0): ln for ln in order_lines}
        by_sku = {ln.sku.upper(): int(ln.id or 0) for ln in order_lines}
        restocked = []
        for item in refund.lines or []:
            ln = lines.get(_line_of(item, by_sku) or 0)
            if ln is None:
                continue
            qty = int(item["quantity"])
            ln.qty_refunded += qty
            if item.get("restock") and ln.kind == "physical":
                p = s.get(Product, ln.product_id)
                if p is not None:
                    if ln.qty_fulfilled > 0:
                        p.stock_on_hand += qty  # the goods came back to the shelf
                    else:
                        p.stock_reserved = max(0, p.stock_reserved - qty)  # never to ship
                    restocked.append(f"{qty} × {ln.sku}")
        how = "(paid back by hand)" if manual else f"at {info.gateway} ({info.ref})"
        record_event(
            s,
            self.ctx,
            order,
            "refund_succeeded",
            f"Refund #{refund.id} of {format_money(refund.amount, refund.currency)} succeeded {how}"
            + (f"; restocked {', '.join(restocked)}" if restocked else ""),
            {"refund": refund.id, "reference": info.ref},
        )
        target = rules.fully_refunded_status(OrderStatus(order.status), order.paid, order.refunded)
        if target is not None:
            was = order.status
            order.status = target.value
            record_event(s, self.ctx, order, "status", f"{was} → {target.value} (fully refunded)")
        record_audit(
            s, self.ctx, "refund.succeeded", "refund", refund.id or 0, before, _snap(refund)
        )

    # -- recovery (the payment sync runs it) -------------------------------------

    async def recover(
        self,
        adapters: Mapping[str, GatewayAdapter],
        *,
        grace: timedelta = RESEND_GRACE,
        gateway: str | None = None,
    ) -> list[int]:
        """Finish what a crash, timeout or closed screen left: approved refunds
        are sent; pending ones without a gateway answer are looked up at the
        gateway by our metadata and recorded, or — when the gateway has none and
        the claim is older than ``grace`` — sent again with the same key.
        Returns the ids it touched."""
        approved, unanswered = await asyncio.to_thread(self._stuck, gateway)
        touched: list[int] = []
        for refund_id in approved:
            claim = await asyncio.to_thread(self._claim, refund_id)
            if claim is not None:
                await self._send(claim, adapters)
                touched.append(refund_id)
        for refund_id, gw, payment_ref in unanswered:
            if gw in MANUAL_GATEWAYS or payment_ref is None:
                # paid back by hand: nothing to ask; finish what a crash left
                claim = await asyncio.to_thread(
                    self._claim, refund_id, resend_before=self.ctx.now() - grace
                )
                if claim is not None:
                    await self._send(claim, adapters)
                    touched.append(refund_id)
                continue
            adapter = adapters.get(gw)
            if adapter is None:
                continue
            try:
                # Ours by metadata, and not a failed earlier attempt (a failed
                # refund moved no money, so it does not count as sent).
                live = [
                    r
                    for r in await adapter.list_refunds(payment_ref)
                    if r.refund_id == str(refund_id) and r.status not in ("failed", "cancelled")
                ]
            except GatewayError:
                continue  # asked again next run; the others go on
            if live:
                await asyncio.to_thread(self.record, live[0])
                touched.append(refund_id)
                continue
            claim = await asyncio.to_thread(
                self._claim, refund_id, resend_before=self.ctx.now() - grace
            )
            if claim is not None:
                await self._send(claim, adapters)
                touched.append(refund_id)
        return touched

    def _stuck(self, gateway: str | None) -> tuple[list[int], list[tuple[int, str, str | None]]]:
        with read_session(self.ctx.engine) as s:
            q = (
                select(
                    col(Refund.id),
                    col(Refund.status),
                    col(Payment.gateway),
                    col(Payment.gateway_ref),
                )
                .outerjoin(Payment, col(Payment.id) == col(Refund.payment_id))
                .where(
                    (col(Refund.status) == RefundStatus.APPROVED.value)
                    | (
                        (col(Refund.status) == RefundStatus.PENDING.value)
                        & col(Refund.gateway_ref).is_(None)
                    )
                )
                .order_by(col(Refund.id))
            )
            if gateway is not None:  # this gateway's, and those paid back by hand
                q = q.where(
                    (col(Payment.gateway) == gateway)
                    | col(Payment.gateway).in_(sorted(MANUAL_GATEWAYS))
                    | col(Payment.id).is_(None)
                )
            approved: list[int] = []
            unanswered: list[tuple[int, str, str | None]] = []
            for rid, st, gw, ref in s.execute(q).all():
                if st == RefundStatus.APPROVED:
                    approved.append(int(rid))
                else:
                    unanswered.append((int(rid), str(gw or "manual"), ref))
            return approved, unanswered

    def pending_refs(self, gateway: str) -> list[str]:
        """Gateway references of refunds the gateway has not settled yet."""
        with read_session(self.ctx.engine) as s:
            rows = s.execute(
                select(col(Refund.gateway_ref))
                .join(Payment, col(Payment.id) == col(Refund.payment_id))
                .where(
                    col(Payment.gateway) == gateway,
                    col(Refund.gateway_ref).is_not(None),
                    col(Refund.status) == RefundStatus.PENDING.value,
                )
                .order_by(col(Refund.id))
            ).scalars()
            return [str(r) for r in rows]


class _Unchanged(Exception):
    pass


@asynccontextmanager
async def _adapters(ctx: Context, given: Mapping[str, GatewayAdapter] | None) -> Any:
    """The adapters to send with: the caller's, or ones built from settings
    around a client that lives as long as the call."""
    if given is not None:
        yield given
        return
    from pulse_tui.gateways.sync import build_adapters, make_client

    if ctx.settings is None:
        yield {}
        return
    async with make_client() as client:
        yield build_adapters(ctx.settings, client)


def _snap(refund: Refund) -> dict[str, Any]:
    return {
        "order_id": refund.order_id,
        "payment_id": refund.payment_id,
        "amount": refund.amount,
        "currency": refund.currency,
        "reason": refund.reason,
        "status": refund.status,
        "gateway_ref": refund.gateway_ref,
        "attempt": refund.attempt,
        "failure_reason": refund.failure_reason,
    }


def _row(r: Refund, number: str, gateway: str | None) -> RefundRow:
    return RefundRow(
        id=int(r.id or 0),
        order_id=r.order_id,
        order_number=number,
        amount=r.amount,
        currency=r.currency,
        reason=r.reason,
        status=r.status,
        gateway=gateway,
        gateway_ref=r.gateway_ref,
        created_by=r.created_by,
        created_at=r.created_at,
        updated_at=r.updated_at,
        approved_by=r.approved_by,
        failure_reason=r.failure_reason,
        attempt=r.attempt,
        return_id=r.return_id,
        lines=list(r.lines or []),
        shipping=r.shipping,
        tax=r.tax,
        note=r.note,
    )


# -- the cancel path ---------------------------------------------------------------


def refund_on_cancel(s: Session, ctx: Context, order: Order) -> list[Refund]:
    """Inside the cancel transaction: a refund of what is still paid on each
    payment, through the same rules and rows as any refund (approved within the
    limit, else waiting for an admin). Sent afterwards by ``execute`` — the
    cancelling door calls it — or by the payment sync's recovery."""
    svc = RefundService(ctx)
    oid = int(order.id or 0)
    made: list[Refund] = []
    for payment in _payments(s, oid):
        active = _active_refunds(s, oid)
        due = min(_payment_refundable(payment, active), _order_refundable(order, active))
        if due <= 0:
            continue
        quote = Quote(due, 0, 0, (), due)
        made.append(
            svc._add(
                s,
                order,
                payment,
                quote,
                reason=RefundReason.ORDER_CANCELLED,
                key=str(uuid.uuid4()),
                approve=ctx.actor.can(Permission.REFUND_ANY),
            )
        )
    return made


__all__ = [
    "LineOption",
    "PaymentOption",
    "RefundOptions",
    "RefundRequest",
    "RefundRow",
    "RefundService",
    "refund_on_cancel",
]
