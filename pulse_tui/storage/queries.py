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
    bindparam,
    case,
    column,
    exists,
    false,
    func,
    intersect,
    or_,
    select,
    table,
    true,
    union,
    union_all,
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
from .search import ORDER_CUSTOMER_INDEX, has_fts, text_plan, trigram_query
from .sql import driver_rows, id_in

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
# Most currencies have two decimals: the total comparison names the few that
# do not (as constants in the SQL, no bind parameters) and takes 2 otherwise.
# An IN list of all ~250 two-decimal codes cost ~1 ms per page to build and
# bind (issue 8: country:DE total:>100 was 3.7 ms p95 at 1M orders, target 3).
_DEFAULT_EXP = max(_EXP_GROUPS, key=lambda e: len(_EXP_GROUPS[e]))
assert all(c.isalpha() and c.isascii() for g in _EXP_GROUPS.values() for c in g)  # safe in SQL
_EXP_TESTS = {
    exp: sql_text("orders.currency IN ({})".format(", ".join(f"'{c}'" for c in codes)))
    for exp, codes in sorted(_EXP_GROUPS.items())
    if exp != _DEFAULT_EXP
}


def _total_clause(amount: Decimal, *, lower: bool, strict: bool) -> ColumnElement[bool]:
    """Compare the integer total with a major-unit amount in each order's currency.

    Exact in integers: ``total > 100.5 USD`` is ``total > 10050``; the
    fraction left by currencies with fewer decimals rounds the right way.
    Every bound is made strict (``>= b`` is ``> b - 1`` in integers), so one
    comparison against a CASE over the currency's exponent does it.
    """

    def bound(exp: int) -> int:
        scaled = amount.scaleb(exp)
        if lower:
            b = int(scaled.to_integral_value(ROUND_FLOOR))
            return b if strict or scaled != b else b - 1
        b = int(scaled.to_integral_value(ROUND_CEILING))
        return b if strict or scaled != b else b + 1

    limit = case(
        *((test, bound(exp)) for exp, test in _EXP_TESTS.items()),
        else_=bound(_DEFAULT_EXP),
    )
    return col(Order.total) > limit if lower else col(Order.total) < limit


def filter_clauses(
    session: Session,
    f: OrderFilter,
    *,
    text: bool = True,
    driver: str | None = None,
    customer: bool = True,
) -> list[ColumnElement[bool]]:
    """WHERE clauses for ``f``; ``text=False`` / ``customer=False`` leave out
    free text / the ``customer:`` fragment and ``driver="sku"``/``"tag"`` that
    filter (the caller drives the query from the FTS tables or that index
    instead, see ``list_orders``)."""
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
    if f.customer and customer:
        c.append(_customer_clause(session, f.customer))
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
        return (
            select(sql_text("rowid"))
            .select_from(sql_text("customer_search"))
            .where(sql_text("customer_search MATCH :tri_customers").bindparams(tri_customers=tri))
        )
    like = f"%{fragment.lower()}%"
    name: Any = col(Customer.name)
    email: Any = col(Customer.email)
    if not has_fts(session):
        name, email = func.lower(name), func.lower(email)
    return select(col(Customer.id)).where(or_(name.like(like), email.like(like)))


# -- FTS5 matches (SQLite) -----------------------------------------------------

_WORDS = table("order_search", column("rowid", Integer))
_SUBSTRINGS = table(ORDER_CUSTOMER_INDEX, column("rowid", Integer))


@dataclass(frozen=True)
class _Match:
    """ "The order id is a hit of this MATCH": one FTS5 table whose rowid is the
    order id (``order_search``: word prefixes; ``order_customer_search``:
    substrings of the customer's name or email). ``param`` names the bound
    expression, distinct per condition of one statement."""

    index: Any
    expr: str
    param: str

    def condition(self) -> ColumnElement[bool]:
        name = self.index.name
        return cast(
            ColumnElement[bool],
            sql_text(f"{name} MATCH :{self.param}").bindparams(**{self.param: self.expr}),
        )

    def ids(self, bound: Any = None) -> Any:
        """``SELECT rowid AS id`` of the hits, optionally below/above a keyset bound."""
        rowid = self.index.c.rowid
        q = select(rowid.label("id")).select_from(self.index).where(self.condition())
        return q if bound is None else q.where(bound(rowid))


