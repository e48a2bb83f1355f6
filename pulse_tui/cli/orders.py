"""`pulse orders ...`: list, show, place and move orders through their lifecycle.

Thin door: options are parsed with the domain's own parsers (the same ones the
TUI's filter bar uses) and every action is one OrderService call.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import typer
from rich import box
from rich.table import Table

from pulse_tui.domain.filters import OrderFilter, Sort, apply_term, parse_query
from pulse_tui.domain.money import Money
from pulse_tui.domain.numbers import parse_order_number
from pulse_tui.services.desk import Desk
from pulse_tui.services.errors import InvalidInput
from pulse_tui.services.orders import AddressInput, LineRequest
from pulse_tui.storage.models import Order
from pulse_tui.storage.queries import OrderDetail, OrderRow

from .app_context import state
from .output import (
    iso,
    message,
    money,
    out_console,
    output_mode,
    print_csv,
    print_json,
    result_line,
    short_time,
)

app = typer.Typer(help="Find, read and work orders.", no_args_is_help=True)

MAX_PAGE = 500
LIST_FIELDS = (
    "number",
    "placed_at",
    "customer_id",
    "customer_name",
    "customer_email",
    "items",
    "item_count",
    "total",
    "currency",
    "total_formatted",
    "status",
    "payment_status",
    "fulfillment_status",
    "country",
    "on_hold",
    "hold_reason",
    "version",
)
MONEY_FIELDS = ("subtotal", "discount", "shipping", "tax", "total", "paid", "refunded")

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON (only JSON) on stdout.")]
VersionOpt = Annotated[
    int | None,
    typer.Option(
        "--if-version",
        metavar="N",
        help="Only act if the order is still at version N (else exit 4).",
    ),
]
NumberArg = Annotated[str, typer.Argument(metavar="NUMBER", help="PB-100042, pb-100042 or 100042.")]


# -- parsing -----------------------------------------------------------------


def order_ref(text: str) -> str:
    try:
        return parse_order_number(text)
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None


def build_filter(
    now: datetime,
    *,
    query: str | None = None,
    status: str | None = None,
    pay: str | None = None,
    fulfil: str | None = None,
    placed: str | None = None,
    customer: str | None = None,
    country: str | None = None,
    total_min: str | None = None,
    total_max: str | None = None,
    sku: str | None = None,
    tag: str | None = None,
    on_hold: bool | None = None,
    search: str | None = None,
) -> OrderFilter:
    """Options → OrderFilter through the TUI's parser; options refine --query."""
    f = parse_query(query, now) if query else OrderFilter()
    terms = [
        ("status", status),
        ("pay", pay),
        ("fulfil", fulfil),
        ("placed", placed),
        ("customer", customer),
        ("country", country),
        ("total", f">={total_min.strip()}" if total_min is not None else None),
        ("total", f"<={total_max.strip()}" if total_max is not None else None),
        ("sku", sku),
        ("tag", tag),
        ("hold", None if on_hold is None else ("yes" if on_hold else "no")),
    ]
    for name, value in terms:
        if value is not None:
            f = apply_term(f, name, value, now)
    if search is not None and search.strip():
        f = f.with_(text=search.strip())
    return f


def parse_line(text: str) -> LineRequest:
    sku, sep, qty = text.rpartition(":")
    if not sep or not sku.strip():
        raise InvalidInput(f"bad --line {text!r}: use SKU:QTY, e.g. MUG-BLUE:2")
    try:
        quantity = int(qty.strip())
    except ValueError:
        raise InvalidInput(f"bad --line {text!r}: quantity must be a whole number") from None
    return LineRequest(sku.strip().upper(), quantity)


# -- serialising -------------------------------------------------------------


def row_json(r: OrderRow) -> dict[str, Any]:
    return {
        "number": r.number,
        "id": r.id,
        "placed_at": iso(r.placed_at),
        "customer_id": r.customer_id,
        "customer_name": r.customer_name,
        "customer_email": r.customer_email,
        "items": r.items_summary,
        "item_count": r.item_count,
        "total": r.total,
        "currency": r.currency,
        "total_formatted": money(r.total, r.currency),
        "status": r.status,
        "payment_status": r.payment_status,
        "fulfillment_status": r.fulfillment_status,
        "country": r.country,
        "on_hold": r.on_hold,
        "hold_reason": r.hold_reason,
        "version": r.version,
    }


