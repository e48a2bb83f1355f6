"""The two records every change writes: the order timeline and the audit log."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from sqlalchemy import JSON, Connection, CursorResult, Dialect, Table
from sqlalchemy.orm import Session
from sqlalchemy.sql.dml import UpdateBase
from sqlalchemy.types import TypeEngine

from pulse_tui.domain.notifications import EVENT_TEMPLATES
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
    if kind in EVENT_TEMPLATES:
        # The customer's email goes into the outbox in this same transaction
        # (services.notifications); other events pay only the lookup above.
        from .notifications import enqueue_for_event

        enqueue_for_event(session, ctx, order, ev)
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


# -- batches: many orders in one transaction (bulk actions) -------------------
#
# The same two records as above, written with one executemany each instead of
# one ORM object per row: a bulk chunk of 500 orders costs two statements.
# They go through the session's connection, so pending ORM objects are not
# flushed in between (callers flush when they need them).


def table_of(model: type) -> Table:
    """The Core table of a SQLModel class (SQLModel does not type ``__table__``)."""
    return cast(Table, model.__table__)  # type: ignore[attr-defined]


@dataclass
class EventRow:
    order_id: int
    at: datetime
    kind: str
    actor: str
    message: str
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class AuditRow:
    """One audit entry of a batch. ``before``/``after`` hold plain JSON values
    (str, int, float, bool, None, lists, dicts): batch callers build them from
    database columns, so they are written as they are (``record_audit``
    converts anything else with ``str``)."""

    at: datetime
    actor: str
    action: str
    entity: str
    entity_id: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None


def executemany(
    conn: Connection, stmt: UpdateBase, rows: Sequence[dict[str, Any]]
) -> CursorResult[Any]:
    """``conn.execute(stmt, rows)`` for thousands of rows of the same keys.

    SQLAlchemy rebuilds and type-processes every row's parameters generically
    (~10 µs a row); this compiles once, looks up each parameter's bind
    processor (the same conversions: JSON, DateTime, ...) once, and hands the
    driver plain tuples or dicts for its paramstyle. Same SQL, same values.
    A column's repeated values (a batch shares its time) are converted once.
    """
    compiled = stmt.compile(dialect=conn.dialect, column_keys=list(rows[0]))
    names: list[str] = list(compiled.positiontup or []) or list(compiled.binds)
    # Column by column: one comprehension per column instead of a call per cell.
    columns: list[list[Any]] = []
    for name in names:
        bp = compiled.binds[name]
        # (a parameter the rows do not name is a literal bound in the statement)
        values = [r[name] for r in rows] if name in rows[0] else [bp.value] * len(rows)
        columns.append(_processed(bp.type, conn.dialect, values))
    params: list[Any] = list(zip(*columns, strict=True))
    if compiled.positiontup is None:
        params = [dict(zip(names, t, strict=True)) for t in params]
    return conn.exec_driver_sql(compiled.string, params)


# json.dumps' own encoder without the circular-reference check (rows are trees):
# the same text, without dumps' and SQLAlchemy's per-call wrappers.
_JSON_TEXT = json.JSONEncoder(check_circular=False).encode


def _processed(type_: TypeEngine[Any], dialect: Dialect, values: list[Any]) -> list[Any]:
    """``values`` as the driver takes them (the dialect's own bind processor)."""
    if isinstance(type_, JSON) and dialect._json_serializer is None:  # type: ignore[attr-defined]
        # Python None stays SQL NULL (as before), everything else is JSON text.
        return [None if v is None else _JSON_TEXT(v) for v in values]
    # the dialect's own type (SQLite stores DateTime as its canonical text)
    proc = type_.dialect_impl(dialect).bind_processor(dialect)
    if proc is None:
        return values
    try:
        distinct = set(values)
    except TypeError:  # unhashable values: convert each
        return [None if v is None else proc(v) for v in values]
    if len(distinct) == len(values):
        return [None if v is None else proc(v) for v in values]
    done = {v: proc(v) for v in distinct if v is not None}
    return [done.get(v) for v in values]


def record_events(session: Session, rows: Sequence[EventRow], ctx: Context | None = None) -> None:
    """A batch of timeline events (bulk chunks), with their outbox rows: ``ctx``'s
    settings say which events notify (without one, every notifying event does)."""
    if not rows:
        return
    table = table_of(OrderEvent)
    executemany(
        session.connection(),
        table.insert(),
        [
            {
                "order_id": r.order_id,
                "at": r.at,
                "kind": r.kind,
                "actor": r.actor,
                "message": r.message,
                "data": r.data,
            }
            for r in rows
        ],
    )
    notifying = [r for r in rows if r.kind in EVENT_TEMPLATES]
    if notifying:
        # Outbox rows for the chunk, in this transaction: one customer query
        # and one executemany (services.notifications).
        from .notifications import enqueue_for_rows

        enqueue_for_rows(session, notifying, ctx)


def record_audits(session: Session, rows: Sequence[AuditRow]) -> None:
    if not rows:
        return
    table = table_of(AuditEntry)
    executemany(
        session.connection(),
        table.insert(),
        [
            {
                "at": r.at,
                "actor": r.actor,
                "action": r.action,
                "entity": r.entity,
                "entity_id": r.entity_id,
                "before": r.before,
                "after": r.after,
            }
            for r in rows
        ],
    )
