"""`pulse refunds ...`: give money back, exactly once.

Thin door over services.refunds: the options are turned into a RefundRequest
(SKUs mapped to the order's lines through ``options()``, amounts parsed in the
order's currency) and every action is one RefundService call. Creating,
approving and retrying also *send* the refund (``execute_sync``) unless
``--no-send``; the final status decides the exit code: a refund the gateway
refused exits 1 with its reason on stderr (the JSON still on stdout).
"""

from __future__ import annotations

from dataclasses import asdict, is_dataclass
from datetime import datetime
from typing import Annotated, Any

import typer
from rich import box
from rich.table import Table

from pulse_tui.domain.money import Money
from pulse_tui.domain.refunds import (
    OPERATOR_REASONS,
    LinePick,
    Quote,
    RefundError,
    RefundStatus,
    parse_reason,
)
from pulse_tui.services.desk import Desk
from pulse_tui.services.errors import InvalidInput
from pulse_tui.services.refunds import RefundOptions, RefundRequest, RefundRow

from . import exit_codes
from .app_context import state
from .orders import JsonOpt, NumberArg, order_ref
from .output import (
    fail,
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

app = typer.Typer(
    help="Refunds: create, preview, approve, send, retry and track them.", no_args_is_help=True
)

REASONS_HELP = ", ".join(r.value for r in OPERATOR_REASONS)
STATUSES_HELP = ", ".join(s.value for s in RefundStatus)
LIST_FIELDS = (
    "id",
    "order_number",
    "amount",
    "currency",
    "amount_formatted",
    "reason",
    "status",
    "gateway",
    "gateway_ref",
    "created_by",
    "created_at",
    "updated_at",
    "approved_by",
    "failure_reason",
    "attempt",
    "return_id",
    "shipping",
    "tax",
    "note",
)

IdArg = Annotated[int, typer.Argument(metavar="ID", help="The refund's id (#12 → 12).")]
NoSendOpt = Annotated[
    bool,
    typer.Option("--no-send", help="Only record it; send later with `pulse refunds send ID`."),
]
LineOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--line",
        metavar="SKU:QTY[:restock]",
        help="Refund QTY units of the order's SKU line (`:restock` puts them back in stock); "
        "repeat for more.",
    ),
]
AmountOpt = Annotated[
    str | None,
    typer.Option(
        "--amount",
        metavar="X",
        help="A free amount in the order's currency (12.50); not with --line/--shipping.",
    ),
]
ShippingOpt = Annotated[
    bool, typer.Option("--shipping", help="Include the shipping not yet refunded.")
]
PaymentOpt = Annotated[
    int | None,
    typer.Option(
        "--payment", metavar="ID", help="Which payment to refund (when the order has several)."
    ),
]
ReasonOpt = Annotated[str, typer.Option("--reason", metavar="R", help=f"One of: {REASONS_HELP}.")]
NoteOpt = Annotated[str | None, typer.Option("--note", help="Free text for the timeline.")]


# -- parsing -------------------------------------------------------------------


def parse_pick(text: str, opts: RefundOptions) -> LinePick:
    """``SKU:QTY[:restock]`` → a LinePick on the order's line with that SKU."""
    parts = [p.strip() for p in text.split(":")]
    restock = False
    if len(parts) == 3 and parts[2].lower() == "restock":
        restock = True
        parts = parts[:2]
    if len(parts) != 2 or not parts[0]:
        raise InvalidInput(f"bad --line {text!r}: use SKU:QTY or SKU:QTY:restock, e.g. MUG-BLUE:1")
    sku = parts[0].upper()
    try:
        quantity = int(parts[1])
    except ValueError:
        raise InvalidInput(f"bad --line {text!r}: quantity must be a whole number") from None
    if quantity < 1:
        raise InvalidInput(f"bad --line {text!r}: quantity must be at least 1")
    candidates = [ln for ln in opts.lines if ln.sku.upper() == sku]
    if not candidates:
        skus = ", ".join(ln.sku for ln in opts.lines) or "none"
        raise InvalidInput(f"{opts.number} has no line {sku} (its lines: {skus})")
    # The same SKU twice on one order: the first line that still has the units.
    line = next((ln for ln in candidates if ln.refundable >= quantity), candidates[0])
    return LinePick(line.line_id, quantity, restock)


