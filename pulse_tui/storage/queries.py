"""Read queries: order list (filters, sort, keyset pages), counts, detail.

Every list is keyset-paginated (never OFFSET): a page is "the next N rows
after this cursor" in (sort value, id) order, so page 5,000 costs what page 1
costs. Ids ascend with placed time, so "placed" sorting is id order.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Any, cast

from babel.numbers import get_currency_precision, list_currencies
from sqlalchemy import (
    ColumnElement,
    Integer,
    and_,
    case,
    column,
    false,
    func,
    or_,
    select,
    table,
    true,
)
from sqlalchemy import text as sql_text
from sqlalchemy.orm import Session, aliased
from sqlmodel import col

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
    Return,
    Shipment,
)
from .search import fts_query, has_fts, trigram_query

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
            cond = (
                col(Order.total) > bound if strict or scaled != bound else col(Order.total) >= bound
            )
        else:
            bound = int(scaled.to_integral_value(ROUND_CEILING))
            cond = (
                col(Order.total) < bound if strict or scaled != bound else col(Order.total) <= bound
            )
        parts.append(and_(col(Order.currency).in_(codes), cond))
    return or_(*parts)


def filter_clauses(
    session: Session, f: OrderFilter, *, text: bool = True, driver: str | None = None
) -> list[ColumnElement[bool]]:
    """WHERE clauses for ``f``; ``text=False`` leaves out free text and
    ``driver="sku"``/``"tag"`` that filter (the caller drives the query from
    the FTS table or that index instead, see ``list_orders``)."""
    c: list[ColumnElement[bool]] = []
    if f.statuses:
        c.append(col(Order.status).in_([s.value for s in f.statuses]))
    if f.payment_statuses:
        c.append(col(Order.payment_status).in_([s.value for s in f.payment_statuses]))
    if f.fulfillment_statuses:
        c.append(col(Order.fulfillment_status).in_([s.value for s in f.fulfillment_statuses]))
    if f.placed_from is not None:
        c.append(col(Order.placed_at) >= f.placed_from)
    if f.placed_to is not None:
        c.append(col(Order.placed_at) < f.placed_to)
    if f.countries:
        c.append(col(Order.country).in_(list(f.countries)))
    if f.total_min is not None:
        c.append(_total_clause(f.total_min, lower=True, strict=f.total_min_strict))
    if f.total_max is not None:
        c.append(_total_clause(f.total_max, lower=False, strict=f.total_max_strict))
    if f.on_hold is not None:
        c.append(col(Order.on_hold) == f.on_hold)
    if f.customer_id is not None:
        c.append(col(Order.customer_id) == f.customer_id)
    if f.customer:
        c.append(col(Order.customer_id).in_(_customers_matching(session, f.customer)))
    if f.sku and driver != "sku":
        c.append(
            col(Order.id).in_(select(col(OrderLine.order_id)).where(col(OrderLine.sku) == f.sku))
        )
    if f.tag and driver != "tag":
        c.append(
            col(Order.id).in_(select(col(OrderTag.order_id)).where(col(OrderTag.tag) == f.tag))
        )
    if f.text and text:
        c.append(_text_clause(session, f.text))
    return c


def _customers_matching(session: Session, fragment: str) -> Any:
    """Ids of customers whose name or email contains ``fragment`` (any case).

    On SQLite a fragment of 3+ characters is looked up in the trigram index
    ``customer_search`` (migration 0003); shorter ones scan with LIKE.
    SQLite's LIKE already ignores ASCII case, and its lower() folds only ASCII,
    so ``lower(x) LIKE p`` and ``x LIKE p`` match the same rows there; leaving
    lower() out halves the scan. PostgreSQL's LIKE is case-sensitive."""
    tri = trigram_query(fragment) if has_fts(session) else None
    if tri is not None:
        return _trigram_ids(tri)
    like = f"%{fragment.lower()}%"
    name: Any = col(Customer.name)
    email: Any = col(Customer.email)
    if not has_fts(session):
        name, email = func.lower(name), func.lower(email)
    return select(col(Customer.id)).where(or_(name.like(like), email.like(like)))