def _dump(model: Any, money_fields: tuple[str, ...] = (), currency: str | None = None) -> dict:
    data = {k: iso(v) if isinstance(v, datetime) else v for k, v in model.model_dump().items()}
    cur = currency or data.get("currency")
    for f in money_fields:
        if cur and isinstance(data.get(f), int):
            data[f"{f}_formatted"] = money(data[f], cur)
    return data


def order_json(order: Order) -> dict[str, Any]:
    return _dump(order, MONEY_FIELDS)


def detail_json(d: OrderDetail) -> dict[str, Any]:
    cur = d.order.currency
    return {
        "order": order_json(d.order),
        "customer": _dump(d.customer),
        "addresses": [_dump(a) for a in d.addresses],
        "lines": [_dump(ln, ("unit_price", "tax", "line_total"), cur) for ln in d.lines],
        "payments": [_dump(p, ("amount", "captured", "refunded")) for p in d.payments],
        "refunds": [_dump(r, ("amount",)) for r in d.refunds],
        "shipments": [_dump(s) for s in d.shipments],
        "tags": list(d.tags),
        "timeline": [_dump(e) for e in d.events],
    }


def summary_line(order: Order) -> str:
    hold = f", on hold ({order.hold_reason})" if order.on_hold else ""
    return (
        f"status {order.status}, payment {order.payment_status}, "
        f"fulfilment {order.fulfillment_status}{hold}, version {order.version}"
    )


# -- list / show -------------------------------------------------------------


def fetch_rows(desk: Desk, f: OrderFilter, sort: Sort, limit: int) -> tuple[list[OrderRow], bool]:
    """Up to ``limit`` rows, page by page (keyset). Returns (rows, more_exist)."""
    rows: list[OrderRow] = []
    after = None
    more = False
    while len(rows) < limit:
        page = desk.list_orders(f, sort, limit=min(limit - len(rows), MAX_PAGE), after=after)
        rows.extend(page.rows)
        more = page.next_cursor is not None
        if not more:
            break
        after = page.next_cursor
    return rows, more


@app.command("list")
def list_(
    ctx: typer.Context,
    status: Annotated[
        str | None, typer.Option(help="Order status(es), comma-separated: pending,processing…")
    ] = None,
    pay: Annotated[str | None, typer.Option(help="Payment status(es): unpaid, paid, …")] = None,
    fulfil: Annotated[
        str | None, typer.Option(help="Fulfilment status(es): unfulfilled, fulfilled, …")
    ] = None,
    placed: Annotated[
        str | None, typer.Option(help="7d, 2w, 3m, 2026-11-03 or 2026-11-01..2026-11-30.")
    ] = None,
    customer: Annotated[str | None, typer.Option(help="Name or email fragment, or #ID.")] = None,
    country: Annotated[str | None, typer.Option(help="Shipping country code(s): DE,FR.")] = None,
    total_min: Annotated[
        str | None, typer.Option("--total-min", help="Total ≥ this (major units).")
    ] = None,
    total_max: Annotated[
        str | None, typer.Option("--total-max", help="Total ≤ this (major units).")
    ] = None,
    sku: Annotated[str | None, typer.Option(help="Orders with this SKU.")] = None,
    tag: Annotated[str | None, typer.Option(help="Orders with this tag.")] = None,
    on_hold: Annotated[
        bool | None, typer.Option("--on-hold/--not-on-hold", help="Only held / not held.")
    ] = None,
    search: Annotated[
        str | None, typer.Option(help="Free text: number, name, email, SKU, tracking.")
    ] = None,
    query: Annotated[
        str | None,
        typer.Option(
            "--query", "-q", help='The desk\'s query language: "status:pending placed:7d".'
        ),
    ] = None,
    sort: Annotated[str, typer.Option(help="placed, total or status.")] = "placed",
    asc: Annotated[
        bool, typer.Option("--asc", help="Ascending (default: newest/largest first).")
    ] = False,
    limit: Annotated[int, typer.Option(min=1, help="At most this many orders.")] = 50,
    as_json: JsonOpt = False,
    as_csv: Annotated[bool, typer.Option("--csv", help="CSV on stdout.")] = False,
) -> None:
    """List orders, newest first, filtered in the database."""
    mode = output_mode(as_json, as_csv)
    desk = state(ctx).desk()
    f = build_filter(
        desk.now(),
        query=query,
        status=status,
        pay=pay,
        fulfil=fulfil,
        placed=placed,
        customer=customer,
        country=country,
        total_min=total_min,
        total_max=total_max,
        sku=sku,
        tag=tag,
        on_hold=on_hold,
        search=search,
    )
    order_sort = Sort(sort.strip().lower(), descending=not asc)
    rows, more = fetch_rows(desk, f, order_sort, limit)
    data = [row_json(r) for r in rows]
    if mode == "json":
        print_json(data)
    elif mode == "csv":
        print_csv(data, LIST_FIELDS)
    else:
        render_table(rows)
    if not rows:
        message(f"no orders match: {f.describe()}")
    elif more:
        message(f"showing the first {len(rows)}; more match (raise --limit)")