def parse_amount(text: str, currency: str) -> int:
    amount = Money.parse(text, currency).amount  # MoneyError → exit 2
    if amount <= 0:
        raise InvalidInput(f"bad --amount {text!r}: must be more than zero")
    return amount


def checked_reason(text: str, opts: RefundOptions) -> str:
    """One of the reasons the service offers an operator (the cancel and return
    flows set their own)."""
    try:
        reason = parse_reason(text)
    except RefundError as exc:
        raise InvalidInput(str(exc)) from None
    if reason not in opts.reasons:
        allowed = ", ".join(r.value for r in opts.reasons)
        raise InvalidInput(f"refund reason {reason.value!r} is set by the desk (one of: {allowed})")
    return reason.value


def build_request(
    opts: RefundOptions,
    *,
    reason: str,
    amount: str | None,
    lines: list[str] | None,
    shipping: bool,
    payment: int | None,
    note: str | None,
) -> RefundRequest:
    if amount is not None and (lines or shipping):
        raise InvalidInput("give either --amount or --line/--shipping, not both")
    if amount is None and not lines and not shipping:
        raise InvalidInput("choose what to refund: --amount X, or --line SKU:QTY and/or --shipping")
    return RefundRequest(
        reason=checked_reason(reason, opts),
        lines=[parse_pick(t, opts) for t in lines or []],
        include_shipping=shipping,
        amount=parse_amount(amount, opts.currency) if amount is not None else None,
        payment_id=payment,
        note=note,
    )


# -- serialising ---------------------------------------------------------------


def refund_json(r: RefundRow) -> dict[str, Any]:
    cur = r.currency
    return {
        "id": r.id,
        "order_number": r.order_number,
        "order_id": r.order_id,
        "amount": r.amount,
        "currency": cur,
        "amount_formatted": money(r.amount, cur),
        "reason": r.reason,
        "status": r.status,
        "gateway": r.gateway,
        "gateway_ref": r.gateway_ref,
        "created_by": r.created_by,
        "created_at": iso(r.created_at),
        "updated_at": iso(r.updated_at),
        "approved_by": r.approved_by,
        "failure_reason": r.failure_reason,
        "attempt": r.attempt,
        "return_id": r.return_id,
        "lines": [
            {**ln, "amount_formatted": money(int(ln.get("amount", 0)), cur)} for ln in r.lines
        ],
        "shipping": r.shipping,
        "tax": r.tax,
        "note": r.note,
    }


def quote_json(number: str, currency: str, q: Quote) -> dict[str, Any]:
    after = q.refundable - q.amount
    return {
        "order_number": number,
        "currency": currency,
        "amount": q.amount,
        "amount_formatted": money(q.amount, currency),
        "tax": q.tax,
        "tax_formatted": money(q.tax, currency),
        "shipping": q.shipping,
        "shipping_formatted": money(q.shipping, currency),
        "lines": [
            {
                "line_id": ln.line_id,
                "sku": ln.sku,
                "quantity": ln.quantity,
                "amount": ln.amount,
                "amount_formatted": money(ln.amount, currency),
                "tax": ln.tax,
                "restock": ln.restock,
            }
            for ln in q.lines
        ],
        "refundable": q.refundable,
        "refundable_formatted": money(q.refundable, currency),
        "refundable_after": after,
        "refundable_after_formatted": money(after, currency),
    }


def plain(value: Any) -> Any:
    """Dataclass rows (returns) → JSON-ready dicts, datetimes as ISO 8601 UTC."""
    if is_dataclass(value) and not isinstance(value, type):
        value = asdict(value)
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, datetime):
        return iso(value)
    return value