def _customer_match(session: Session, fragment: str) -> _Match | None:
    """``customer:`` as an order-level trigram match (SQLite, 3+ characters)."""
    tri = trigram_query(fragment) if has_fts(session) else None
    return None if tri is None else _Match(_SUBSTRINGS, tri, "tri_customer")


def _text_matches(text_: str) -> list[list[_Match]]:
    """Free text (SQLite) as alternatives (OR) of groups of matches (AND); an
    empty list matches nothing. See ``search.text_plan`` for the meaning."""
    plan = text_plan(text_)
    words = _Match(_WORDS, plan.words, "fts") if plan.words else None
    subs = _Match(_SUBSTRINGS, plan.substring, "tri_text") if plan.substring else None
    found = [m for m in (words, subs) if m is not None]
    if not found:
        return []
    return [found] if plan.combine == "and" else [[m] for m in found]


def _customer_clause(session: Session, fragment: str) -> ColumnElement[bool]:
    m = _customer_match(session, fragment)
    if m is not None:
        return col(Order.id).in_(m.ids())
    return col(Order.customer_id).in_(_customers_matching(session, fragment))


def _text_clause(session: Session, text_: str) -> ColumnElement[bool]:
    """Free text: see ``search.text_plan`` (SQLite); elsewhere a LIKE over the
    number, the customer's name and email, SKUs and tracking numbers."""
    if has_fts(session):
        groups = _text_matches(text_)
        if not groups:
            return false()
        # one id list for SQLite to probe by rowid: ``id IN (a UNION b)`` costs
        # half of ``id IN (a) OR id IN (b)`` (a multi-index OR) for a common word
        if len(groups) == 1:
            g = groups[0]
            ids: Any = intersect(*[m.ids() for m in g]) if len(g) > 1 else g[0].ids()
        else:  # "or": one match per group
            ids = union(*[g[0].ids() for g in groups])
        return col(Order.id).in_(ids)
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

# OrderRow's columns in its field order (the items summary is spliced in):
# selecting columns, not the Order entity, skips the ORM identity map and the
# JSON address snapshots the list never shows.
_ORDERS: Any = Order.__table__  # type: ignore[attr-defined]
_CUSTOMERS: Any = Customer.__table__  # type: ignore[attr-defined]
_ORDERS_TAGS: Any = OrderTag.__table__  # type: ignore[attr-defined]
_COUNTS_TABLE: Any = OrderCount.__table__  # type: ignore[attr-defined]
# Plain table columns, not ORM attributes: with ORM-annotated columns every
# execution re-matched the cached result map by building ``==`` expressions
# (~0.5 ms a page, more than SQLite's work for it).
_ROW_COLUMNS = (
    *(
        _ORDERS.c[name]
        for name in (
            "id",
            "number",
            "placed_at",
            "customer_id",
            "item_count",
            "total",
            "currency",
            "status",
            "payment_status",
            "fulfillment_status",
            "country",
            "on_hold",
            "hold_reason",
            "version",
        )
    ),
    _CUSTOMERS.c.name,
    _CUSTOMERS.c.email,
)


def _row_of(r: Any, summary: str) -> OrderRow:
    """An OrderRow from a result row of ``_ROW_COLUMNS`` (the order's columns,
    then its customer's name and email)."""
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
    cur = before if backwards else after
    placed_sqlite = sort.key == "placed" and has_fts(session)
    groups = _fts_groups(session, f) if placed_sqlite else None
    stmt: Any
    if groups is not None:
        stmt = _fts_page(session, f, groups, cur, desc, limit + 1)
    elif placed_sqlite and (f.tag or f.sku):
        stmt = _link_stream(session, f, cur, desc, limit + 1)
    else:
        conds = filter_clauses(session, f)
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
        stmt = _page_select().where(and_(true(), *conds)).order_by(*order_by).limit(limit + 1)
    result: list[Any] = list(session.connection().execute(stmt).all())
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


