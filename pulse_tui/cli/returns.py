"""`pulse returns ...`: return authorisations (RMA), step by step.

    request → authorize | reject → receive → refund | exchange

Thin door over services.returns (imported when a command runs): each step is
one ReturnService call; the service checks the role and the step's rule.
``refund`` sends the refund it makes (unless ``--no-send``), like
``pulse refunds create``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich import box
from rich.table import Table

from pulse_tui.domain.refunds import OPERATOR_REASONS, Condition, ReturnStatus
from pulse_tui.services.desk import Desk
from pulse_tui.services.errors import InvalidInput

from .app_context import state
from .orders import JsonOpt, NumberArg, order_ref
from .output import (
    message,
    money,
    out_console,
    output_mode,
    print_csv,
    print_json,
    result_line,
    short_time,
)
from .refunds import NoSendOpt, PaymentOpt, ShippingOpt, plain, report, settle

if TYPE_CHECKING:
    from pulse_tui.services.returns import ReturnRow

app = typer.Typer(
    help="Returns (RMA): request, authorize or reject, receive, refund or exchange.",
    no_args_is_help=True,
)

REASONS_HELP = ", ".join(r.value for r in OPERATOR_REASONS)
STATUSES_HELP = ", ".join(s.value for s in ReturnStatus)
CONDITIONS = ", ".join(c.value for c in Condition)
LIST_FIELDS = (
    "id",
    "order_number",
    "status",
    "reason",
    "items",
    "note",
    "created_by",
    "created_at",
    "updated_at",
    "decided_by",
    "decision_note",
    "received_by",
    "refund_id",
    "exchange_order_number",
)

IdArg = Annotated[int, typer.Argument(metavar="ID", help="The return's id (#3 → 3).")]
LinesOpt = Annotated[
    list[str],
    typer.Option("--line", metavar="SKU:QTY", help="A line and quantity; repeat for more."),
]


# -- parsing -------------------------------------------------------------------


def _sku_qty(text: str, opt: str, parts: list[str]) -> tuple[str, int]:
    if not parts[0].strip():
        raise InvalidInput(f"bad {opt} {text!r}: the SKU is missing")
    try:
        qty = int(parts[1].strip())
    except ValueError:
        raise InvalidInput(f"bad {opt} {text!r}: quantity must be a whole number") from None
    return parts[0].strip().upper(), qty


def parse_sku_qty(text: str, opt: str = "--line") -> tuple[str, int]:
    """``SKU:QTY`` → (SKU, QTY); the service checks the SKU and the quantity."""
    parts = text.split(":")
    if len(parts) != 2:
        raise InvalidInput(f"bad {opt} {text!r}: use SKU:QTY, e.g. MUG-BLUE:1")
    return _sku_qty(text, opt, parts)


def parse_item(text: str) -> tuple[str, int, str]:
    """``SKU:QTY:CONDITION`` → (SKU, QTY, condition); the service checks the condition."""
    parts = text.split(":")
    if len(parts) != 3:
        raise InvalidInput(
            f"bad --item {text!r}: use SKU:QTY:CONDITION, e.g. MUG-BLUE:1:resellable"
        )
    sku, qty = _sku_qty(text, "--item", parts)
    return sku, qty, parts[2].strip().lower()


# -- serialising ---------------------------------------------------------------


def return_json(r: ReturnRow) -> dict[str, Any]:
    return plain(r)  # type: ignore[no-any-return]


def items_text(r: ReturnRow) -> str:
    parts = []
    for ln in r.lines:
        got = ln.get("received")
        extra = f" (received {got}{', ' + ln['condition'] if ln.get('condition') else ''})"
        parts.append(f"{ln.get('quantity')} × {ln.get('sku')}" + (extra if got else ""))
    return ", ".join(parts)


def _done(r: ReturnRow, as_json: bool) -> None:
    if as_json:
        print_json(return_json(r))
    else:
        result_line(f"return #{r.id} on {r.order_number}: {r.status} ({items_text(r)})")


# -- commands ------------------------------------------------------------------


@app.command("request")
def request(
    ctx: typer.Context,
    number: NumberArg,
    line: LinesOpt,
    reason: Annotated[str, typer.Option("--reason", metavar="R", help=f"One of: {REASONS_HELP}.")],
    note: Annotated[str | None, typer.Option("--note", help="Free text for the timeline.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Ask goods back from a shipped order (agents, admins)."""
    from pulse_tui.services.returns import ReturnPick

    picks = [parse_sku_qty(t) for t in line]
    r = (
        state(ctx)
        .desk()
        .returns.request(
            order_ref(number),
            [ReturnPick(sku, qty) for sku, qty in picks],
            reason,
            note=note,
        )
    )
    _done(r, as_json)
    if not as_json:
        message(f"next: pulse returns authorize {r.id}  (or reject {r.id} --note TEXT)")