# -- sending and saying what happened ----------------------------------------------


def status_text(r: RefundRow) -> str:
    if r.status == RefundStatus.FAILED:
        return f"failed: {r.failure_reason or 'no reason given'}"
    if r.status == RefundStatus.REQUESTED:
        return "requested: waits for an admin's approval"
    if r.status == RefundStatus.PENDING:
        why = f" ({r.failure_reason})" if r.failure_reason else ""
        return f"pending at {r.gateway or 'the gateway'}{why}"
    return r.status


def send(desk: Desk, refund_id: int) -> RefundRow:
    """Execute an approved refund (exactly once: the service claims it first)."""
    desk.refunds.execute_sync(refund_id)
    return desk.refunds.get(refund_id)


def settle(desk: Desk, refund_id: int, *, no_send: bool) -> RefundRow:
    """Send the refund when it may go now (approved) and the caller wants it."""
    row = desk.refunds.get(refund_id)
    if row.status == RefundStatus.APPROVED and not no_send:
        row = send(desk, refund_id)
    return row


def hints(r: RefundRow) -> None:
    """What an operator does next, on stderr."""
    if r.status == RefundStatus.REQUESTED:
        message(f"refund #{r.id} waits for an admin's approval: pulse refunds approve {r.id}")
    elif r.status == RefundStatus.APPROVED:
        message(f"refund #{r.id} is approved, not sent: pulse refunds send {r.id}")
    elif r.status == RefundStatus.PENDING:
        message(
            f"refund #{r.id} is pending at {r.gateway or 'the gateway'}: "
            "the payment sync settles it (pulse sync --once)"
        )


def report(r: RefundRow, as_json: bool, verb: str | None = None) -> None:
    """The refund on stdout; a refund the gateway refused exits 1 with why."""
    if as_json:
        print_json(refund_json(r))
    else:
        head = f"refund #{r.id} of {money(r.amount, r.currency)} on {r.order_number}"
        result_line(f"{head}{' ' + verb if verb else ''}: {status_text(r)}")
    if r.status == RefundStatus.FAILED:
        fail(
            f"refund #{r.id} failed: {r.failure_reason or 'no reason given'}"
            f" (pulse refunds retry {r.id})",
            exit_codes.FAILED,
        )
    hints(r)


# -- commands ------------------------------------------------------------------