def _page_select(*links: Any) -> Any:
    """SELECT of a page's columns from orders joined to customers (after
    ``links``: the FTS table or index table driving the walk)."""
    q = select(*_ROW_COLUMNS)
    for link, on in links:
        q = q.select_from(link).join(_ORDERS, on)
    if not links:
        q = q.select_from(_ORDERS)
    return q.join(_CUSTOMERS, _CUSTOMERS.c.id == _ORDERS.c.customer_id)


def _fts_groups(session: Session, f: OrderFilter) -> list[list[_Match]] | None:
    """The filter's FTS5 conditions (free text, ``customer:`` of 3+ characters)
    as alternatives (OR) of groups (AND); None when it has none."""
    cust = _customer_match(session, f.customer) if f.customer else None
    groups: list[list[_Match]] = [[cust]] if cust is not None else [[]]
    if f.text:
        alternatives = _text_matches(f.text)
        groups = [g + a for g in groups for a in alternatives]
    if groups == [[]]:
        return None
    return groups


def _fts_page(
    session: Session,
    f: OrderFilter,
    groups: list[list[_Match]],
    cur: Cursor | None,
    desc: bool,
    n: int,
) -> Any:
    """The page's statement when the filter has FTS5 conditions: at most ``n``
    rows newest first (oldest first when ``desc`` is False) after ``cur``.

    Each alternative (group of ANDed matches) yields at most ``n`` order ids in
    id order:

    * a substring that few customers have (``customer_search`` finds at most
      ``_FEW_CUSTOMERS``): those customers' orders by the (customer_id, id)
      index. A rare fragment's order-level doclists must be walked to their
      end, which costs ~5x the customer-level walk;
    * one match and no narrow status filter: the FTS5 table walked in rowid
      (= order id = placed) order, each hit's row looked up for the other
      filters; FTS5 stops at the LIMIT;
    * several matches (``customer:`` and text, an address piece and words), or
      a status/hold filter the counters call narrow: an INTERSECT of id
      streams (FTS5 hits, and the orders passing the other filters, which the
      (status, id) index hands over in id order). For "common surname +
      status:pending" this walks ~3,000 hits in doclists and ~6,000 index
      entries instead of looking up ~3,000 rows of hits that are not pending.

    One alternative walked straight is the whole statement; otherwise the ids
    of all alternatives (UNION ALL, at most ``n`` each) are fetched as rows by
    one outer query, so the rows of a page are read once.
    """
    # customer: is one of the matches unless too short for trigrams (then LIKE)
    by_index = f.customer is not None and _customer_match(session, f.customer) is not None
    rest = filter_clauses(session, f, text=False, customer=not by_index)
    narrow = _narrow(session, f)
    oid = col(Order.id)
    few: dict[str, list[int] | None] = {}

    def bound(c: Any) -> Any:
        return c < cur.id if desc else c > cur.id  # type: ignore[union-attr]

    def walk(c: Any) -> Any:
        return c.desc() if desc else c.asc()

    def customers_of(m: _Match) -> list[int] | None:
        if m.index is not _SUBSTRINGS:
            return None
        if m.expr not in few:
            few[m.expr] = _few_customers(session, m.expr)
        return few[m.expr]

    def by_customers(group: list[_Match]) -> tuple[list[Any], list[_Match]]:
        """Split a group into customer-id conditions (rare substrings) and FTS matches."""
        conds, matches = [], []
        for m in group:
            ids = customers_of(m)
            if ids is None:
                matches.append(m)
            else:
                conds.append(id_in(session, _ORDERS.c.customer_id, ids))
        return conds, matches

    id_selects: list[Any] = []
    for group in groups:
        by_cust, matches = by_customers(group)
        keyset = [bound(oid)] if cur is not None else []
        if by_cust:  # few orders: look each one up
            conds = [*by_cust, *rest, *keyset, *(oid.in_(m.ids()) for m in matches)]
            if len(groups) == 1:
                return _page_select().where(and_(true(), *conds)).order_by(walk(oid)).limit(n)
            id_selects.append(
                select(oid.label("id")).where(and_(true(), *conds)).order_by(walk(oid)).limit(n)
            )
            continue
        if len(matches) == 1 and not narrow:
            m = matches[0]
            hit = m.index.c.rowid
            conds = [*rest, m.condition(), *([bound(hit)] if cur is not None else [])]
            if len(groups) == 1:
                return (
                    _page_select((m.index, oid == hit))
                    .where(and_(true(), *conds))
                    .order_by(walk(hit))
                    .limit(n)
                )
            q = select(hit.label("id")).select_from(m.index)
            if rest:
                q = q.join(_ORDERS, _ORDERS.c.id == hit)
            id_selects.append(q.where(and_(true(), *conds)).order_by(walk(hit)).limit(n))
            continue
        parts = [m.ids(bound if cur is not None else None) for m in matches]
        if narrow:
            others: Any = select(oid.label("id")).where(and_(true(), *rest, *keyset))
            parts.append(others)
        ids: Any = intersect(*parts) if len(parts) > 1 else parts[0]
        if narrow:
            id_selects.append(ids.order_by(walk(ids.selected_columns[0])).limit(n))
        else:
            id_selects.append(
                select(oid.label("id")).where(oid.in_(ids), *rest).order_by(walk(oid)).limit(n)
            )
    if not id_selects:
        return _page_select().where(false()).limit(n)
    if len(id_selects) == 1:
        ids = id_selects[0]
    else:
        subs = [q.subquery() for q in id_selects]
        ids = union_all(*[select(sq.c.id) for sq in subs])
    return _page_select().where(oid.in_(ids)).order_by(walk(oid)).limit(n)


