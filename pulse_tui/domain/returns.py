"""Return (RMA) rules: what may be asked back, what came back, where the goods stand.

Pure functions over plain values; services.returns feeds them what the
database holds. The steps themselves (which status each step needs) are in
``domain.refunds`` (``RETURN_STEPS``, ``return_step_problem``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from .refunds import (
    OPERATOR_REASONS,
    Condition,
    RefundError,
    RefundReason,
    ReturnStatus,
    parse_reason,
)
from .status import FulfillmentStatus, OrderStatus

# Returns that still hold the units they asked for (goods not in yet).
OPEN = frozenset({ReturnStatus.REQUESTED, ReturnStatus.AUTHORIZED})
MIXED = "mixed"  # a line that came back partly resellable, partly damaged


class ReturnError(ValueError):
    """Input the return rules cannot use (the message says why)."""


class ReturnLimitError(ReturnError):
    """More units than the rules allow (a rule, not a typo)."""


def parse_return_reason(text: str) -> RefundReason:
    """An operator's reason for a return: one of OPERATOR_REASONS."""
    try:
        reason = parse_reason(text)
    except RefundError as exc:
        raise ReturnError(str(exc)) from None
    if reason not in OPERATOR_REASONS:
        allowed = ", ".join(r.value for r in OPERATOR_REASONS)
        raise ReturnError(f"{reason.value!r} is not a return reason (one of: {allowed})")
    return reason


def parse_condition(text: str) -> Condition:
    try:
        return Condition(str(text).strip().lower())
    except ValueError:
        allowed = ", ".join(c.value for c in Condition)
        raise ReturnError(f"unknown condition {text!r} (one of: {allowed})") from None


def order_return_problem(status: str) -> str | None:
    """Why no return can be asked for an order in ``status`` (None: it can)."""
    if status == OrderStatus.PENDING:
        return "nothing was paid and shipped yet, so nothing can be returned"
    if status == OrderStatus.CANCELLED:
        return "the order is cancelled: nothing was shipped to return"
    if status == OrderStatus.REFUNDED:
        return "the order is already fully refunded"
    return None


def units_held(status: str, quantity: int, received: int) -> int:
    """Units of a line a return accounts for: what it asks while open, what
    actually came back once received, nothing when rejected."""
    if status == ReturnStatus.REJECTED:
        return 0
    if status in OPEN:
        return quantity
    return received


def _whole(sku: str, quantity: object) -> int:
    if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 1:
        raise ReturnError(f"{sku}: quantity must be a whole number of at least 1, got {quantity!r}")
    return quantity


def plan_request(returnable: Mapping[str, int], picks: Sequence[tuple[str, int]]) -> dict[str, int]:
    """The units asked back per sku (the same sku twice adds up); refuses skus
    not on the order and more than ``returnable`` (shipped, not in a return)."""
    if not picks:
        raise ReturnError("choose at least one line and quantity to return")
    wanted: dict[str, int] = {}
    for raw_sku, qty in picks:
        sku = str(raw_sku).strip().upper()
        if sku not in returnable:
            raise ReturnError(f"{sku or repr(raw_sku)} is not on this order")
        wanted[sku] = wanted.get(sku, 0) + _whole(sku, qty)
    for sku, qty in wanted.items():
        left = returnable[sku]
        if qty > left:
            raise ReturnLimitError(
                f"{sku}: only {left} unit(s) can be returned "
                f"(shipped and not already in a return), asked {qty}"
            )
    return wanted


def plan_receipt(
    authorised: Mapping[str, int], items: Sequence[tuple[str, int, str]]
) -> dict[str, dict[Condition, int]]:
    """Units received per sku and condition; at most what was authorised, at
    least one unit in all."""
    if not items:
        raise ReturnError("name at least one received unit (sku, quantity, condition)")
    got: dict[str, dict[Condition, int]] = {}
    for raw_sku, qty, condition in items:
        sku = str(raw_sku).strip().upper()
        if sku not in authorised:
            raise ReturnError(f"{sku or repr(raw_sku)} is not in this return")
        n = _whole(sku, qty)
        cond = parse_condition(condition)
        per = got.setdefault(sku, {})
        per[cond] = per.get(cond, 0) + n
    for sku, per in got.items():
        total = sum(per.values())
        if total > authorised[sku]:
            raise ReturnLimitError(
                f"{sku}: {authorised[sku]} unit(s) were authorised, {total} received"
            )
    return got


def condition_label(per: Mapping[Condition, int]) -> str | None:
    """One word for a line's condition: resellable, damaged, mixed (None: nothing came)."""
    present = [c for c in Condition if per.get(c, 0) > 0]
    if not present:
        return None
    return present[0].value if len(present) == 1 else MIXED


def fulfillment_after_return(lines: Sequence[tuple[int, int]]) -> FulfillmentStatus | None:
    """Goods status from each line's (fulfilled, returned) units; None while
    nothing came back."""
    fulfilled = sum(f for f, _r in lines)
    returned = sum(r for _f, r in lines)
    if returned <= 0:
        return None
    if returned >= fulfilled:
        return FulfillmentStatus.RETURNED
    return FulfillmentStatus.PARTIALLY_RETURNED


def exchange_discount(credit: int, replacement_subtotal: int) -> int:
    """The credit a replacement order gets off: all of it, up to its price."""
    return max(0, min(credit, replacement_subtotal))


__all__ = [
    "MIXED",
    "OPEN",
    "ReturnError",
    "ReturnLimitError",
    "condition_label",
    "exchange_discount",
    "fulfillment_after_return",
    "order_return_problem",
    "parse_condition",
    "parse_return_reason",
    "plan_receipt",
    "plan_request",
    "units_held",
]
