"""Payments as the gateways report them: the sync's way into the order rules.

``PaymentService.apply`` takes one ``PaymentInfo`` from an adapter and applies
it in one transaction per order through OrderService's own helpers (so a
payment confirmed by the sync and one confirmed by an agent obey the same
rules and write the same timeline): succeeded → payment paid and the order
pending → processing; failed → payment failed and the order on hold
"payment failed". The actor is ``gateway:<name>``.

Applying a result that is already reflected changes nothing at all: no
version bump, no event, no audit entry. Applying checks first on a read and
again inside the write transaction, so two syncs racing still apply once.

This module also keeps the sync's own rows: the lease (one sync at a time
across processes) and each gateway's cursor and last-run status.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlmodel import col

from pulse_tui.domain.money import format_money
from pulse_tui.domain.payments import method_problem, parse_method, parse_wallet
from pulse_tui.domain.permissions import Permission, Role
from pulse_tui.domain.status import PAID_STATES, OrderStatus, PaymentStatus
from pulse_tui.gateways.base import PaymentInfo
from pulse_tui.storage import queries
from pulse_tui.storage.db import read_session, write_session
from pulse_tui.storage.models import GatewaySyncState, Order, Payment, SyncLease

from .audit import record_event
from .context import Actor, Context
from .errors import Conflict, InvalidInput, RuleViolation
from .orders import OrderService, _id

PAYMENT_FAILED_HOLD = "payment failed"
LEASE_NAME = "payment-sync"
PENDING_STATES = (PaymentStatus.UNPAID.value, PaymentStatus.AUTHORIZED.value)


def gateway_actor(gateway: str) -> Actor:
    """The sync acts as ``gateway:<name>`` with an agent's rights (confirm, hold)."""
    return Actor(f"gateway:{gateway}", Role.AGENT, f"{gateway} sync")


class Outcome(StrEnum):
    PAID = "paid"
    AUTHORIZED = "authorized"
    FAILED = "failed"
    UNCHANGED = "unchanged"
    UNKNOWN = "unknown"  # no payment or order of ours for this reference
    REFUSED = "refused"  # the rules refuse it (amount mismatch, cancelled order)


@dataclass(frozen=True)
class ApplyResult:
    outcome: Outcome
    ref: str
    order: str | None = None
    message: str = ""

    @property
    def changed(self) -> bool:
        return self.outcome in (Outcome.PAID, Outcome.AUTHORIZED, Outcome.FAILED)


class _Unchanged(Exception):
    """Raised inside the write transaction to roll it back when nothing is to be done."""


def aware(dt: datetime | None) -> datetime | None:
    if dt is None:
        return None
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