# A substring found in at most this many customers (about a page of their
# orders) is answered from their orders by the customer index: the
# order-level trigram walk stops at the page's LIMIT for a common fragment but
# must run to the end of its doclists for a rare one (1 customer: 2.4 ms
# instead of 0.7 at 1M orders); the probe stops after this many + 1 hits.
_FEW_CUSTOMERS = 10


def _few_customers(session: Session, expr: str) -> list[int] | None:
    """Ids of the customers matching a trigram expression, when there are at
    most ``_FEW_CUSTOMERS`` of them (``customer_search``, migration 0003)."""
    got = driver_rows(
        session,
        "SELECT rowid FROM customer_search WHERE customer_search MATCH ? LIMIT ?",
        (expr, _FEW_CUSTOMERS + 1),
    )
    ids = [int(r[0]) for r in got]
    return ids if len(ids) <= _FEW_CUSTOMERS else None


# Walking a status's (status, id) index beside the text hits costs ~0.2 µs an
# entry, up to every order of the status (c of them) when the text is rare;
# looking up each hit's row instead costs ~2.5 µs a hit, ~51·N/c hits for a
# page when the text is common. Equal at c² ≈ 640·N: 25,000 orders at N = 1M.
_NARROW_FACTOR = 640


def _narrow(session: Session, f: OrderFilter) -> bool:
    """True when the filter's status/hold part matches few orders (maintained
    counters, SQLite): see ``_fts_page``."""
    if not f.statuses and f.on_hold is not True:
        return False
    got: dict[str, int] = dict(driver_rows(session, "SELECT key, n FROM order_counts"))
    total = int(got.get("all", 0))
    n = total
    if f.statuses:
        n = min(n, sum(int(got.get(st.value, 0)) for st in f.statuses))
    if f.on_hold is True:
        n = min(n, int(got.get("on_hold", 0)))
    return n * n <= _NARROW_FACTOR * total


def _link_stream(session: Session, f: OrderFilter, cur: Cursor | None, desc: bool, n: int) -> Any:
    """``tag:`` / ``sku:`` pages driven from the (tag, order_id) / (sku,
    order_id) index in order_id order, so they stop after ``n`` matches instead
    of materialising every order carrying a common tag or SKU."""
    driver = "tag" if f.tag else "sku"
    link: Any = OrderTag if f.tag else OrderLine
    key: Any = col(OrderTag.tag) == f.tag if f.tag else col(OrderLine.sku) == f.sku
    oid = col(link.order_id)
    conds = [*filter_clauses(session, f, driver=driver), key]
    if cur is not None:
        conds.append(oid < cur.id if desc else oid > cur.id)
    stmt = (
        _page_select((link, col(Order.id) == oid))
        .where(and_(true(), *conds))
        .order_by(oid.desc() if desc else oid.asc())
        .limit(n)
    )
    # an order may hold two lines of one SKU: DISTINCT keeps it once
    # (streamed, so the LIMIT still stops the index walk early)
    return stmt.distinct() if driver == "sku" else stmt


