"""The order detail's panels: summary header, lines, customer, payments, shipments.

Each panel renders an ``OrderDetail`` (storage.queries) handed to ``show``; they
hold no state of their own and never query anything. Colours come from theme
variables only (see themes/detail.tcss and widgets/status_badge.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from rich import box
from rich.table import Table
from textual._resolve import resolve
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.content import Content
from textual.css.scalar import Scalar
from textual.markup import escape
from textual.strip import Strip
from textual.visual import RenderOptions, RichVisual
from textual.widget import Widget
from textual.widgets import Static

from pulse_tui.domain.status import PaymentStatus, awaiting_payment
from pulse_tui.services.orders import state_of
from pulse_tui.storage.models import Payment, Refund
from pulse_tui.storage.queries import OrderDetail
from pulse_tui.widgets.formatting import absolute_time, money, relative_time
from pulse_tui.widgets.status_badge import badge_markup

MUTED = "$foreground-muted"
FR = Scalar.parse("1fr")

# refund / return status -> theme variable (content markup and table cells)
REFUND_STYLE: dict[str, str] = {
    "requested": "warning",
    "approved": "accent",
    "pending": "accent",
    "succeeded": "success",
    "failed": "error",
    "cancelled": "foreground-muted",
}
RETURN_STYLE: dict[str, str] = {
    "requested": "warning",
    "authorized": "accent",
    "rejected": "foreground-muted",
    "received": "primary",
    "refunded": "success",
    "exchanged": "success",
}


def refund_badge(status: str) -> str:
    """'[b $error]failed[/]' — a refund's status, coloured by the theme."""
    return f"[b ${REFUND_STYLE.get(status, 'foreground')}]{escape(status)}[/]"


def return_badge(status: str) -> str:
    return f"[b ${RETURN_STYLE.get(status, 'foreground')}]{escape(status)}[/]"


def email_counts(emails: Sequence[Any]) -> str:
    """'3 sent, 1 failed' for an order's emails, failures in the error colour."""
    counts: dict[str, int] = {}
    for n in emails:
        counts[str(n.status)] = counts.get(str(n.status), 0) + 1
    order = ["sent", "queued", "sending", "failed", "skipped"]
    order += sorted(k for k in counts if k not in order)
    parts = []
    for status in order:
        if counts.get(status):
            text = escape(f"{counts[status]} {status}")
            parts.append(f"[b $error]{text}[/]" if status == "failed" else text)
    return ", ".join(parts)


def when(dt: datetime | None, now: datetime) -> str:
    """'3d ago (2026-11-23 14:05)', or an em dash when there is no time."""
    if dt is None:
        return "—"
    return f"{relative_time(dt, now)} ({absolute_time(dt)})"


def address_line(addr: Mapping[str, Any] | None) -> str:
    """One line from an order's address snapshot (name, street, city, country)."""
    if not addr:
        return "—"
    city = " ".join(p for p in (addr.get("postal_code"), addr.get("city")) if p)
    parts = [
        addr.get("name"),
        addr.get("line1"),
        addr.get("line2"),
        city,
        addr.get("region"),
        addr.get("country"),
    ]
    return ", ".join(str(p) for p in parts if p)


def _pairs(items: Iterable[tuple[str, str]]) -> str:
    return "  ".join(f"[{MUTED}]{escape(k)}[/] {escape(v)}" for k, v in items if v)


class Panel(Vertical):
    """A titled block (the title sits on the top border, costing one row)."""

    TITLE = ""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.border_title = self.TITLE
        self.add_class("detail-panel", update=False)  # not mounted yet: nothing to restyle

    def compose(self) -> ComposeResult:
        yield Static("", classes="panel-body")

    @property
    def body(self) -> Static:
        return self.query_one(".panel-body", Static)


class TotalsRow(Widget):
    """The order's seven totals, label over amount, in seven equal columns.

    One widget where a Grid of seven Statics used to be (eight widgets fewer
    to mount, style, lay out and render on every open), drawn the way that
    Grid drew them: seven 1fr columns one cell apart (Textual's own column
    arithmetic), each cell's markup wrapped and folded to its column as a
    Static would, two lines tall.
    """

    GUTTER = 1

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._cells: dict[str, Content] = {}

    def set_cells(self, cells: dict[str, str]) -> None:
        """Markup per column, in order (``name -> "label\namount"``)."""
        self._cells = {name: Content.from_markup(markup) for name, markup in cells.items()}
        self.refresh()

    def cell(self, name: str) -> str:
        """The plain text of one cell (label and amount)."""
        cell = self._cells.get(name)
        return cell.plain if cell is not None else ""

    def render(self) -> Content:
        width, height = self.size
        if not self._cells or width <= 0:
            return Content("")
        columns = resolve([FR] * len(self._cells), width, self.GUTTER, self.size, self.size)
        rows: list[list[Content]] = [[] for _ in range(height)]
        # a cell's unused width and the gutters are left unstyled; after the
        # last text of a line the widget pads, as Textual pads each Static
        ends = [0] * height
        for (offset, column_width), cell in zip(columns, self._cells.values(), strict=False):
            lines = cell.wrap(column_width) if column_width > 0 else []
            for y, row in enumerate(rows):
                if y < len(lines) and lines[y].cell_length:
                    row.append(Content(" " * (offset - ends[y])))
                    row.append(lines[y])
                    ends[y] = offset + lines[y].cell_length
        return Content("\n").join(Content("").join(row) for row in rows)