def _trigram_ids(tri: str, param: str = "tri_customer") -> Any:
    # distinct parameter names: customer: and free text may both be in one query
    return (
        select(sql_text("rowid"))
        .select_from(sql_text("customer_search"))
        .where(sql_text(f"customer_search MATCH :{param}").bindparams(**{param: tri}))
    )


def _text_clause(session: Session, text_: str) -> ColumnElement[bool]:
    """Free text: word prefixes in the order index (number, name, email, SKUs,
    tracking) or, for 3+ characters, a substring of the customer's name or
    email (trigram index), so mid-address fragments are found too."""
    if has_fts(session):
        q = fts_query(text_)
        hits = (
            col(Order.id).in_(
                select(sql_text("rowid"))
                .select_from(sql_text("order_search"))
                .where(sql_text("order_search MATCH :fts").bindparams(fts=q))
            )
            if q is not None
            else false()
        )
        tri = trigram_query(text_)
        if tri is None:
            return hits
        return or_(hits, col(Order.customer_id).in_(_trigram_ids(tri, "tri_text")))
    like = f"%{text_.lower()}%"
    return or_(
        func.lower(col(Order.number)).like(like),
        col(Order.customer_id).in_(
            select(col(Customer.id)).where(
                or_(
                    func.lower(col(Customer.name)).like(like),
                    func.lower(col(Customer.email)).like(like),
                )
            )
        ),
        col(Order.id).in_(
            select(col(OrderLine.order_id)).where(func.lower(col(OrderLine.sku)).like(like))
        ),
        col(Order.id).in_(
            select(col(Shipment.order_id)).where(
                func.lower(col(Shipment.tracking_number)).like(like)
            )
        ),
    )


# -- list ----------------------------------------------------------------

# OrderRow's columns in its field order (customer name/email and the items
# summary are spliced in): selecting columns, not the Order entity, skips the
# ORM identity map and the JSON address snapshots the list never shows.
_ROW_COLUMNS = (
    col(Order.id),
    col(Order.number),
    col(Order.placed_at),
    col(Order.customer_id),
    col(Order.item_count),
    col(Order.total),
    col(Order.currency),
    col(Order.status),
    col(Order.payment_status),
    col(Order.fulfillment_status),
    col(Order.country),
    col(Order.on_hold),
    col(Order.hold_reason),
    col(Order.version),
)
_SEARCH = table("order_search", column("rowid", Integer))


def _row_of(r: Any, summary: str) -> OrderRow:
    """An OrderRow from a result row of ``(*_ROW_COLUMNS, customer name, email)``."""
    (oid, number, placed, customer_id, item_count, total, currency, status, pay, fulfil,
     country, on_hold, hold_reason, version, name, email) = r  # fmt: skip
    return OrderRow(
        id=oid,
        number=number,
        placed_at=placed,
        customer_id=customer_id,
        customer_name=name,
        customer_email=email,
        items_summary=summary,
        item_count=item_count,
        total=total,
        currency=currency,
        status=status,
        payment_status=pay,
        fulfillment_status=fulfil,
        country=country,
        on_hold=on_hold,
        hold_reason=hold_reason,
        version=version,
    )