class PaymentService:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    # -- registering a gateway payment -----------------------------------------

    def attach(
        self,
        order_ref: str | int,
        *,
        gateway: str,
        reference: str,
        method: str = "card",
        wallet: str | None = None,
    ) -> Payment:
        """Agents and admins (and the checkout/demo as SYSTEM): record that the
        order is being paid through ``gateway`` under ``reference``; pending
        until the sync learns the outcome."""
        self.ctx.actor.require(Permission.HOLD, "attach payments")
        if not reference or not reference.strip():
            raise InvalidInput("a gateway payment needs its reference")
        try:
            method_v, wallet_v = parse_method(method), parse_wallet(wallet)
        except ValueError as exc:
            raise InvalidInput(str(exc)) from None
        problem = method_problem(method_v, wallet_v)
        if problem:
            raise InvalidInput(problem)
        method, wallet = method_v.value, wallet_v.value if wallet_v else None
        svc = OrderService(self.ctx)
        with svc._locked(order_ref, None, "payment.attach") as (s, order, _):
            if _payment_by_ref(s, gateway, reference) is not None:
                raise Conflict(f"{gateway} payment {reference} is already recorded")
            p = Payment(
                order_id=_id(order),
                gateway=gateway,
                method=method,
                wallet=wallet,
                gateway_ref=reference.strip(),
                status=PaymentStatus.UNPAID.value,
                currency=order.currency,
                amount=order.total - order.paid,
                created_at=self.ctx.now(),
            )
            s.add(p)
            record_event(
                s,
                self.ctx,
                order,
                "payment_attached",
                f"Awaiting {format_money(p.amount, p.currency)} via {gateway} ({method})",
                {"gateway": gateway, "reference": p.gateway_ref},
            )
            return p

    def pending_refs(self, gateway: str) -> list[str]:
        """Gateway references of payments still waiting for an outcome."""
        with read_session(self.ctx.engine) as s:
            rows = s.execute(
                select(col(Payment.gateway_ref))
                .join(Order, col(Order.id) == col(Payment.order_id))
                .where(
                    col(Payment.gateway) == gateway,
                    col(Payment.gateway_ref).is_not(None),
                    col(Payment.status).in_(PENDING_STATES),
                    col(Order.status).not_in([OrderStatus.CANCELLED, OrderStatus.REFUNDED]),
                )
                .order_by(col(Payment.id))
            ).scalars()
            return [str(r) for r in rows]

    # -- applying what the gateway knows ------------------------------------------

    def apply(self, info: PaymentInfo) -> ApplyResult:
        """The payment sync (``gateway:*`` actor): bring our payment and order in
        line with ``info``. One transaction per order; idempotent."""
        with read_session(self.ctx.engine) as s:
            order, payment = self._locate(s, info)
            if order is None:
                return ApplyResult(Outcome.UNKNOWN, info.ref, message="no matching order")
            number = order.number
            if _decide(order, payment, info) is None:
                return ApplyResult(Outcome.UNCHANGED, info.ref, number)
        ctx = self.ctx.as_actor(gateway_actor(info.gateway))
        svc = OrderService(ctx)
        try:
            with svc._locked(number, None, f"payment.sync.{info.status}") as (s, order, _):
                _, payment = self._locate(s, info)
                action = _decide(order, payment, info)
                if action is None:
                    raise _Unchanged
                if payment is None:  # the gateway names our order; we had no row yet
                    payment = Payment(
                        order_id=_id(order),
                        gateway=info.gateway,
                        method=info.method,
                        gateway_ref=info.ref,
                        status=PaymentStatus.UNPAID.value,
                        currency=info.currency,
                        amount=info.amount,
                        created_at=ctx.now(),
                    )
                    s.add(payment)
                payment.last_synced_at = ctx.now()
                payment.wallet = info.wallet or payment.wallet
                if action == Outcome.PAID:
                    problem = _payment_problem(order, info)
                    if problem:
                        raise RuleViolation(f"{order.number}: {problem}")
                    svc._take_payment(
                        s,
                        order,
                        gateway=info.gateway,
                        method=info.method,
                        reference=info.ref,
                        card_brand=info.card_brand,
                        card_last4=info.card_last4,
                        payment=payment,
                    )
                    payment.captured = info.captured or payment.captured
                elif action == Outcome.AUTHORIZED:
                    payment.status = PaymentStatus.AUTHORIZED.value
                    if order.payment_status == PaymentStatus.UNPAID:
                        order.payment_status = PaymentStatus.AUTHORIZED.value
                    record_event(
                        s,
                        ctx,
                        order,
                        "payment_authorized",
                        f"Payment of {format_money(info.amount, info.currency)} authorised "
                        f"({info.gateway})",
                        {"reference": info.ref},
                    )
                else:  # FAILED
                    payment.status = PaymentStatus.FAILED.value
                    reason = info.failure_reason or info.gateway_status
                    record_event(
                        s,
                        ctx,
                        order,
                        "payment_failed",
                        f"Payment failed ({info.gateway}): {reason}",
                        {"reference": info.ref, "reason": reason},
                    )
                    if order.status == OrderStatus.PENDING and not order.on_hold:
                        if order.payment_status == PaymentStatus.AUTHORIZED:
                            order.payment_status = PaymentStatus.UNPAID.value
                        svc._put_on_hold(s, order, PAYMENT_FAILED_HOLD)
                return ApplyResult(action, info.ref, order.number)
        except _Unchanged:
            return ApplyResult(Outcome.UNCHANGED, info.ref, number)
        except RuleViolation as exc:
            return ApplyResult(Outcome.REFUSED, info.ref, number, exc.message)

    @staticmethod
    def _locate(s, info: PaymentInfo) -> tuple[Order | None, Payment | None]:  # type: ignore[no-untyped-def]
        payment = _payment_by_ref(s, info.gateway, info.ref)
        if payment is not None:
            return s.get(Order, payment.order_id), payment
        if info.order_ref:
            return queries.find_order(s, info.order_ref), None
        return None, None


def _payment_by_ref(s, gateway: str, ref: str) -> Payment | None:  # type: ignore[no-untyped-def]
    return s.execute(
        select(Payment).where(col(Payment.gateway) == gateway, col(Payment.gateway_ref) == ref)
    ).scalar_one_or_none()


