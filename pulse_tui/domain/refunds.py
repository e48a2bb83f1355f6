"""Refund and return rules: what may be given back, and how much.

Pure functions over plain numbers (minor units). services.refunds feeds them
what the database holds and writes what they decide.

Amounts per line are allocated *cumulatively*: refunding k of a line's n units
gives ``alloc(done + k) - alloc(done)`` where ``alloc(j) = round(value * j / n)``
(ROUND_HALF_UP). Refunding every unit one at a time therefore sums to exactly
the line's value, never a cent more or less. A line's value is its total minus
its share of the order-level discount (shared out over lines by largest
remainder), so refunding every line and the shipping gives back exactly what
the order cost.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from .money import format_money, round_half_up
from .status import OrderStatus, PaymentStatus


class RefundReason(StrEnum):
    CUSTOMER_REQUEST = "customer_request"
    DAMAGED = "damaged"
    NOT_RECEIVED = "not_received"
    WRONG_ITEM = "wrong_item"
    FRAUD = "fraud"
    DUPLICATE = "duplicate"
    ORDER_CANCELLED = "order_cancelled"
    RETURN = "return"
    OTHER = "other"


# What an operator picks from; the last two are set by the cancel and return flows.
OPERATOR_REASONS = tuple(
    r for r in RefundReason if r not in (RefundReason.ORDER_CANCELLED, RefundReason.RETURN)
)


class RefundStatus(StrEnum):
    REQUESTED = "requested"  # waiting for an admin's approval
    APPROVED = "approved"  # may be sent to the gateway
    PENDING = "pending"  # sent (or being sent); the gateway has not settled it
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


# Refunds that hold on to money: what they ask for is no longer refundable.
ACTIVE = frozenset(
    {RefundStatus.REQUESTED, RefundStatus.APPROVED, RefundStatus.PENDING, RefundStatus.SUCCEEDED}
)
# Refunds an operator still has to look at (the refunds screen lists them first).
NEEDS_ATTENTION = (RefundStatus.FAILED, RefundStatus.REQUESTED)


class RefundError(ValueError):
    """A refund the rules refuse (the message says why)."""


def parse_reason(text: str) -> RefundReason:
    try:
        return RefundReason(text.strip().lower().replace(" ", "_").replace("-", "_"))
    except ValueError:
        allowed = ", ".join(r.value for r in OPERATOR_REASONS)
        raise RefundError(f"unknown refund reason {text!r} (one of: {allowed})") from None


@dataclass(frozen=True, slots=True)
class LineState:
    """One order line as the refund rules see it."""

    line_id: int
    sku: str
    quantity: int
    value: int  # line total minus its share of the order discount
    tax: int  # the line's tax (for the preview's tax share)
    committed: int  # units already in an active refund


@dataclass(frozen=True, slots=True)
class LinePick:
    line_id: int
    quantity: int
    restock: bool = False


@dataclass(frozen=True, slots=True)
class QuoteLine:
    line_id: int
    sku: str
    quantity: int
    amount: int
    tax: int
    restock: bool


@dataclass(frozen=True, slots=True)
class Quote:
    """What a refund would give back, before anything is written."""

    amount: int
    tax: int  # tax share included in ``amount``
    shipping: int  # shipping included in ``amount``
    lines: tuple[QuoteLine, ...]
    refundable: int  # what was still refundable before this refund


def _alloc(value: int, units: int, of: int) -> int:
    return round_half_up(Decimal(value) * units / of)


def line_values(totals: Sequence[int], discount: int) -> list[int]:
    """Each line's total minus its share of ``discount`` (largest remainder, so
    the shares add up to the discount exactly)."""
    whole = sum(totals)
    if discount <= 0 or whole <= 0:
        return list(totals)
    discount = min(discount, whole)
    raw = [Decimal(t) * discount / whole for t in totals]
    shares = [int(r) for r in raw]
    left = discount - sum(shares)
    by_remainder = sorted(range(len(totals)), key=lambda i: (raw[i] - shares[i], -i), reverse=True)
    for i in by_remainder[:left]:
        shares[i] += 1
    return [t - s for t, s in zip(totals, shares, strict=True)]


def quote(
    lines: Sequence[LineState],
    picks: Sequence[LinePick],
    *,
    shipping: int,
    shipping_committed: int,
    include_shipping: bool,
    amount: int | None,
    refundable: int,
    currency: str,
) -> Quote:
    """The refund of ``picks`` (+ the shipping not yet refunded, if asked), or of
    a free ``amount``; refuses anything above ``refundable`` (captured minus
    every active refund)."""
    if refundable <= 0:
        raise RefundError("nothing is left to refund")
    if amount is not None:
        if picks or include_shipping:
            raise RefundError("give either an amount or lines (and shipping), not both")
        if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
            raise RefundError("the refund amount must be a positive amount")
        if amount > refundable:
            raise RefundError(
                f"at most {format_money(refundable, currency)} can be refunded, "
                f"asked {format_money(amount, currency)}"
            )
        return Quote(amount, 0, 0, (), refundable)
    if not picks and not include_shipping:
        raise RefundError("choose lines, shipping or an amount to refund")
    by_id = {ln.line_id: ln for ln in lines}
    seen: set[int] = set()
    out: list[QuoteLine] = []
    for p in picks:
        ln = by_id.get(p.line_id)
        if ln is None:
            raise RefundError(f"line {p.line_id} is not on this order")
        if p.line_id in seen:
            raise RefundError(f"{ln.sku} is listed twice")
        seen.add(p.line_id)
        if isinstance(p.quantity, bool) or not isinstance(p.quantity, int) or p.quantity < 1:
            raise RefundError(f"{ln.sku}: quantity must be a whole number of at least 1")
        left = ln.quantity - ln.committed
        if p.quantity > left:
            raise RefundError(
                f"{ln.sku}: only {left} of {ln.quantity} left to refund, asked {p.quantity}"
            )
        done = ln.committed
        amt = _alloc(ln.value, done + p.quantity, ln.quantity) - _alloc(ln.value, done, ln.quantity)
        tax = _alloc(ln.tax, done + p.quantity, ln.quantity) - _alloc(ln.tax, done, ln.quantity)
        out.append(QuoteLine(ln.line_id, ln.sku, p.quantity, amt, tax, p.restock))
    ship = 0
    if include_shipping:
        ship = shipping - shipping_committed
        if ship <= 0 and not picks:
            raise RefundError("the shipping was already refunded")
    total = sum(q.amount for q in out) + max(0, ship)
    if total <= 0:
        raise RefundError("that refund comes to nothing")
    if total > refundable:
        raise RefundError(
            f"at most {format_money(refundable, currency)} can be refunded, "
            f"this comes to {format_money(total, currency)}"
        )
    return Quote(total, sum(q.tax for q in out), max(0, ship), tuple(out), refundable)


def needs_approval(amount: int, limit: int, *, may_approve: bool) -> bool:
    """A refund above ``limit`` waits for an admin, unless its creator is one."""
    return amount > limit and not may_approve


def payment_status_after(paid: int, refunded: int) -> PaymentStatus:
    """The order's (or a payment's) money status from its numbers."""
    if paid <= 0:
        return PaymentStatus.UNPAID
    if refunded <= 0:
        return PaymentStatus.PAID
    if refunded >= paid:
        return PaymentStatus.REFUNDED
    return PaymentStatus.PARTIALLY_REFUNDED


def fully_refunded_status(status: OrderStatus, paid: int, refunded: int) -> OrderStatus | None:
    """Where a full refund takes the order's lifecycle (None: it stays)."""
    if (
        paid > 0
        and refunded >= paid
        and status
        in (
            OrderStatus.PROCESSING,
            OrderStatus.SHIPPED,
            OrderStatus.DELIVERED,
        )
    ):
        return OrderStatus.REFUNDED
    return None