def _sort_column(sort: Sort) -> Any:
    return {"placed": col(Order.id), "total": col(Order.total), "status": col(Order.status)}[
        sort.key
    ]


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
    key_col = _sort_column(sort)
    backwards = before is not None
    desc = sort.descending != backwards  # walking backwards flips the order
    conds = filter_clauses(session, f)
    cur = before if backwards else after
    if cur is not None:
        if sort.key == "placed":
            conds.append(col(Order.id) < cur.id if desc else col(Order.id) > cur.id)
        elif desc:
            conds.append(
                or_(key_col < cur.value, and_(key_col == cur.value, col(Order.id) < cur.id))
            )
        else:
            conds.append(
                or_(key_col > cur.value, and_(key_col == cur.value, col(Order.id) > cur.id))
            )
    order_by = (
        [key_col.desc(), col(Order.id).desc()] if desc else [key_col.asc(), col(Order.id).asc()]
    )
    if sort.key == "placed":
        order_by = order_by[1:]
    columns = (*_ROW_COLUMNS, col(Customer.name), col(Customer.email))
    placed_sqlite = sort.key == "placed" and has_fts(session)
    q = fts_query(f.text) if f.text and placed_sqlite else None
    streams: list[Any] = []
    if q is not None:
        # Drive the query from the FTS hits in rowid (= order id = placed)
        # order: FTS5 walks its doclist newest first and stops at the LIMIT,
        # where ``id IN (hits)`` would materialise every hit of a common word.
        hit = _SEARCH.c.rowid
        base = filter_clauses(session, f, text=False)
        fts_conds = [
            *base,
            cast(ColumnElement[bool], sql_text("order_search MATCH :fts").bindparams(fts=q)),
        ]
        if cur is not None:
            fts_conds.append(hit < cur.id if desc else hit > cur.id)
        streams.append(
            select(*columns)
            .select_from(_SEARCH)
            .join(Order, col(Order.id) == hit)
            .join(Customer, col(Customer.id) == col(Order.customer_id))
            .where(and_(true(), *fts_conds))
            .order_by(hit.desc() if desc else hit.asc())
            .limit(limit + 1)
        )
        tri = trigram_query(f.text or "")
        if tri is not None:
            # ... plus the orders of customers whose name or email contains
            # the text (trigram index): a second newest-first stream, merged.
            tri_conds = [*base, col(Order.customer_id).in_(_trigram_ids(tri, "tri_text"))]
            if cur is not None:
                tri_conds.append(col(Order.id) < cur.id if desc else col(Order.id) > cur.id)
            streams.append(
                select(*columns)
                .join(Customer, col(Customer.id) == col(Order.customer_id))
                .where(and_(true(), *tri_conds))
                .order_by(*order_by)
                .limit(limit + 1)
            )
    elif placed_sqlite and (f.tag or f.sku):
        # Drive the page from the (tag, order_id) / (sku, order_id) index in
        # order_id order, so it stops after limit + 1 matches instead of
        # materialising every order carrying a common tag or SKU.
        driver = "tag" if f.tag else "sku"
        link: Any = OrderTag if f.tag else OrderLine
        key: Any = col(OrderTag.tag) == f.tag if f.tag else col(OrderLine.sku) == f.sku
        oid = col(link.order_id)
        drv_conds = [*filter_clauses(session, f, driver=driver), key]
        if cur is not None:
            drv_conds.append(oid < cur.id if desc else oid > cur.id)
        stmt = (
            select(*columns)
            .select_from(link)
            .join(Order, col(Order.id) == oid)
            .join(Customer, col(Customer.id) == col(Order.customer_id))
            .where(and_(true(), *drv_conds))
            .order_by(oid.desc() if desc else oid.asc())
            .limit(limit + 1)
        )
        # an order may hold two lines of one SKU: DISTINCT keeps it once
        # (streamed, so the LIMIT still stops the index walk early)
        streams.append(stmt.distinct() if driver == "sku" else stmt)
    else:
        streams.append(
            select(*columns)
            .join(Customer, col(Customer.id) == col(Order.customer_id))
            .where(and_(true(), *conds))
            .order_by(*order_by)
            .limit(limit + 1)
        )
    result: list[Any]
    if len(streams) == 1:
        result = list(session.execute(streams[0]).all())
    else:
        merged = {r[0]: r for stream in streams for r in session.execute(stream)}
        result = [merged[i] for i in sorted(merged, reverse=desc)][: limit + 1]
    more = len(result) > limit
    result = result[:limit]
    if backwards:
        result.reverse()
    summaries = items_summaries(session, [r[0] for r in result])
    rows = [_row_of(r, summaries.get(r[0], "")) for r in result]

    def cursor_of(row: OrderRow) -> Cursor:
        value = {"placed": row.id, "total": row.total, "status": row.status}[sort.key]
        return Cursor(value, row.id)

    if not rows:
        return Page([], None, None)
    next_c: Cursor | None
    prev_c: Cursor | None
    if backwards:
        prev_c = cursor_of(rows[0]) if more else None
        next_c = cursor_of(rows[-1])
    else:
        next_c = cursor_of(rows[-1]) if more else None
        prev_c = cursor_of(rows[0]) if cur is not None else None
    return Page(rows, next_c, prev_c)


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
        select(col(OrderLine.order_id), col(OrderLine.name), col(OrderLine.quantity))
        .where(col(OrderLine.order_id).in_(order_ids))
        .order_by(col(OrderLine.order_id), col(OrderLine.id))
    )
    for oid, name, qty in session.execute(stmt):
        grouped[oid].append((name, qty))
    return {oid: items_summary(lines) for oid, lines in grouped.items()}


