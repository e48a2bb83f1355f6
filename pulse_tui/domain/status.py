"""The order status machine: the single source of which change is allowed.

Three axes: the order's lifecycle (``OrderStatus``), money
(``PaymentStatus``) and goods (``FulfillmentStatus``), plus a hold flag that
blocks fulfilment until released. ``TRANSITIONS`` is the one table of
lifecycle moves; services consult ``check_transition`` and the UI offers
``offered_transitions`` — so the three doors cannot disagree.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from .permissions import Permission, Role, role_can


class OrderStatus(StrEnum):
    PENDING = "pending"
    PROCESSING = "processing"
    SHIPPED = "shipped"
    DELIVERED = "delivered"
    CANCELLED = "cancelled"
    REFUNDED = "refunded"


class PaymentStatus(StrEnum):
    UNPAID = "unpaid"
    AUTHORIZED = "authorized"
    PAID = "paid"
    PARTIALLY_REFUNDED = "partially_refunded"
    REFUNDED = "refunded"
    FAILED = "failed"


class FulfillmentStatus(StrEnum):
    UNFULFILLED = "unfulfilled"
    PARTIALLY_FULFILLED = "partially_fulfilled"
    FULFILLED = "fulfilled"
    PARTIALLY_RETURNED = "partially_returned"
    RETURNED = "returned"


class CancelReason(StrEnum):
    CUSTOMER_REQUEST = "customer_request"
    OUT_OF_STOCK = "out_of_stock"
    PAYMENT_FAILED = "payment_failed"
    FRAUD = "fraud"
    DUPLICATE = "duplicate"
    ADDRESS_INVALID = "address_invalid"
    OTHER = "other"


class TransitionError(ValueError):
    """A lifecycle change the status machine does not allow (message says why)."""


PAID_STATES = frozenset({PaymentStatus.PAID, PaymentStatus.PARTIALLY_REFUNDED})
MONEY_TAKEN = frozenset({PaymentStatus.AUTHORIZED, *PAID_STATES})
TERMINAL = frozenset({OrderStatus.CANCELLED, OrderStatus.REFUNDED})


@dataclass(frozen=True, slots=True)
class OrderState:
    """What the status machine needs to know about an order."""

    status: OrderStatus
    payment_status: PaymentStatus = PaymentStatus.UNPAID
    fulfillment_status: FulfillmentStatus = FulfillmentStatus.UNFULFILLED
    on_hold: bool = False
    has_physical: bool = True


@dataclass(frozen=True, slots=True)
class Transition:
    source: OrderStatus
    target: OrderStatus
    action: str  # the use case that performs it (services name)
    label: str  # what the UI shows
    permission: Permission
    manual: bool = True  # False: only the system (payments, refunds) does it
    blocked_by_hold: bool = False
    needs_payment: bool = False
    digital_only: bool = False  # processing→delivered skips shipping
    physical_only: bool = False


_S = OrderStatus
TRANSITIONS: dict[tuple[OrderStatus, OrderStatus], Transition] = {
    (t.source, t.target): t
    for t in (
        Transition(
            _S.PENDING,
            _S.PROCESSING,
            "start_processing",
            "Start processing",
            Permission.HOLD,
            needs_payment=True,
        ),
        Transition(_S.PENDING, _S.CANCELLED, "cancel", "Cancel", Permission.CANCEL),
        Transition(
            _S.PROCESSING,
            _S.SHIPPED,
            "ship",
            "Ship",
            Permission.FULFIL,
            blocked_by_hold=True,
            physical_only=True,
        ),
        Transition(
            _S.PROCESSING,
            _S.DELIVERED,
            "deliver",
            "Deliver (digital)",
            Permission.FULFIL,
            blocked_by_hold=True,
            digital_only=True,
        ),
        Transition(_S.PROCESSING, _S.CANCELLED, "cancel", "Cancel", Permission.CANCEL),
        Transition(
            _S.SHIPPED,
            _S.DELIVERED,
            "deliver",
            "Mark delivered",
            Permission.FULFIL,
            blocked_by_hold=True,
        ),
        Transition(
            _S.PROCESSING, _S.REFUNDED, "refund", "Fully refunded", Permission.REFUND, manual=False
        ),
        Transition(
            _S.SHIPPED, _S.REFUNDED, "refund", "Fully refunded", Permission.REFUND, manual=False
        ),
        Transition(
            _S.DELIVERED, _S.REFUNDED, "refund", "Fully refunded", Permission.REFUND, manual=False
        ),
    )
}


def transition_problem(state: OrderState, target: OrderStatus) -> str | None:
    """Why ``state`` cannot move to ``target``, or None when it can (role aside)."""
    if state.status == target:
        return f"order is already {target}"
    t = TRANSITIONS.get((state.status, target))
    if t is None:
        if state.status in TERMINAL:
            return f"a {state.status} order cannot change status"
        return f"cannot go from {state.status} to {target}"
    if t.blocked_by_hold and state.on_hold:
        return "order is on hold: release it first"
    if t.needs_payment and state.payment_status not in MONEY_TAKEN:
        return f"payment is {state.payment_status}: confirm the payment first"
    if t.digital_only and state.has_physical:
        return "order has physical goods: ship it first"
    if t.physical_only and not state.has_physical:
        return "order has only digital goods: mark it delivered instead"
    return None


def check_transition(
    state: OrderState, target: OrderStatus, role: Role | None = None, *, system: bool = False
) -> Transition:
    """Return the Transition or raise TransitionError with a readable message.

    ``system=True`` is for changes driven by money (payment sync, refunds)
    rather than an operator choosing a status.
    """
    problem = transition_problem(state, target)
    if problem:
        raise TransitionError(problem)
    t = TRANSITIONS[(state.status, target)]
    if not t.manual and not system:
        raise TransitionError(f"{target} is set by the refund process, not by hand")
    if role is not None and not role_can(role, t.permission):
        raise TransitionError(f"a {role} may not {t.label.lower()}")
    return t


def offered_transitions(state: OrderState, role: Role) -> list[Transition]:
    """The manual moves an operator of ``role`` may make now, in table order."""
    return [
        t
        for (src, _dst), t in TRANSITIONS.items()
        if src == state.status
        and t.manual
        and role_can(role, t.permission)
        and transition_problem(state, t.target) is None
    ]


def awaiting_payment(state: OrderState) -> bool:
    """A pending order with nothing paid yet: a payment (e.g. a bank transfer)
    can still arrive, and the customer must be told what to quote."""
    return state.status == OrderStatus.PENDING and state.payment_status in (
        PaymentStatus.UNPAID,
        PaymentStatus.FAILED,
    )


def hold_problem(state: OrderState, *, hold: bool) -> str | None:
    if state.status in TERMINAL:
        return f"a {state.status} order cannot be put on or taken off hold"
    if hold and state.on_hold:
        return "order is already on hold"
    if not hold and not state.on_hold:
        return "order is not on hold"
    if hold and state.status == OrderStatus.DELIVERED:
        return "a delivered order cannot be put on hold"
    return None


def fulfillment_after_shipping(total_units: int, shipped_units: int) -> FulfillmentStatus:
    if shipped_units <= 0:
        return FulfillmentStatus.UNFULFILLED
    if shipped_units < total_units:
        return FulfillmentStatus.PARTIALLY_FULFILLED
    return FulfillmentStatus.FULFILLED