def render_table(rows: list[OrderRow]) -> None:
    """Fixed-width columns keep their width; customer, items and hold give way."""
    con = out_console()
    narrow = con.width < 110
    cells = [
        (
            r.number,
            short_time(r.placed_at)[: 10 if narrow else 16],
            r.customer_name,
            r.items_summary,
            money(r.total, r.currency),
            r.payment_status,
            r.status,
            r.country,
            (r.hold_reason or "on hold") if r.on_hold else "",
        )
        for r in rows
    ]
    heads = ("number", "placed", "customer", "items", "total", "payment", "status", "cc", "hold")
    widths = [max([len(h), *(len(c[i]) for c in cells)]) for i, h in enumerate(heads)]
    # Share what the fixed columns leave among customer : items : hold = 2 : 3 : 1.
    flex = {2: 2, 3: 3, 8: 1}
    room = con.width - (len(heads) - 1) - sum(w for i, w in enumerate(widths) if i not in flex)
    for i, share in flex.items():
        widths[i] = min(widths[i], max(6, room * share // 6))
    t = Table(box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True, padding=(0, 1, 0, 0))
    for i, head in enumerate(heads):
        t.add_column(
            head,
            no_wrap=True,
            overflow="ellipsis",
            min_width=None if i in flex else widths[i],
            max_width=widths[i] if i in flex else None,
            justify="right" if head == "total" else "left",
        )
    for c in cells:
        t.add_row(*c)
    con.print(t)


@app.command("show")
def show(ctx: typer.Context, number: NumberArg, as_json: JsonOpt = False) -> None:
    """Everything about one order: lines, customer, payments, shipments, timeline."""
    d = state(ctx).desk().orders.detail(order_ref(number))
    if as_json:
        print_json(detail_json(d))
    else:
        render_detail(d)


def _address(a: dict[str, Any] | None) -> str:
    if not a:
        return ""
    keys = ("name", "line1", "line2", "postal_code", "city", "region", "country")
    return ", ".join(str(a[k]) for k in keys if a.get(k))


def render_detail(d: OrderDetail) -> None:
    o, cur = d.order, d.order.currency
    con = out_console()
    con.print(
        f"[bold]{o.number}[/]  {o.status} · payment {o.payment_status} · {o.fulfillment_status}"
    )
    if o.on_hold:
        con.print(f"[bold]ON HOLD[/]: {o.hold_reason}")
    if o.cancel_reason:
        con.print(f"cancel reason: {o.cancel_reason}")
    con.print(
        f"placed {short_time(o.placed_at)} UTC · updated {short_time(o.updated_at)} UTC"
        f" · version {o.version}"
    )
    con.print(f"customer #{d.customer.id}: {d.customer.name} <{d.customer.email}>")
    con.print(f"ship to: {_address(o.shipping_address)}")
    con.print(f"bill to: {_address(o.billing_address)}")
    if d.tags:
        con.print("tags: " + ", ".join(d.tags))
    lines = Table("sku", "item", "qty", "unit", "tax", "total", "fulfilled", title="Lines")
    for ln in d.lines:
        lines.add_row(
            ln.sku,
            ln.name,
            str(ln.quantity),
            money(ln.unit_price, cur),
            money(ln.tax, cur),
            money(ln.line_total, cur),
            str(ln.qty_fulfilled),
        )
    con.print(lines)
    con.print(
        "  ".join(f"{f} {money(getattr(o, f), cur)}" for f in MONEY_FIELDS if f != "total")
        + f"  [bold]total {money(o.total, cur)}[/]"
    )
    if d.payments:
        t = Table("gateway", "method", "reference", "status", "amount", "card", title="Payments")
        for p in d.payments:
            card = f"{p.card_brand or ''} •••• {p.card_last4}" if p.card_last4 else ""
            t.add_row(
                p.gateway,
                p.method,
                p.gateway_ref or "",
                p.status,
                money(p.amount, p.currency),
                card,
            )
        con.print(t)
    if d.refunds:
        t = Table("amount", "reason", "status", "by", "created", title="Refunds")
        for r in d.refunds:
            t.add_row(
                money(r.amount, r.currency),
                r.reason,
                r.status,
                r.created_by,
                short_time(r.created_at),
            )
        con.print(t)
    if d.shipments:
        t = Table("carrier", "tracking", "status", "shipped", "delivered", title="Shipments")
        for s in d.shipments:
            t.add_row(
                s.carrier,
                s.tracking_number,
                s.status,
                short_time(s.shipped_at),
                short_time(s.delivered_at),
            )
        con.print(t)
    t = Table("at (UTC)", "who", "what", "message", title="Timeline")
    for e in d.events:
        t.add_row(short_time(e.at), e.actor, e.kind, e.message)
    con.print(t)


# -- writes ------------------------------------------------------------------


def _done(order: Order, verb: str, as_json: bool) -> None:
    if as_json:
        print_json(order_json(order))
    else:
        result_line(f"{order.number} {verb}: {summary_line(order)}")


@app.command("place")
def place(
    ctx: typer.Context,
    customer: Annotated[int, typer.Option("--customer", metavar="ID", help="Customer id.")],
    line: Annotated[
        list[str], typer.Option("--line", metavar="SKU:QTY", help="A line; repeat for more.")
    ],
    currency: Annotated[str, typer.Option(help="ISO 4217 code, e.g. EUR.")],
    country: Annotated[str, typer.Option(help="Shipping country, ISO 3166 code, e.g. DE.")],
    name: Annotated[str, typer.Option(help="Ship-to name.")],
    street: Annotated[str, typer.Option(help="Ship-to street and number.")],
    city: Annotated[str, typer.Option(help="Ship-to city.")],
    postal_code: Annotated[str | None, typer.Option("--postal-code")] = None,
    region: Annotated[str | None, typer.Option()] = None,
    shipping: Annotated[str, typer.Option(help="Shipping charge in major units: 4.95.")] = "0",
    discount: Annotated[str, typer.Option(help="Order discount in major units.")] = "0",
    tax_inclusive: Annotated[
        bool, typer.Option("--tax-inclusive", help="Prices include tax.")
    ] = False,
    note: Annotated[str | None, typer.Option(help="A note for the timeline.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Place a pending, unpaid order (agents, admins); reserves stock."""
    lines = [parse_line(t) for t in line]
    ship_amt = Money.parse(shipping, currency).amount
    disc_amt = Money.parse(discount, currency).amount
    address = AddressInput(
        name=name, line1=street, city=city, country=country, postal_code=postal_code, region=region
    )
    order = (
        state(ctx)
        .desk()
        .orders.place(
            customer_id=customer,
            lines=lines,
            currency=currency,
            shipping_address=address,
            shipping=ship_amt,
            discount=disc_amt,
            tax_inclusive=tax_inclusive,
            note=note,
        )
    )
    if as_json:
        print_json(order_json(order))
    else:
        result_line(
            f"placed {order.number}: {money(order.total, order.currency)}, {summary_line(order)}"
        )


@app.command("transition")
def transition(
    ctx: typer.Context,
    number: NumberArg,
    status: Annotated[
        str, typer.Argument(metavar="STATUS", help="processing, delivered, cancelled.")
    ],
    reason: Annotated[str | None, typer.Option(help="Cancel reason code when cancelling.")] = None,
    if_version: VersionOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Move an order to STATUS through the action that owns that move."""
    order = (
        state(ctx)
        .desk()
        .orders.transition(order_ref(number), status, reason=reason, expected_version=if_version)
    )
    _done(order, f"→ {order.status}", as_json)


@app.command("pay")
def pay(
    ctx: typer.Context,
    number: NumberArg,
    gateway: Annotated[str, typer.Option(help="manual, stripe, paypal, …")] = "manual",
    method: Annotated[
        str, typer.Option(help="card, wallet, bank_transfer, crypto.")
    ] = "bank_transfer",
    reference: Annotated[str | None, typer.Option(help="Gateway reference.")] = None,
    if_version: VersionOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Confirm the order's payment (pending orders move to processing)."""
    order = (
        state(ctx)
        .desk()
        .orders.confirm_payment(
            order_ref(number),
            gateway=gateway,
            method=method,
            reference=reference,
            expected_version=if_version,
        )
    )
    _done(order, "paid", as_json)


@app.command("ship")
def ship(
    ctx: typer.Context,
    number: NumberArg,
    carrier: Annotated[str, typer.Option(help="Carrier, e.g. DHL.")],
    tracking: Annotated[str, typer.Option(help="Tracking number.")],
    if_version: VersionOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Ship every unfulfilled line (warehouse, agents, admins)."""
    order = (
        state(ctx)
        .desk()
        .orders.ship(
            order_ref(number), carrier=carrier, tracking=tracking, expected_version=if_version
        )
    )
    _done(order, "shipped", as_json)


@app.command("deliver")
def deliver(
    ctx: typer.Context, number: NumberArg, if_version: VersionOpt = None, as_json: JsonOpt = False
) -> None:
    """Mark delivered (shipped orders, or digital-only orders in processing)."""
    order = state(ctx).desk().orders.deliver(order_ref(number), expected_version=if_version)
    _done(order, "delivered", as_json)


@app.command("cancel")
def cancel(
    ctx: typer.Context,
    number: NumberArg,
    reason: Annotated[
        str,
        typer.Option(
            metavar="CODE",
            help="customer_request, out_of_stock, payment_failed, fraud, duplicate, "
            "address_invalid, other.",
        ),
    ],
    note: Annotated[str | None, typer.Option(help="Free text for the timeline.")] = None,
    if_version: VersionOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Cancel (agents, admins); releases stock, refunds what was paid (sends the
    approved refunds; above the refund limit they wait for an admin)."""
    from .refunds import refund_json, send_after_cancel  # refunds imports this module

    desk = state(ctx).desk()
    order = desk.orders.cancel(
        order_ref(number), reason=reason, note=note, expected_version=if_version
    )
    # The cancel committed its refund rows; send them now (exactly once: the
    # service claims each first). A refund that fails here does not undo the
    # cancel: it is reported, and `pulse refunds retry ID` tries again.
    refunds = send_after_cancel(desk, order.number)
    if refunds:
        order = desk.orders.detail(order.number).order  # refunded/payment status moved
    if as_json:
        print_json({**order_json(order), "refunds": [refund_json(r) for r in refunds]})
    else:
        result_line(f"{order.number} cancelled: {summary_line(order)}")


@app.command("hold")
def hold(
    ctx: typer.Context,
    number: NumberArg,
    reason: Annotated[str, typer.Option(help="Why it is held.")],
    if_version: VersionOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Put an order on hold (blocks fulfilment)."""
    order = (
        state(ctx).desk().orders.hold(order_ref(number), reason=reason, expected_version=if_version)
    )
    _done(order, "held", as_json)


@app.command("release")
def release(
    ctx: typer.Context,
    number: NumberArg,
    note: Annotated[str | None, typer.Option(help="Free text for the timeline.")] = None,
    if_version: VersionOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Release an order from hold."""
    order = (
        state(ctx).desk().orders.release(order_ref(number), note=note, expected_version=if_version)
    )
    _done(order, "released", as_json)


@app.command("note")
def note(
    ctx: typer.Context,
    number: NumberArg,
    text: Annotated[str, typer.Argument(metavar="TEXT")],
    if_version: VersionOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Add a note to the order's timeline."""
    order = state(ctx).desk().orders.add_note(order_ref(number), text, expected_version=if_version)
    _done(order, "noted", as_json)


@app.command("tag")
def tag(
    ctx: typer.Context,
    number: NumberArg,
    add: Annotated[
        list[str] | None, typer.Option("--add", metavar="TAG", help="Tag to add.")
    ] = None,
    remove: Annotated[
        list[str] | None, typer.Option("--remove", metavar="TAG", help="Tag to remove.")
    ] = None,
    if_version: VersionOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Add and/or remove tags."""
    desk = state(ctx).desk()
    order = desk.orders.tag(order_ref(number), add or [], remove or [], expected_version=if_version)
    if as_json:
        data = order_json(order)
        data["tags"] = desk.orders.detail(order.number).tags
        print_json(data)
    else:
        result_line(f"{order.number} tagged: {summary_line(order)}")