def count_orders(session: Session, f: OrderFilter | None = None, *, cap: int | None = None) -> int:
    """How many orders match; with ``cap``, stop counting at cap (for '10,000+')."""
    f = f or OrderFilter()
    # order_counts is only kept right by the SQLite triggers (the same dialect
    # check as FTS); elsewhere it stays at zero, so count the rows instead.
    if f.is_empty() and has_fts(session):
        n = session.get(OrderCount, "all")
        if n is not None:
            return n.n if cap is None else min(n.n, cap)
    inner = select(col(Order.id)).where(and_(true(), *filter_clauses(session, f)))
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
        got = {k: n for k, n in session.execute(select(col(OrderCount.key), col(OrderCount.n)))}
        return {k: got.get(k, 0) for k in keys}
    conds = filter_clauses(session, f)
    out = dict.fromkeys(keys, 0)
    stmt = (
        select(col(Order.status), col(Order.on_hold), func.count())
        .where(and_(true(), *conds))
        .group_by(col(Order.status), col(Order.on_hold))
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
    return session.execute(
        select(Order).where(col(Order.number) == number_or_id)
    ).scalar_one_or_none()


def order_detail(session: Session, number_or_id: str | int) -> OrderDetail | None:
    # The order and its customer in one round trip (each ORM statement costs
    # more in SQLAlchemy than in SQLite at this size).
    by: Any = (
        col(Order.id) == number_or_id
        if isinstance(number_or_id, int)
        else col(Order.number) == number_or_id
    )
    got = session.execute(
        select(Order, Customer).join(Customer, col(Customer.id) == col(Order.customer_id)).where(by)
    ).first()
    if got is None:
        return None
    order, customer = got
    oid = order.id

    def rows(model: Any, *order_by: Any) -> list[Any]:
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
                select(Address)
                .where(col(Address.customer_id) == customer.id)
                .order_by(col(Address.id))
            ).scalars()
        ),
        lines=rows(OrderLine, col(OrderLine.id)),
        payments=rows(Payment, col(Payment.id)),
        refunds=rows(Refund, col(Refund.id)),
        shipments=rows(Shipment, col(Shipment.id)),
        events=rows(OrderEvent, col(OrderEvent.id).desc()),
        tags=list(
            session.execute(
                select(col(OrderTag.tag))
                .where(col(OrderTag.order_id) == oid)
                .order_by(col(OrderTag.tag))
            ).scalars()
        ),
    )


def audit_entries(session: Session, entity: str, entity_id: str) -> list[AuditEntry]:
    return list(
        session.execute(
            select(AuditEntry)
            .where(col(AuditEntry.entity) == entity, col(AuditEntry.entity_id) == entity_id)
            .order_by(col(AuditEntry.id))
        ).scalars()
    )


# -- aggregates ------------------------------------------------------------


def revenue_per_day(session: Session, days: int, now: datetime) -> list[tuple[date, str, int]]:
    """Order value placed per UTC day and currency over the last ``days`` days.

    The window is ``days`` whole UTC calendar days ending with ``now``'s day
    (today counts up to ``now``). Cancelled orders are left out; every other
    order counts with its total in minor units. Days without orders are
    absent. Rows come back by day, then currency.
    """
    if days < 1:
        raise ValueError("days must be at least 1")
    now = now.astimezone(UTC)
    start = datetime.combine(now.date() - timedelta(days=days - 1), time.min, tzinfo=UTC)
    if has_fts(session):
        return _revenue_from_day_totals(session, start, now)
    return _revenue_group_by(session, start, now)