class SummaryHeader(Vertical):
    """Number, badges, hold reason, customer, placed time, tags and totals."""

    TOTALS = ("subtotal", "discount", "shipping", "tax", "total", "paid", "refunded")

    def compose(self) -> ComposeResult:
        yield Static("", id="summary-title")
        yield Static("", id="summary-hold", classes="hold-banner")
        yield Static("", id="summary-meta")
        yield TotalsRow(id="summary-totals")

    def show(self, d: OrderDetail, now: datetime) -> None:
        o = d.order
        badges = [
            badge_markup("status", o.status),
            badge_markup("pay", o.payment_status),
            badge_markup("fulfil", o.fulfillment_status),
        ]
        if o.on_hold:
            badges.append(badge_markup("hold", "on_hold"))
        self.query_one("#summary-title", Static).update(
            f"[b]{escape(o.number)}[/]  " + "  ".join(badges)
        )
        hold = self.query_one("#summary-hold", Static)
        hold.display = bool(o.on_hold)
        hold.update(f"[b]ON HOLD[/] — {escape(o.hold_reason or 'no reason given')}")
        meta = [
            ("Customer", d.customer.name),
            ("placed", when(o.placed_at, now)),
        ]
        if o.cancel_reason:
            meta.append(("cancel reason", o.cancel_reason.replace("_", " ")))
        meta.append(("tags", ", ".join(d.tags) if d.tags else "none"))
        self.query_one("#summary-meta", Static).update(_pairs(meta))
        self.query_one(TotalsRow).set_cells(
            {
                name: f"[{MUTED}]{name.capitalize()}[/]\n"
                f"[b]{escape(money(getattr(o, name), o.currency))}[/]"
                for name in self.TOTALS
            }
        )


class RenderedOnce(RichVisual):
    """A Rich renderable (the lines table) rendered once per width.

    Textual renders a Static's Rich renderable again for every layout pass
    (its height) and every repaint (its lines), three or four times while the
    detail opens; a Rich Table is the dearest thing on the screen to render.
    The result only depends on the width (and the base style), so keep it.
    """

    def __init__(self, widget: Any, renderable: Any) -> None:
        super().__init__(widget, renderable)
        self._heights: dict[int, int] = {}
        self._strips: dict[tuple[int, int | None, Any], list[Strip]] = {}

    def __rich__(self) -> Any:
        return self._renderable  # printable as the table itself (tests, exports)

    def get_height(self, rules: Any, width: int) -> int:
        if width not in self._heights:
            self._heights[width] = super().get_height(rules, width)
        return self._heights[width]

    def render_strips(
        self, width: int, height: int | None, style: Any, options: RenderOptions
    ) -> list[Strip]:
        key = (width, height, style)
        if key not in self._strips:
            self._strips[key] = super().render_strips(width, height, style, options)
        return self._strips[key]


class LinesPanel(Panel):
    TITLE = "Lines"

    def show(self, d: OrderDetail, now: datetime) -> None:
        cur = d.order.currency
        table = Table(
            box=box.SIMPLE_HEAD,
            expand=True,
            show_edge=False,
            pad_edge=False,
            header_style="bold",
            padding=(0, 1),
        )
        table.add_column("SKU", no_wrap=True)
        table.add_column("Name", ratio=1)
        table.add_column("Qty", justify="right", no_wrap=True)
        table.add_column("Unit", justify="right", no_wrap=True)
        table.add_column("Tax", justify="right", no_wrap=True)
        table.add_column("Total", justify="right", no_wrap=True)
        table.add_column("Ful/Ret/Ref", justify="right", no_wrap=True)
        for ln in d.lines:
            table.add_row(
                ln.sku,
                ln.name,
                str(ln.quantity),
                money(ln.unit_price, cur),
                money(ln.tax, cur),
                money(ln.line_total, cur),
                f"{ln.qty_fulfilled}/{ln.qty_returned}/{ln.qty_refunded}",
            )
        body = self.body
        body.update(RenderedOnce(body, table) if d.lines else "No lines.")


class CustomerPanel(Panel):
    TITLE = "Customer"

    def show(self, d: OrderDetail, now: datetime, *, emails: Sequence[Any] = ()) -> None:
        c = d.customer
        o = d.order
        rows = [
            f"[b]{escape(c.name)}[/]" + (f"  ({escape(c.company)})" if c.company else ""),
            _pairs([("email", c.email)]),
            _pairs([("phone", c.phone or "—")]),
            _pairs([("Billing", address_line(o.billing_address))]),
            _pairs([("Shipping", address_line(o.shipping_address))]),
        ]
        if getattr(c, "no_transactional_email", False):
            rows.append(f"[$warning]no transactional email[/] [{MUTED}](emails are skipped)[/]")
        if emails:
            rows.append(f"[{MUTED}]Emails[/] {email_counts(emails)}")
        self.body.update("\n".join(rows))