def items_summary(lines: list[tuple[str, int]], width: int = 2) -> str:
    """'2× Mug, 1× Tee +3 more' from (name, quantity) pairs."""
    shown = [f"{q}× {n}" for n, q in lines[:width]]
    rest = len(lines) - width
    return ", ".join(shown) + (f" +{rest} more" if rest > 0 else "")


def items_summaries(session: Session, order_ids: list[int]) -> dict[int, str]:
    if not order_ids:
        return {}
    grouped: dict[int, list[tuple[str, int]]] = defaultdict(list)
    # The ids are ints of our own rows, written into the SQL: an expanding
    # IN of 50 bound values cost more in SQLAlchemy than the query in SQLite.
    ids = ",".join(str(int(i)) for i in order_ids)
    rows = driver_rows(
        session,
        "SELECT order_id, name, quantity FROM order_lines "
        f"WHERE order_id IN ({ids}) ORDER BY order_id, id",
    )
    for oid, name, qty in rows:
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


# The detail's statements, built once: building a select (coercions, cache
# key) cost as much as running it. Children are loaded only where the probe
# says there are any (most orders have no refunds, many no shipment or tags).
_OID: Any = bindparam("oid")
_DETAIL_HEAD = {
    kind: select(Order, Customer)
    .join(Customer, col(Customer.id) == col(Order.customer_id))
    .where(key == bindparam("key"))
    for kind, key in (("id", col(Order.id)), ("number", col(Order.number)))
}
_DETAIL_CHILDREN: tuple[tuple[str, Any, Any], ...] = (
    ("lines", OrderLine, col(OrderLine.id)),
    ("payments", Payment, col(Payment.id)),
    ("refunds", Refund, col(Refund.id)),
    ("shipments", Shipment, col(Shipment.id)),
    ("events", OrderEvent, col(OrderEvent.id).desc()),
)
_DETAIL_ROWS = {
    name: select(model).where(model.order_id == _OID).order_by(by)
    for name, model, by in _DETAIL_CHILDREN
}
_DETAIL_ADDRESSES = (
    select(Address).where(col(Address.customer_id) == bindparam("cid")).order_by(col(Address.id))
)
_DETAIL_TAGS = (
    select(_ORDERS_TAGS.c.tag).where(_ORDERS_TAGS.c.order_id == _OID).order_by(_ORDERS_TAGS.c.tag)
)
_DETAIL_PROBE = select(
    *(exists().where(model.order_id == _OID) for _, model, _ in _DETAIL_CHILDREN),
    exists().where(_ORDERS_TAGS.c.order_id == _OID),
    exists().where(col(Address.customer_id) == bindparam("cid")),
)


def order_detail(session: Session, number_or_id: str | int) -> OrderDetail | None:
    kind = "id" if isinstance(number_or_id, int) else "number"
    got = session.execute(_DETAIL_HEAD[kind], {"key": number_or_id}).first()
    if got is None:
        return None
    order, customer = got
    ids = {"oid": order.id, "cid": customer.id}
    *present, has_tags, has_addresses = session.connection().execute(_DETAIL_PROBE, ids).one()
    children: dict[str, list[Any]] = {
        name: list(session.execute(_DETAIL_ROWS[name], ids).scalars()) if there else []
        for (name, _, _), there in zip(_DETAIL_CHILDREN, present, strict=True)
    }
    addresses = list(session.execute(_DETAIL_ADDRESSES, ids).scalars()) if has_addresses else []
    tags = list(session.connection().execute(_DETAIL_TAGS, ids).scalars()) if has_tags else []
    return OrderDetail(order=order, customer=customer, addresses=addresses, tags=tags, **children)


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