def _revenue_from_day_totals(
    session: Session, start: datetime, now: datetime
) -> list[tuple[date, str, int]]:
    """Whole days before ``now``'s day from the trigger-kept order_day_totals
    (migration 0003); today, which counts only up to ``now``, from the rows."""
    today = datetime.combine(now.date(), time.min, tzinfo=UTC)
    past = session.execute(
        sql_text(
            "SELECT day, currency, revenue FROM order_day_totals "
            "WHERE day >= :first AND day < :today AND orders > 0 ORDER BY day, currency"
        ),
        {"first": start.date().isoformat(), "today": today.date().isoformat()},
    )
    out = [(date.fromisoformat(d), c, int(n)) for d, c, n in past]
    return out + _revenue_group_by(session, today, now)


def _revenue_group_by(
    session: Session, start: datetime, now: datetime
) -> list[tuple[date, str, int]]:
    placed = col(Order.placed_at)
    day: Any = func.date(placed) if has_fts(session) else func.date_trunc("day", placed)
    stmt = (
        select(day, col(Order.currency), func.sum(col(Order.total)))
        .where(
            placed >= start,
            placed <= now,
            col(Order.status) != OrderStatus.CANCELLED.value,
        )
        .group_by(day, col(Order.currency))
        .order_by(day, col(Order.currency))
    )
    out: list[tuple[date, str, int]] = []
    for d, currency, amount in session.execute(stmt):
        if isinstance(d, str):
            d = date.fromisoformat(d)
        elif isinstance(d, datetime):
            d = d.date()
        out.append((d, currency, int(amount)))
    return out


# -- refunds and returns across orders ----------------------------------------------


def _worklist(
    q: Any,
    model: Any,
    *,
    first: Sequence[Sequence[str]],
    status: str | None,
    order_id: int | None,
    ids: Sequence[int],
    limit: int,
    offset: int,
) -> Any:
    """A listing of ``model`` rows (refunds, returns): the groups of statuses in
    ``first`` on top, in that order (what needs someone), then newest first;
    filtered and paged."""
    on_top = case(
        *[(model.status.in_(list(group)), i) for i, group in enumerate(first)],
        else_=len(first),
    )
    q = q.order_by(on_top, model.id.desc()).limit(max(1, min(limit, 10_000))).offset(max(0, offset))
    if status is not None:
        q = q.where(model.status == status)
    if order_id is not None:
        q = q.where(model.order_id == order_id)
    if ids:
        q = q.where(model.id.in_(list(ids)))
    return q


def refund_rows(
    session: Session,
    *,
    first: Sequence[Sequence[str]],
    status: str | None = None,
    order_id: int | None = None,
    ids: Sequence[int] = (),
    limit: int = 200,
    offset: int = 0,
) -> list[tuple[Refund, str, str | None]]:
    """(refund, order number, payment gateway) rows."""
    q = (
        select(Refund, col(Order.number), col(Payment.gateway))
        .join(Order, col(Order.id) == col(Refund.order_id))
        .outerjoin(Payment, col(Payment.id) == col(Refund.payment_id))
    )
    q = _worklist(
        q,
        Refund,
        first=first,
        status=status,
        order_id=order_id,
        ids=ids,
        limit=limit,
        offset=offset,
    )
    return [(r, str(n), g) for r, n, g in session.execute(q).all()]


def return_rows(
    session: Session,
    *,
    first: Sequence[Sequence[str]],
    status: str | None = None,
    order_id: int | None = None,
    ids: Sequence[int] = (),
    limit: int = 200,
    offset: int = 0,
) -> list[tuple[Return, Order, str | None]]:
    """(return, its order, the exchange order's number) rows."""
    swap: Any = aliased(Order)
    q = (
        select(Return, Order, swap.number)
        .join(Order, col(Order.id) == col(Return.order_id))
        .outerjoin(swap, swap.id == col(Return.exchange_order_id))
    )
    q = _worklist(
        q,
        Return,
        first=first,
        status=status,
        order_id=order_id,
        ids=ids,
        limit=limit,
        offset=offset,
    )
    return [(r, o, n) for r, o, n in session.execute(q).all()]


def count_by_status(session: Session, model: Any) -> dict[str, int]:
    return {
        str(k): int(v)
        for k, v in session.execute(select(model.status, func.count()).group_by(model.status))
    }
