"""Refunds: money given back exactly once (work in progress)."""

from __future__ import annotations

import uuid

from sqlalchemy.orm import Session

from pulse_tui.domain.money import format_money
from pulse_tui.storage.models import Order, Refund

from .audit import record_event
from .context import Context


def refund_on_cancel(s: Session, ctx: Context, order: Order) -> Refund | None:
    """Inside the cancel transaction: request the refund of what was paid."""
    due = order.paid - order.refunded
    if due <= 0:
        return None
    assert order.id is not None
    refund = Refund(
        order_id=order.id,
        amount=due,
        currency=order.currency,
        reason="cancelled",
        status="requested",
        idempotency_key=str(uuid.uuid4()),
        created_by=ctx.actor.label,
        created_at=ctx.now(),
        updated_at=ctx.now(),
    )
    s.add(refund)
    record_event(
        s,
        ctx,
        order,
        "refund_requested",
        f"Refund of {format_money(due, order.currency)} requested on cancel",
    )
    return refund