@app.command("create")
def create(
    ctx: typer.Context,
    number: NumberArg,
    reason: ReasonOpt,
    amount: AmountOpt = None,
    line: LineOpt = None,
    shipping: ShippingOpt = False,
    payment: PaymentOpt = None,
    note: NoteOpt = None,
    approve: Annotated[
        bool, typer.Option("--approve", help="Admins: approve above the limit at once.")
    ] = False,
    key: Annotated[
        str | None,
        typer.Option(
            "--key",
            metavar="KEY",
            help="Idempotency key: running again with the same key makes no second refund.",
        ),
    ] = None,
    no_send: NoSendOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Refund lines (+ shipping) or a free amount, then send it (agents, admins)."""
    desk = state(ctx).desk()
    opts = desk.refunds.options(order_ref(number))
    request = build_request(
        opts,
        reason=reason,
        amount=amount,
        lines=line,
        shipping=shipping,
        payment=payment,
        note=note,
    )
    refund = desk.refunds.create(opts.number, request, approve=approve, idempotency_key=key)
    report(settle(desk, int(refund.id or 0), no_send=no_send), as_json)


@app.command("preview")
def preview(
    ctx: typer.Context,
    number: NumberArg,
    amount: AmountOpt = None,
    line: LineOpt = None,
    shipping: ShippingOpt = False,
    payment: PaymentOpt = None,
    reason: Annotated[
        str, typer.Option("--reason", metavar="R", help="As for create (default other).")
    ] = "other",
    as_json: JsonOpt = False,
) -> None:
    """What a refund would give back (lines, tax share, shipping); writes nothing."""
    desk = state(ctx).desk()
    opts = desk.refunds.options(order_ref(number))
    request = build_request(
        opts,
        reason=reason,
        amount=amount,
        lines=line,
        shipping=shipping,
        payment=payment,
        note=None,
    )
    q = desk.refunds.preview(opts.number, request)
    if as_json:
        print_json(quote_json(opts.number, opts.currency, q))
        return
    cur = opts.currency
    con = out_console()
    if q.lines:
        t = Table("sku", "qty", "amount", "tax share", "restock", box=box.SIMPLE_HEAD)
        for ln in q.lines:
            t.add_row(
                ln.sku,
                str(ln.quantity),
                money(ln.amount, cur),
                money(ln.tax, cur),
                "yes" if ln.restock else "",
            )
        con.print(t)
    con.print(f"shipping     {money(q.shipping, cur)}")
    con.print(f"tax share    {money(q.tax, cur)} (included)")
    con.print(f"[bold]refund total {money(q.amount, cur)}[/]")
    con.print(
        f"refundable   {money(q.refundable, cur)} now, "
        f"{money(q.refundable - q.amount, cur)} after this refund"
    )
    if q.amount > opts.limit and not opts.may_approve:
        message(f"above the {money(opts.limit, cur)} limit: it would wait for an admin's approval")


@app.command("list")
def list_(
    ctx: typer.Context,
    status: Annotated[
        str | None, typer.Option("--status", metavar="S", help=f"One of: {STATUSES_HELP}.")
    ] = None,
    number: Annotated[
        str | None, typer.Option("--order", metavar="NUMBER", help="Refunds of this order.")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many refunds.")] = 50,
    as_json: JsonOpt = False,
    as_csv: Annotated[bool, typer.Option("--csv", help="CSV on stdout.")] = False,
) -> None:
    """Refunds across orders: failed and waiting-for-approval first, then newest."""
    mode = output_mode(as_json, as_csv)
    desk = state(ctx).desk()
    st = status.strip().lower() if status is not None else None
    rows = desk.refunds.list_refunds(
        status=st, order_ref=order_ref(number) if number else None, limit=limit + 1
    )
    more = len(rows) > limit
    rows = rows[:limit]
    data = [refund_json(r) for r in rows]
    if mode == "json":
        print_json(data)
    elif mode == "csv":
        print_csv(data, LIST_FIELDS)
    else:
        render_table(rows)
    if not rows:
        message("no refunds match")
    elif more:
        message(f"showing the first {len(rows)}; more match (raise --limit)")


def render_table(rows: list[RefundRow]) -> None:
    t = Table(
        "id",
        "order",
        "amount",
        "reason",
        "status",
        "gateway",
        "created",
        "by",
        "why",
        box=box.SIMPLE_HEAD,
    )
    for r in rows:
        t.add_row(
            f"#{r.id}",
            r.order_number,
            money(r.amount, r.currency),
            r.reason,
            r.status,
            r.gateway or "",
            short_time(r.created_at),
            r.created_by,
            r.failure_reason or "",
            style={"failed": "red", "requested": "yellow"}.get(r.status, ""),
        )
    out_console().print(t)


@app.command("show")
def show(ctx: typer.Context, refund_id: IdArg, as_json: JsonOpt = False) -> None:
    """One refund: amount, lines, status, who asked and who approved."""
    r = state(ctx).desk().refunds.get(refund_id)
    if as_json:
        print_json(refund_json(r))
        return
    con = out_console()
    cur = r.currency
    con.print(
        f"[bold]refund #{r.id}[/] of {money(r.amount, cur)} on {r.order_number}: {status_text(r)}"
    )
    con.print(
        f"reason {r.reason} · attempt {r.attempt}"
        + (f" · return #{r.return_id}" if r.return_id else "")
    )
    con.print(
        f"payment via {r.gateway or '-'}"
        + (f" · gateway ref {r.gateway_ref}" if r.gateway_ref else "")
    )
    con.print(
        f"created {short_time(r.created_at)} UTC by {r.created_by}"
        + (f" · approved by {r.approved_by}" if r.approved_by else "")
        + f" · updated {short_time(r.updated_at)} UTC"
    )
    if r.lines:
        t = Table("sku", "qty", "amount", "tax share", "restock", box=box.SIMPLE_HEAD)
        for ln in r.lines:
            t.add_row(
                str(ln.get("sku", "")),
                str(ln.get("quantity", "")),
                money(int(ln.get("amount", 0)), cur),
                money(int(ln.get("tax", 0)), cur),
                "yes" if ln.get("restock") else "",
            )
        con.print(t)
    if r.shipping:
        con.print(f"shipping {money(r.shipping, cur)}")
    if r.tax:
        con.print(f"tax share {money(r.tax, cur)} (included)")
    if r.note:
        con.print(f"note: {r.note}")


@app.command("approve")
def approve(
    ctx: typer.Context, refund_id: IdArg, no_send: NoSendOpt = False, as_json: JsonOpt = False
) -> None:
    """Admins: approve a refund waiting above the limit, then send it."""
    desk = state(ctx).desk()
    desk.refunds.approve(refund_id)
    report(settle(desk, refund_id, no_send=no_send), as_json, "approved")


@app.command("retry")
def retry(
    ctx: typer.Context, refund_id: IdArg, no_send: NoSendOpt = False, as_json: JsonOpt = False
) -> None:
    """A failed refund as a new attempt, sent again (agents, admins)."""
    desk = state(ctx).desk()
    desk.refunds.retry(refund_id)
    report(settle(desk, refund_id, no_send=no_send), as_json, "retried")


@app.command("send")
def send_cmd(ctx: typer.Context, refund_id: IdArg, as_json: JsonOpt = False) -> None:
    """Send an approved refund to its gateway (exactly once; agents, admins)."""
    desk = state(ctx).desk()
    report(send(desk, refund_id), as_json)


@app.command("cancel")
def cancel(
    ctx: typer.Context, refund_id: IdArg, note: NoteOpt = None, as_json: JsonOpt = False
) -> None:
    """Withdraw a refund not yet sent (requested, approved or failed)."""
    desk = state(ctx).desk()
    desk.refunds.cancel(refund_id, note)
    report(desk.refunds.get(refund_id), as_json, "cancelled")


# -- the cancel path (pulse orders cancel) ---------------------------------------------


def send_after_cancel(desk: Desk, number: str) -> list[RefundRow]:
    """Send the approved refunds of a cancelled order (what the cancel just
    created; the payment sync's recovery catches anything left) and report
    those waiting for an approval. Says what happened on stderr."""
    done: list[RefundRow] = []
    for r in desk.refunds.list_refunds(order_ref=number, status=RefundStatus.APPROVED.value):
        done.append(send(desk, r.id))
    done.extend(
        r
        for r in desk.refunds.list_refunds(order_ref=number, status=RefundStatus.REQUESTED.value)
        if r.reason == "order_cancelled"
    )
    follow = {
        RefundStatus.FAILED: "pulse refunds retry {id}",
        RefundStatus.REQUESTED: "pulse refunds approve {id}",
        RefundStatus.APPROVED: "pulse refunds send {id}",
        RefundStatus.PENDING: "the payment sync settles it",
    }
    for r in done:
        nxt = follow.get(RefundStatus(r.status))
        message(
            f"refund #{r.id} of {money(r.amount, r.currency)}: {status_text(r)}"
            + (f" ({nxt.format(id=r.id)})" if nxt else "")
        )
    return sorted(done, key=lambda r: r.id)


__all__ = ["app", "parse_pick", "plain", "refund_json", "report", "send_after_cancel", "settle"]