# -- returns (RMA) --------------------------------------------------------------


class ReturnStatus(StrEnum):
    REQUESTED = "requested"
    AUTHORIZED = "authorized"
    REJECTED = "rejected"
    RECEIVED = "received"
    REFUNDED = "refunded"
    EXCHANGED = "exchanged"


class Condition(StrEnum):
    RESELLABLE = "resellable"
    DAMAGED = "damaged"


RETURN_STEPS: dict[str, tuple[ReturnStatus, ReturnStatus]] = {
    # step: (from, to)
    "authorize": (ReturnStatus.REQUESTED, ReturnStatus.AUTHORIZED),
    "reject": (ReturnStatus.REQUESTED, ReturnStatus.REJECTED),
    "receive": (ReturnStatus.AUTHORIZED, ReturnStatus.RECEIVED),
    "refund": (ReturnStatus.RECEIVED, ReturnStatus.REFUNDED),
    "exchange": (ReturnStatus.RECEIVED, ReturnStatus.EXCHANGED),
}


def reopened_return_status(status: str) -> ReturnStatus | None:
    """The status a return goes back to when the refund made for it is
    cancelled: a refunded return is received again (its units may be refunded
    or exchanged anew); None when it is in no state to go back (an exchanged
    return's refund is the exchange difference, which does not undo it)."""
    return ReturnStatus.RECEIVED if status == ReturnStatus.REFUNDED else None


def return_step_problem(status: str, step: str) -> str | None:
    src, _dst = RETURN_STEPS[step]
    if status != src:
        return f"the return is {status}; {step} needs it {src}"
    return None


def returnable_quantity(shipped: int, committed: int) -> int:
    """Units of a line that can still be asked back: shipped, not yet in a return."""
    return max(0, shipped - committed)


def exchange_difference(credit: int, replacement_total: int) -> int:
    """Positive: the customer owes this much more; negative: we refund it."""
    return replacement_total - credit


__all__ = [
    "ACTIVE",
    "Condition",
    "LinePick",
    "LineState",
    "NEEDS_ATTENTION",
    "OPERATOR_REASONS",
    "Quote",
    "QuoteLine",
    "RETURN_STEPS",
    "RefundError",
    "RefundReason",
    "RefundStatus",
    "ReturnStatus",
    "exchange_difference",
    "fully_refunded_status",
    "line_values",
    "needs_approval",
    "parse_reason",
    "payment_status_after",
    "quote",
    "reopened_return_status",
    "return_step_problem",
    "returnable_quantity",
]