@app.command("authorize")
def authorize(
    ctx: typer.Context,
    return_id: IdArg,
    note: Annotated[str | None, typer.Option("--note", help="Free text for the timeline.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Authorise a requested return: the customer may send the goods."""
    r = state(ctx).desk().returns.authorize(return_id, note=note)
    _done(r, as_json)


@app.command("reject")
def reject(
    ctx: typer.Context,
    return_id: IdArg,
    note: Annotated[str, typer.Option("--note", help="Why (required; goes on the timeline).")],
    as_json: JsonOpt = False,
) -> None:
    """Reject a requested return, saying why."""
    if not note.strip():
        raise InvalidInput("a rejection needs a --note saying why")
    r = state(ctx).desk().returns.reject(return_id, note)
    _done(r, as_json)


@app.command("receive")
def receive(
    ctx: typer.Context,
    return_id: IdArg,
    item: Annotated[
        list[str],
        typer.Option(
            "--item",
            metavar="SKU:QTY:CONDITION",
            help=f"Units received and their condition ({CONDITIONS}; resellable units go "
            "back to stock); repeat for more.",
        ),
    ],
    as_json: JsonOpt = False,
) -> None:
    """Record the goods that came back (warehouse, agents, admins)."""
    from pulse_tui.services.returns import ReceivedItem

    items = [parse_item(t) for t in item]
    r = (
        state(ctx)
        .desk()
        .returns.receive(return_id, [ReceivedItem(sku, qty, cond) for sku, qty, cond in items])
    )
    _done(r, as_json)


@app.command("refund")
def refund(
    ctx: typer.Context,
    return_id: IdArg,
    shipping: ShippingOpt = False,
    payment: PaymentOpt = None,
    approve: Annotated[
        bool, typer.Option("--approve", help="Admins: approve above the limit at once.")
    ] = False,
    no_send: NoSendOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Refund the received units (reason "return"), then send the refund."""
    desk = state(ctx).desk()
    made = desk.returns.refund(
        return_id, include_shipping=shipping, payment_id=payment, approve=approve
    )
    message(f"return #{return_id} refunded by refund #{made.id}")
    report(settle(desk, int(made.id or 0), no_send=no_send), as_json)


@app.command("exchange")
def exchange(
    ctx: typer.Context,
    return_id: IdArg,
    line: LinesOpt,
    payment: PaymentOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Replace the received units with these lines: a new order with the
    returned value as credit; the difference is owed or refunded."""
    picks = [parse_sku_qty(t) for t in line]
    desk = state(ctx).desk()
    res = desk.returns.exchange(return_id, picks, payment_id=payment)
    cur = res.currency or _currency(desk, res.ret.order_number)
    if as_json:
        print_json(
            {
                "return": return_json(res.ret),
                "order_number": res.order_number,
                "difference": res.difference,
                "currency": cur,
                "difference_formatted": money(abs(res.difference), cur),
                "refund_id": res.refund_id,
            }
        )
    else:
        amt = money(abs(res.difference), cur)
        if res.difference > 0:
            owed = f"the customer owes {amt}"
        elif res.difference < 0:
            owed = f"{amt} is refunded" + (f" (refund #{res.refund_id})" if res.refund_id else "")
        else:
            owed = "nothing is due either way"
        result_line(f"return #{res.ret.id} exchanged: new order {res.order_number}; {owed}")
    if res.refund_id is not None:
        row = settle(desk, res.refund_id, no_send=False)
        message(f"refund #{row.id} of {money(row.amount, row.currency)}: {row.status}")


def _currency(desk: Desk, number: str) -> str:
    return desk.orders.detail(number).order.currency


@app.command("list")
def list_(
    ctx: typer.Context,
    status: Annotated[
        str | None, typer.Option("--status", metavar="S", help=f"One of: {STATUSES_HELP}.")
    ] = None,
    number: Annotated[
        str | None, typer.Option("--order", metavar="NUMBER", help="Returns of this order.")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many returns.")] = 50,
    as_json: JsonOpt = False,
    as_csv: Annotated[bool, typer.Option("--csv", help="CSV on stdout.")] = False,
) -> None:
    """Return authorisations, newest first."""
    mode = output_mode(as_json, as_csv)
    st = status.strip().lower() if status is not None else None
    if st is not None and st not in {s.value for s in ReturnStatus}:
        raise InvalidInput(f"unknown return status {status!r} (one of: {STATUSES_HELP})")
    rows = (
        state(ctx)
        .desk()
        .returns.list_returns(
            status=st, order_ref=order_ref(number) if number else None, limit=limit + 1
        )
    )
    more = len(rows) > limit
    rows = rows[:limit]
    if mode == "json":
        print_json([return_json(r) for r in rows])
    elif mode == "csv":
        print_csv([{**return_json(r), "items": items_text(r)} for r in rows], LIST_FIELDS)
    else:
        t = Table("id", "order", "status", "reason", "items", "created", "by", box=box.SIMPLE_HEAD)
        for r in rows:
            t.add_row(
                f"#{r.id}",
                r.order_number,
                r.status,
                r.reason,
                items_text(r),
                short_time(r.created_at),
                r.created_by,
            )
        out_console().print(t)
    if not rows:
        message("no returns match")
    elif more:
        message(f"showing the first {len(rows)}; more match (raise --limit)")


@app.command("show")
def show(ctx: typer.Context, return_id: IdArg, as_json: JsonOpt = False) -> None:
    """One return: lines, what was received, who decided, its refund or exchange."""
    r = state(ctx).desk().returns.get(return_id)
    if as_json:
        print_json(return_json(r))
        return
    con = out_console()
    con.print(f"[bold]return #{r.id}[/] on {r.order_number}: {r.status} · reason {r.reason}")
    con.print(f"requested {short_time(r.created_at)} UTC by {r.created_by}")
    if r.note:
        con.print(f"note: {r.note}")
    if r.decided_by:
        con.print(
            f"decided by {r.decided_by}" + (f": {r.decision_note}" if r.decision_note else "")
        )
    if r.received_by:
        con.print(f"received by {r.received_by}")
    t = Table("sku", "asked", "received", "condition", box=box.SIMPLE_HEAD)
    for ln in r.lines:
        t.add_row(
            str(ln.get("sku", "")),
            str(ln.get("quantity", "")),
            str(ln.get("received") or ""),
            str(ln.get("condition") or ""),
        )
    con.print(t)
    if r.refund_id:
        con.print(f"refund #{r.refund_id} (pulse refunds show {r.refund_id})")
    if r.exchange_order_number:
        con.print(f"exchange order {r.exchange_order_number}")
