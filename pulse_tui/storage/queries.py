"""Read queries: order list (filters, sort, keyset pages), counts, detail.

Every list is keyset-paginated (never OFFSET): a page is "the next N rows
after this cursor" in (sort value, id) order, so page 5,000 costs what page 1
costs. Ids ascend with placed time, so "placed" sorting is id order.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Any

from babel.numbers import get_currency_precision, list_currencies
from sqlalchemy import ColumnElement, and_, false, func, or_, select, true
from sqlalchemy.orm import Session

from pulse_tui.domain.filters import OrderFilter, Sort
from pulse_tui.domain.status import OrderStatus

from .models import (
    Address,
    AuditEntry,
    Customer,
    Order,
    OrderCount,
    OrderEvent,
    OrderLine,
    OrderTag,
    Payment,
    Refund,
    Shipment,
)
from .search import fts_query, has_fts

PAGE_SIZE = 50


@dataclass(frozen=True)
class OrderRow:
    id: int
    number: str
    placed_at: datetime
    customer_id: int
    customer_name: str
    customer_email: str
    items_summary: str
    item_count: int
    total: int
    currency: str
    status: str
    payment_status: str
    fulfillment_status: str
    country: str
    on_hold: bool
    hold_reason: str | None
    version: int


@dataclass(frozen=True)
class Cursor:
    """Position after (or before) a row: its sort value and id."""

    value: Any
    id: int


@dataclass(frozen=True)
class Page:
    rows: list[OrderRow]
    next_cursor: Cursor | None  # None: no more rows in this direction
    prev_cursor: Cursor | None


# -- filters -------------------------------------------------------------


def _exponent_groups() -> dict[int, tuple[str, ...]]:
    groups: dict[int, list[str]] = defaultdict(list)
    for code in list_currencies():
        groups[int(get_currency_precision(code))].append(code)
    return {e: tuple(sorted(c)) for e, c in groups.items()}


_EXP_GROUPS = _exponent_groups()


def _total_clause(amount: Decimal, *, lower: bool, strict: bool) -> ColumnElement[bool]:
    """Compare the integer total with a major-unit amount in each order's currency.

    Exact in integers: ``total > 100.5 USD`` is ``total > 10050``; the
    fraction left by currencies with fewer decimals rounds the right way.
    """
    parts = []
    for exp, codes in _EXP_GROUPS.items():
        scaled = amount.scaleb(exp)
        if lower:
            bound = int(scaled.to_integral_value(ROUND_FLOOR))
            cond = Order.total > bound if strict or scaled != bound else Order.total >= bound
        else:
            bound = int(scaled.to_integral_value(ROUND_CEILING))
            cond = Order.total < bound if strict or scaled != bound else Order.total <= bound
        parts.append(and_(Order.currency.in_(codes), cond))
    return or_(*parts)


def filter_clauses(session: Session, f: OrderFilter) -> list[ColumnElement[bool]]:
    c: list[ColumnElement[bool]] = []
    if f.statuses:
        c.append(Order.status.in_([s.value for s in f.statuses]))
    if f.payment_statuses:
        c.append(Order.payment_status.in_([s.value for s in f.payment_statuses]))
    if f.fulfillment_statuses:
        c.append(Order.fulfillment_status.in_([s.value for s in f.fulfillment_statuses]))
    if f.placed_from is not None:
        c.append(Order.placed_at >= f.placed_from)
    if f.placed_to is not None:
        c.append(Order.placed_at < f.placed_to)
    if f.countries:
        c.append(Order.country.in_(list(f.countries)))
    if f.total_min is not None:
        c.append(_total_clause(f.total_min, lower=True, strict=f.total_min_strict))
    if f.total_max is not None:
        c.append(_total_clause(f.total_max, lower=False, strict=f.total_max_strict))
    if f.on_hold is not None:
        c.append(Order.on_hold == f.on_hold)
    if f.customer_id is not None:
        c.append(Order.customer_id == f.customer_id)
    if f.customer:
        like = f"%{f.customer.lower()}%"
        c.append(
            Order.customer_id.in_(
                select(Customer.id).where(
                    or_(func.lower(Customer.name).like(like), func.lower(Customer.email).like(like))
                )
            )
        )
    if f.sku:
        c.append(Order.id.in_(select(OrderLine.order_id).where(OrderLine.sku == f.sku)))
    if f.tag:
        c.append(Order.id.in_(select(OrderTag.order_id).where(OrderTag.tag == f.tag)))
    if f.text:
        c.append(_text_clause(session, f.text))
    return c


def _text_clause(session: Session, text_: str) -> ColumnElement[bool]:
    if has_fts(session):
        q = fts_query(text_)
        if q is None:
            return false()
        from sqlalchemy import text as sql_text

        return Order.id.in_(
            select(sql_text("rowid"))
            .select_from(sql_text("order_search"))
            .where(sql_text("order_search MATCH :fts").bindparams(fts=q))
        )
    like = f"%{text_.lower()}%"
    return or_(
        func.lower(Order.number).like(like),
        Order.customer_id.in_(
            select(Customer.id).where(
                or_(func.lower(Customer.name).like(like), func.lower(Customer.email).like(like))
            )
        ),
        Order.id.in_(select(OrderLine.order_id).where(func.lower(OrderLine.sku).like(like))),
        Order.id.in_(
            select(Shipment.order_id).where(func.lower(Shipment.tracking_number).like(like))
        ),
    )


# -- list ----------------------------------------------------------------


def _sort_column(sort: Sort):  # type: ignore[no-untyped-def]
    return {"placed": Order.id, "total": Order.total, "status": Order.status}[sort.key]


def list_orders(
    session: Session,
    f: OrderFilter | None = None,
    sort: Sort | None = None,
    *,
    limit: int = PAGE_SIZE,
    after: Cursor | None = None,
    before: Cursor | None = None,
) -> Page:
    """One page of orders in ``sort`` order, after ``after`` or before ``before``.

    Rows always come back in display order (for ``before`` too).
    """
    f = f or OrderFilter()
    sort = sort or Sort()
    if limit < 1:
        raise ValueError("limit must be at least 1")
    col = _sort_column(sort)
    backwards = before is not None
    desc = sort.descending != backwards  # walking backwards flips the order
    conds = filter_clauses(session, f)
    cur = before if backwards else after
    if cur is not None:
        if sort.key == "placed":
            conds.append(Order.id < cur.id if desc else Order.id > cur.id)
        elif desc:
            conds.append(or_(col < cur.value, and_(col == cur.value, Order.id < cur.id)))
        else:
            conds.append(or_(col > cur.value, and_(col == cur.value, Order.id > cur.id)))
    order_by = [col.desc(), Order.id.desc()] if desc else [col.asc(), Order.id.asc()]
    if sort.key == "placed":
        order_by = order_by[1:]
    stmt = (
        select(Order, Customer.name, Customer.email)
        .join(Customer, Customer.id == Order.customer_id)
        .where(and_(true(), *conds))
        .order_by(*order_by)
        .limit(limit + 1)
    )
    result = session.execute(stmt).all()
    more = len(result) > limit
    result = result[:limit]
    if backwards:
        result.reverse()
    summaries = items_summaries(session, [r[0].id for r in result])
    rows = [_row(o, name, email, summaries.get(o.id, "")) for o, name, email in result]

    def cursor_of(row: OrderRow) -> Cursor:
        value = {"placed": row.id, "total": row.total, "status": row.status}[sort.key]
        return Cursor(value, row.id)

    if not rows:
        return Page([], None, None)
    if backwards:
        prev_c = cursor_of(rows[0]) if more else None
        next_c = cursor_of(rows[-1])
    else:
        next_c = cursor_of(rows[-1]) if more else None
        prev_c = cursor_of(rows[0]) if cur is not None else None
    return Page(rows, next_c, prev_c)


def _row(o: Order, name: str, email: str, summary: str) -> OrderRow:
    assert o.id is not None
    return OrderRow(
        id=o.id,
        number=o.number,
        placed_at=o.placed_at,
        customer_id=o.customer_id,
        customer_name=name,
        customer_email=email,
        items_summary=summary,
        item_count=o.item_count,
        total=o.total,
        currency=o.currency,
        status=o.status,
        payment_status=o.payment_status,
        fulfillment_status=o.fulfillment_status,
        country=o.country,
        on_hold=o.on_hold,
        hold_reason=o.hold_reason,
        version=o.version,
    )


def items_summary(lines: list[tuple[str, int]], width: int = 2) -> str:
    """'2× Mug, 1× Tee +3 more' from (name, quantity) pairs."""
    shown = [f"{q}× {n}" for n, q in lines[:width]]
    rest = len(lines) - width
    return ", ".join(shown) + (f" +{rest} more" if rest > 0 else "")


def items_summaries(session: Session, order_ids: list[int]) -> dict[int, str]:
    if not order_ids:
        return {}
    grouped: dict[int, list[tuple[str, int]]] = defaultdict(list)
    stmt = (
        select(OrderLine.order_id, OrderLine.name, OrderLine.quantity)
        .where(OrderLine.order_id.in_(order_ids))
        .order_by(OrderLine.order_id, OrderLine.id)
    )
    for oid, name, qty in session.execute(stmt):
        grouped[oid].append((name, qty))
    return {oid: items_summary(lines) for oid, lines in grouped.items()}


def count_orders(session: Session, f: OrderFilter | None = None, *, cap: int | None = None) -> int:
    """How many orders match; with ``cap``, stop counting at cap (for '10,000+')."""
    f = f or OrderFilter()
    if f.is_empty():
        n = session.get(OrderCount, "all")
        if n is not None:
            return n.n
    inner = select(Order.id).where(and_(true(), *filter_clauses(session, f)))
    if cap is not None:
        inner = inner.limit(cap)
    return int(session.execute(select(func.count()).select_from(inner.subquery())).scalar_one())


def status_counts(session: Session, f: OrderFilter | None = None) -> dict[str, int]:
    """Orders per status plus 'all' and 'on_hold' (the desk's tabs).

    Unfiltered, this reads the trigger-maintained order_counts table (micro-
    seconds at a million orders); filtered, it groups the matching rows.
    """
    keys = ["all", *[s.value for s in OrderStatus], "on_hold"]
    f = f or OrderFilter()
    if f.is_empty() and has_fts(session):
        got = {k: n for k, n in session.execute(select(OrderCount.key, OrderCount.n))}
        return {k: got.get(k, 0) for k in keys}
    conds = filter_clauses(session, f)
    out = dict.fromkeys(keys, 0)
    stmt = (
        select(Order.status, Order.on_hold, func.count())
        .where(and_(true(), *conds))
        .group_by(Order.status, Order.on_hold)
    )
    for status, hold, n in session.execute(stmt):
        out[status] = out.get(status, 0) + n
        out["all"] += n
        if hold:
            out["on_hold"] += n
    return out


# -- detail --------------------------------------------------------------


@dataclass
class OrderDetail:
    order: Order
    customer: Customer
    addresses: list[Address]
    lines: list[OrderLine]
    payments: list[Payment]
    refunds: list[Refund]
    shipments: list[Shipment]
    events: list[OrderEvent]  # newest first
    tags: list[str] = field(default_factory=list)


def find_order(session: Session, number_or_id: str | int) -> Order | None:
    if isinstance(number_or_id, int):
        return session.get(Order, number_or_id)
    return session.execute(select(Order).where(Order.number == number_or_id)).scalar_one_or_none()


def order_detail(session: Session, number_or_id: str | int) -> OrderDetail | None:
    order = find_order(session, number_or_id)
    if order is None:
        return None
    oid = order.id
    customer = session.get(Customer, order.customer_id)
    assert customer is not None

    def rows(model, *order_by):  # type: ignore[no-untyped-def]
        return list(
            session.execute(
                select(model).where(model.order_id == oid).order_by(*order_by)
            ).scalars()
        )

    return OrderDetail(
        order=order,
        customer=customer,
        addresses=list(
            session.execute(
                select(Address).where(Address.customer_id == customer.id).order_by(Address.id)
            ).scalars()
        ),
        lines=rows(OrderLine, OrderLine.id),
        payments=rows(Payment, Payment.id),
        refunds=rows(Refund, Refund.id),
        shipments=rows(Shipment, Shipment.id),
        events=rows(OrderEvent, OrderEvent.id.desc()),
        tags=list(
            session.execute(
                select(OrderTag.tag).where(OrderTag.order_id == oid).order_by(OrderTag.tag)
            ).scalars()
        ),
    )


def audit_entries(session: Session, entity: str, entity_id: str) -> list[AuditEntry]:
    return list(
        session.execute(
            select(AuditEntry)
            .where(AuditEntry.entity == entity, AuditEntry.entity_id == entity_id)
            .order_by(AuditEntry.id)
        ).scalars()
    )