def _decide(order: Order, payment: Payment | None, info: PaymentInfo) -> Outcome | None:
    """What applying ``info`` would do, or None when it is already reflected."""
    current = payment.status if payment is not None else PaymentStatus.UNPAID.value
    if info.status == PaymentStatus.PAID or info.status in PAID_STATES:
        if current in (
            PaymentStatus.PAID,
            PaymentStatus.PARTIALLY_REFUNDED,
            PaymentStatus.REFUNDED,
        ):
            return None
        if payment is None and order.payment_status in PAID_STATES:
            return None  # paid some other way; not ours to record twice
        return Outcome.PAID
    if info.status == PaymentStatus.AUTHORIZED:
        return None if current != PaymentStatus.UNPAID else Outcome.AUTHORIZED
    if info.status == PaymentStatus.FAILED:
        return Outcome.FAILED if current in PENDING_STATES else None
    return None  # still pending: nothing to record


def _payment_problem(order: Order, info: PaymentInfo) -> str | None:
    if info.currency and info.currency != order.currency:
        return f"gateway payment is in {info.currency}, the order in {order.currency}"
    due = order.total - order.paid
    if info.amount != due:
        return (
            f"gateway payment of {format_money(info.amount, order.currency)} does not match "
            f"the {format_money(due, order.currency)} due"
        )
    return None


# -- the sync's own rows ----------------------------------------------------------


def acquire_lease(
    ctx: Context, holder: str, ttl: timedelta, name: str = LEASE_NAME
) -> tuple[bool, str | None]:
    """Take (or renew) the sync lease. Returns (acquired, current holder)."""
    now = ctx.now()
    try:
        with write_session(ctx.engine) as s:
            row = s.execute(
                select(SyncLease).where(col(SyncLease.name) == name).with_for_update()
            ).scalar_one_or_none()
            if row is None:
                s.add(SyncLease(name=name, holder=holder, acquired_at=now, expires_at=now + ttl))
                return True, holder
            expires = aware(row.expires_at)
            if row.holder and row.holder != holder and expires is not None and expires > now:
                return False, row.holder
            if row.holder != holder:
                row.acquired_at = now
            row.holder, row.expires_at = holder, now + ttl
            return True, holder
    except IntegrityError:  # another process inserted the row first
        return False, None


def release_lease(ctx: Context, holder: str, name: str = LEASE_NAME) -> None:
    with write_session(ctx.engine) as s:
        row = s.get(SyncLease, name)
        if row is not None and row.holder == holder:
            row.holder, row.expires_at = None, None


def lease_holder(ctx: Context, name: str = LEASE_NAME) -> tuple[str | None, datetime | None]:
    with read_session(ctx.engine) as s:
        row = s.get(SyncLease, name)
        if row is None or not row.holder:
            return None, None
        expires = aware(row.expires_at)
        if expires is not None and expires <= ctx.now():
            return None, None
        return row.holder, expires


def get_cursor(ctx: Context, gateway: str) -> str | None:
    with read_session(ctx.engine) as s:
        row = s.get(GatewaySyncState, gateway)
        return row.cursor if row else None


def save_cursor(ctx: Context, gateway: str, cursor: str | None) -> None:
    with write_session(ctx.engine) as s:
        row = s.get(GatewaySyncState, gateway) or GatewaySyncState(gateway=gateway)
        row.cursor = cursor
        s.add(row)


def record_run(ctx: Context, gateway: str, errors: list[str]) -> None:
    """How one gateway's sync went (for `pulse sync status` and the header)."""
    now = ctx.now()
    with write_session(ctx.engine) as s:
        row = s.get(GatewaySyncState, gateway) or GatewaySyncState(gateway=gateway)
        row.last_run_at = now
        row.error_count = len(errors)
        if errors:
            row.last_error, row.last_error_at = errors[-1][:500], now
        else:
            row.last_success_at = now
            row.last_error = None
        s.add(row)


def sync_states(ctx: Context) -> list[GatewaySyncState]:
    with read_session(ctx.engine) as s:
        return list(
            s.execute(select(GatewaySyncState).order_by(col(GatewaySyncState.gateway))).scalars()
        )


__all__ = [
    "ApplyResult",
    "LEASE_NAME",
    "Outcome",
    "PAYMENT_FAILED_HOLD",
    "PaymentService",
    "acquire_lease",
    "gateway_actor",
    "get_cursor",
    "lease_holder",
    "record_run",
    "release_lease",
    "save_cursor",
    "sync_states",
]