class PaymentsPanel(Panel):
    TITLE = "Payments"

    def show(
        self,
        d: OrderDetail,
        now: datetime,
        *,
        allowed: bool = True,
        returns: Sequence[Any] = (),
    ) -> None:
        if not allowed:
            # services strip payments for this role: say so rather than look empty
            rows = [f"[{MUTED}]No access to payment details for your role.[/]"]
            rows.extend(self._return_rows(returns, now))
            self.body.update("\n".join(rows))
            return
        rows = []
        if not d.payments and not d.refunds:
            rows.append(f"[{MUTED}]No payments yet.[/]")
        for p in d.payments:
            rows.extend(self._payment_rows(p))
        if d.refunds:
            rows.append("[b]Refunds[/]")
            for r in d.refunds:
                rows.extend(self._refund_rows(r, now))
        rows.extend(self._return_rows(returns, now))
        o = d.order
        if awaiting_payment(state_of(o)):
            # the reference a customer quotes on a bank transfer is the order number
            due = money(o.total - o.paid, o.currency)
            rows.append(
                f"[b]Bank transfer[/]: quote [b]{escape(o.number)}[/] [{MUTED}]for[/] {escape(due)}"
            )
        self.body.update("\n".join(rows))

    @staticmethod
    def _refund_rows(r: Refund, now: datetime) -> list[str]:
        rows = [
            f"  #{r.id} {escape(money(r.amount, r.currency))} {refund_badge(r.status)} "
            f"[{MUTED}]{escape(r.reason.replace('_', ' '))} · by {escape(r.created_by)} · "
            f"{escape(relative_time(r.created_at, now))}[/]"
        ]
        if r.status == "failed":
            rows.append(f"    [$error]{escape(r.failure_reason or 'no reason given')}[/]")
        elif r.status == "pending" and r.failure_reason:
            rows.append(f"    [{MUTED}]{escape(r.failure_reason)}[/]")
        elif r.status == "requested":
            rows.append(f"    [{MUTED}]waits for an admin's approval[/]")
        return rows

    @staticmethod
    def _return_rows(returns: Sequence[Any], now: datetime) -> list[str]:
        if not returns:
            return []
        rows = ["[b]Returns[/]"]
        for ret in returns:
            items = ", ".join(f"{ln.get('quantity')} × {ln.get('sku')}" for ln in ret.lines)
            rows.append(
                f"  RMA #{ret.id} {return_badge(ret.status)} {escape(items)} "
                f"[{MUTED}]{escape(str(ret.reason).replace('_', ' '))} · "
                f"{escape(relative_time(ret.created_at, now))}[/]"
            )
            extra = []
            if ret.decision_note:
                extra.append(str(ret.decision_note))
            if getattr(ret, "exchange_order_number", None):
                extra.append(f"exchange order {ret.exchange_order_number}")
            if getattr(ret, "refund_id", None):
                extra.append(f"refund #{ret.refund_id}")
            if extra:
                rows.append(f"    [{MUTED}]{escape(' · '.join(extra))}[/]")
        return rows

    @staticmethod
    def _payment_rows(p: Payment) -> list[str]:
        card = ""
        if p.card_brand or p.card_last4:
            card = f"{p.card_brand or 'card'} •••• {p.card_last4 or '????'}"
        method = p.wallet or p.method.replace("_", " ")
        gateway = p.gateway.replace("_", " ")
        parts = [gateway] if gateway == method else [gateway, method]
        head = " · ".join(x for x in (*parts, card) if x)
        amount = money(p.amount, p.currency)
        rows = [f"{escape(head)}  {badge_markup('pay', p.status)}  [b]{escape(amount)}[/]"]
        if p.status in (PaymentStatus.UNPAID, PaymentStatus.AUTHORIZED, PaymentStatus.FAILED):
            what = "awaiting" if p.status != PaymentStatus.FAILED else "failed"
            rows.append("  " + _pairs([(what, "reference " + (p.gateway_ref or "—"))]))
        else:
            rows.append(
                "  "
                + _pairs(
                    [
                        ("captured", money(p.captured, p.currency)),
                        ("refunded", money(p.refunded, p.currency)),
                    ]
                )
            )
        return rows


class ShipmentsPanel(Panel):
    TITLE = "Shipments"

    def show(self, d: OrderDetail, now: datetime) -> None:
        if not d.shipments:
            self.body.update(f"[{MUTED}]No shipments yet.[/]")
            return
        rows: list[str] = []
        for s in d.shipments:
            rows.append(
                f"[b]{escape(s.carrier)}[/] {escape(s.tracking_number)}  {escape(s.status)}"
            )
            rows.append(
                "  "
                + _pairs(
                    [
                        ("shipped", when(s.shipped_at, now)),
                        ("delivered", when(s.delivered_at, now)),
                    ]
                )
            )
        self.body.update("\n".join(rows))
