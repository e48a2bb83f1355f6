"""The two records every change writes: the order timeline and the audit log."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from pulse_tui.storage.models import AuditEntry, Order, OrderEvent

from .context import Context

ORDER_AUDIT_FIELDS = (
    "status",
    "payment_status",
    "fulfillment_status",
    "on_hold",
    "hold_reason",
    "cancel_reason",
    "paid",
    "refunded",
    "total",
    "version",
)


def order_snapshot(order: Order) -> dict[str, Any]:
    return {f: getattr(order, f) for f in ORDER_AUDIT_FIELDS}


def record_event(
    session: Session,
    ctx: Context,
    order: Order,
    kind: str,
    message: str,
    data: dict[str, Any] | None = None,
    *,
    actor: str | None = None,
) -> OrderEvent:
    assert order.id is not None
    ev = OrderEvent(
        order_id=order.id,
        at=ctx.now(),
        kind=kind,
        actor=actor or ctx.actor.label,
        message=message,
        data=data or {},
    )
    session.add(ev)
    return ev


def record_audit(
    session: Session,
    ctx: Context,
    action: str,
    entity: str,
    entity_id: str | int,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
    *,
    actor: str | None = None,
) -> AuditEntry:
    entry = AuditEntry(
        at=ctx.now(),
        actor=actor or ctx.actor.label,
        action=action,
        entity=entity,
        entity_id=str(entity_id),
        before=_jsonable(before),
        after=_jsonable(after),
    )
    session.add(entry)
    return entry


def _jsonable(d: dict[str, Any] | None) -> dict[str, Any] | None:
    if d is None:
        return None
    out: dict[str, Any] = {}
    for k, v in d.items():
        out[k] = v if isinstance(v, str | int | float | bool | type(None) | list | dict) else str(v)
    return out
