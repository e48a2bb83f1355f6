"""Refunds in the desk: the refund dialog for one order, the refunds screen.

``RefundDialog`` builds its form from ``desk.refunds.options`` (a thread
worker), shows a live preview (``desk.refunds.preview``, debounced, in a thread
worker) and writes nothing until the operator confirms: then ``create`` with
the version it was built from and one idempotency key per opening (a double
enter, or a retried submit, returns the same refund), and, when the refund is
approved, ``execute_sync`` in the same worker. It dismisses with a
``RefundOutcome``; the screen that opened it reports it and reloads.

``RefundsScreen`` (a ``WorkListScreen``, screens/worklist.py) lists every
refund across orders (failed and waiting for approval first), by status tab
with counts; its *Requested* tab is the approvals queue. Approve, retry and
cancel confirm first and run in thread workers. Which keys are offered comes
from ``Actor.can`` and the refund's status; the services refuse anything else
anyway.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar, Literal

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.markup import escape
from textual.screen import ModalScreen
from textual.timer import Timer
from textual.widgets import (
    Button,
    Checkbox,
    DataTable,
    Input,
    Label,
    OptionList,
    Select,
    Static,
)
from textual.widgets.option_list import Option
from textual.worker import Worker, WorkerState

from pulse_tui.domain.money import Money, MoneyError
from pulse_tui.domain.permissions import Permission
from pulse_tui.domain.refunds import LinePick, Quote, RefundStatus
from pulse_tui.messages import OrderChanged
from pulse_tui.screens.dialogs import ActionDialog, Perform
from pulse_tui.screens.worklist import LIMIT, WorkListScreen, worklist_bindings
from pulse_tui.services.errors import Conflict, ServiceError
from pulse_tui.services.refunds import RefundOptions, RefundRequest, RefundRow
from pulse_tui.widgets.formatting import money, relative_time
from pulse_tui.widgets.order_panels import REFUND_STYLE, refund_badge

DEBOUNCE_S = 0.25
OPTIONS_GROUP = "refund-options"
PREVIEW_GROUP = "refund-preview"
SUBMIT_GROUP = "refund-submit"
MUTED = "$foreground-muted"
CONFLICT_TEXT = "changed by someone else — reloaded"

CANCELLABLE = (RefundStatus.REQUESTED, RefundStatus.APPROVED, RefundStatus.FAILED)


def reason_label(reason: str) -> str:
    return reason.replace("_", " ")


def describe_refund(refund: Any) -> tuple[str, str]:
    """(one line for a notification/banner, level) for a refund row after an
    action: succeeded / pending / waits for approval / failed and why."""
    amount = money(refund.amount, refund.currency)
    head = f"Refund #{refund.id} of {amount}"
    status = refund.status
    why = refund.failure_reason
    if status == RefundStatus.SUCCEEDED:
        return f"{head} succeeded", "information"
    if status == RefundStatus.PENDING:
        if why:
            return f"{head} is pending: {why}", "warning"
        return f"{head} sent; pending at the gateway", "information"
    if status == RefundStatus.REQUESTED:
        return f"{head} waits for an admin's approval", "warning"
    if status == RefundStatus.APPROVED:
        return f"{head} approved; the payment sync sends it", "information"
    if status == RefundStatus.FAILED:
        return f"{head} failed: {why or 'no reason given'}", "error"
    return f"{head} {status}", "information"


def send_if_approved(desk: Any, refund: Any) -> Any:
    """In a thread: an approved refund goes to its gateway now (exactly once:
    the services claim it first); anything else is returned as it is."""
    if refund.status != RefundStatus.APPROVED:
        return refund
    return desk.refunds.execute_sync(int(refund.id))


@dataclass(frozen=True)
class RefundOutcome:
    kind: Literal["done", "conflict"]
    refund: Any = None
    message: str = ""
    send_error: str = ""  # the refund was created but sending it raised this

    def text(self) -> tuple[str, str]:
        text, level = describe_refund(self.refund)
        if self.send_error:
            return f"{text}; sending failed: {self.send_error}", "error"
        return text, level


# -- the refund dialog ---------------------------------------------------------------


@dataclass(frozen=True)
class Draft:
    """What the form asks for, without reason and note (the preview's key)."""

    lines: tuple[LinePick, ...]
    include_shipping: bool
    amount: int | None
    payment_id: int | None

    @property
    def empty(self) -> bool:
        return not self.lines and not self.include_shipping and self.amount is None

    def request(self, reason: str, note: str | None = None) -> RefundRequest:
        return RefundRequest(
            reason=reason,
            lines=self.lines,
            include_shipping=self.include_shipping,
            amount=self.amount,
            payment_id=self.payment_id,
            note=note,
        )


class RefundDialog(ModalScreen[RefundOutcome | None]):
    """Lines and quantities (restock per physical line), shipping, or a free
    amount; reason, payment, note; a live preview; confirm to refund."""

    BINDINGS = [
        Binding("escape", "close", "Close", id="refund.close"),
        Binding("ctrl+s", "submit", "Refund", id="refund.submit"),
    ]
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (100, "-wide")]
    DEBOUNCE: ClassVar[float] = DEBOUNCE_S

    def __init__(self, order_ref: str | int, number: str) -> None:
        super().__init__()
        self.order_ref = order_ref
        self.number = number
        self.key = str(uuid.uuid4())  # one per opening: a double submit is one refund
        self.options: RefundOptions | None = None
        self.quote: Quote | None = None
        self.quote_draft: Draft | None = None
        self._asked: Draft | None = None
        self.busy = False
        self._timer: Timer | None = None

    # -- layout ----------------------------------------------------------------

    def compose(self) -> ComposeResult:
        with Vertical(id="refund-box"):
            yield Label(f"Refund — {escape(self.number)}", id="refund-title")
            with VerticalScroll(id="refund-scroll"), Horizontal(id="refund-columns"):
                yield Vertical(id="refund-form")
                with Vertical(id="refund-side"):
                    yield Static("", id="refund-preview")
            yield Static("", id="refund-error")
            with Horizontal(id="refund-buttons"):
                yield Button("Refund", id="submit", variant="warning", compact=True, disabled=True)
                yield Button("Close", id="close", compact=True)
            yield Static("enter preview/refund · ctrl+s refund · esc close", id="refund-hint")

    def on_mount(self) -> None:
        self.query_one("#refund-scroll").loading = True
        self.query_one("#refund-error").display = False
        self._load_options(self.app.desk)  # type: ignore[attr-defined]

    @work(thread=True, exclusive=True, exit_on_error=False, group=OPTIONS_GROUP)
    def _load_options(self, desk: Any) -> RefundOptions:
        return desk.refunds.options(self.order_ref)  # type: ignore[no-any-return]

    async def _options_loaded(self, options: RefundOptions) -> None:
        self.options = options
        form = self.query_one("#refund-form", Vertical)
        await form.mount_all(list(self._form_widgets(options)))
        self.query_one("#refund-scroll").loading = False
        if options.refundable <= 0:
            self.show_preview(f"[{MUTED}]Nothing is left to refund on this order.[/]")
            return
        self.show_preview(f"[{MUTED}]Choose lines, shipping or an amount to see the refund.[/]")
        for widget in form.query("Input").results(Input):
            if not widget.disabled:
                widget.focus()
                break

    def _form_widgets(self, o: RefundOptions) -> list[Any]:
        cur = o.currency
        paid = sum(p.captured for p in o.payments)
        out: list[Any] = [
            Static(
                f"[{MUTED}]paid[/] {escape(money(paid, cur))}  "
                f"[{MUTED}]refundable[/] [b]{escape(money(o.refundable, cur))}[/]  "
                f"[{MUTED}]approval above[/] {escape(money(o.limit, cur))}",
                id="refund-summary",
            )
        ]
        if o.refundable <= 0:
            return out
        out.append(Label("Lines — quantity to refund", classes="field-label"))
        for ln in o.lines:
            label = Static(
                f"[b]{escape(ln.sku)}[/] {escape(ln.name)}\n"
                f"[{MUTED}]{ln.refundable} of {ln.quantity} left · "
                f"{escape(money(ln.unit_value, cur))} each[/]",
                classes="refund-line-label",
            )
            qty = Input(
                placeholder="0",
                type="integer",
                id=f"qty-{ln.line_id}",
                classes="refund-qty",
                compact=True,
                disabled=ln.refundable <= 0,
            )
            parts: list[Any] = [label, qty]
            if ln.physical:
                parts.append(
                    Checkbox(
                        "restock",
                        id=f"restock-{ln.line_id}",
                        classes="refund-restock",
                        compact=True,
                        disabled=ln.refundable <= 0,
                    )
                )
            out.append(Horizontal(*parts, classes="refund-line"))
        out.append(
            Checkbox(
                f"Include shipping ({escape(money(o.shipping_refundable, cur))})",
                id="shipping",
                compact=True,
                disabled=o.shipping_refundable <= 0,
            )
        )
        out.append(Label("Or a free amount (instead of lines)", classes="field-label"))
        out.append(Input(placeholder=f"e.g. {money(1000, cur)}", id="amount", compact=True))
        out.append(Label("Reason", classes="field-label"))
        reasons = [(reason_label(r.value), r.value) for r in o.reasons]
        out.append(Select(reasons, prompt="Choose a reason", id="reason", compact=True))
        payments = [p for p in o.payments if p.refundable > 0]
        if len(payments) > 1:
            out.append(Label("Refund to", classes="field-label"))
            choices = [
                (f"{p.label} ({money(p.refundable, cur)} left)", p.payment_id) for p in payments
            ]
            out.append(Select(choices, prompt="Choose a payment", id="payment", compact=True))
        out.append(Label("Note (optional)", classes="field-label"))
        out.append(Input(id="note", placeholder="shown on the timeline", compact=True))
        if o.may_approve:
            approve = Checkbox(
                "Approve now (above the limit)", id="approve", compact=True, value=True
            )
            approve.display = False
            out.append(approve)
        return out

    # -- reading the form --------------------------------------------------------

    def read_draft(self) -> tuple[Draft | None, str | None]:
        """The form as a Draft, or the message saying which field is wrong."""
        o = self.options
        if o is None:
            return None, None
        picks: list[LinePick] = []
        for ln in o.lines:
            text = self.query_one(f"#qty-{ln.line_id}", Input).value.strip()
            if not text:
                continue
            try:
                qty = int(text)
            except ValueError:
                return None, f"{ln.sku}: quantity must be a whole number"
            if qty == 0:
                continue
            restock = False
            for box in self.query(f"#restock-{ln.line_id}").results(Checkbox):
                restock = box.value
            picks.append(LinePick(ln.line_id, qty, restock))
        amount: int | None = None
        amount_text = self.query_one("#amount", Input).value.strip()
        if amount_text:
            try:
                amount = Money.parse(amount_text, o.currency).amount
            except MoneyError as exc:
                return None, f"amount: {exc}"
        payment_id: int | None = None
        for select in self.query("#payment").results(Select):
            if select.value is not Select.NULL:
                payment_id = int(select.value)  # type: ignore[arg-type]
        shipping = self.query_one("#shipping", Checkbox).value
        return Draft(tuple(picks), shipping, amount, payment_id), None

    def reason(self) -> str | None:
        value = self.query_one("#reason", Select).value
        return None if value is Select.NULL else str(value)

    # -- the preview ---------------------------------------------------------------

    @on(Input.Changed)
    @on(Checkbox.Changed)
    @on(Select.Changed)
    def _form_changed(self, event: Any) -> None:
        if self.options is None or getattr(event.control, "id", None) in ("approve", "note"):
            return
        self.quote = None
        self.quote_draft = None
        self._update_submit()
        if self._timer is not None:
            self._timer.stop()
        self._timer = self.set_timer(self.DEBOUNCE, self.preview_now)

    def preview_now(self) -> None:
        """Ask the services what the form would refund (nothing is written)."""
        if self._timer is not None:
            self._timer.stop()
            self._timer = None
        draft, error = self.read_draft()
        self.show_error(error or "")
        if draft is None:
            self.show_preview("")
            return
        if draft.empty:
            self._asked = None
            self.show_preview(f"[{MUTED}]Choose lines, shipping or an amount to see the refund.[/]")
            return
        self._asked = draft
        self.show_preview(f"[{MUTED}]Working out the refund…[/]")
        # the reason only has to be valid for a preview; submit insists on one
        request = draft.request(self.reason() or "other")
        self._preview(self.app.desk, draft, request)  # type: ignore[attr-defined]

    @work(thread=True, exclusive=True, exit_on_error=False, group=PREVIEW_GROUP)
    def _preview(self, desk: Any, draft: Draft, request: RefundRequest) -> tuple[Draft, Quote]:
        return draft, desk.refunds.preview(self.order_ref, request)

    def _preview_done(self, draft: Draft, quote: Quote) -> None:
        if draft != self._asked:
            return  # the form changed since: a newer preview is on its way
        self.quote, self.quote_draft = quote, draft
        self.show_error("")
        self.show_preview(self.render_quote(quote))
        self._update_submit()

    def _preview_failed(self, error: BaseException) -> None:
        self.quote = self.quote_draft = None
        self.show_preview("")
        self.show_error(error.message if isinstance(error, ServiceError) else str(error))
        self._update_submit()

    def render_quote(self, q: Quote) -> str:
        assert self.options is not None
        cur = self.options.currency

        def m(amount: int) -> str:
            return escape(money(amount, cur))

        rows = ["[b]Preview[/]"]
        for ln in q.lines:
            restock = "  restock" if ln.restock else ""
            rows.append(
                f"{ln.quantity} × {escape(ln.sku)}  {m(ln.amount)}"
                f"  [{MUTED}]tax {m(ln.tax)}{restock}[/]"
            )
        if q.shipping:
            rows.append(f"shipping  {m(q.shipping)}")
        if not q.lines and not q.shipping:
            rows.append(f"free amount  {m(q.amount)}")
        rows.append(f"[b]Total {m(q.amount)}[/]  [{MUTED}]incl. tax {m(q.tax)}[/]")
        rows.append(f"[{MUTED}]stays refundable[/] {m(q.refundable - q.amount)}")
        if q.amount > self.options.limit:
            if self.options.may_approve:
                rows.append(f"[$warning]above the {m(self.options.limit)} limit[/]")
            else:
                rows.append(
                    f"[$warning]above the {m(self.options.limit)} limit: "
                    "waits for an admin's approval[/]"
                )
        return "\n".join(rows)

    def show_preview(self, text: str) -> None:
        self.query_one("#refund-preview", Static).update(text)

    def show_error(self, text: str) -> None:
        err = self.query_one("#refund-error", Static)
        err.update(escape(text))
        err.display = bool(text)

    @property
    def preview_text(self) -> str:
        return str(self.query_one("#refund-preview", Static).render())

    @property
    def error_text(self) -> str:
        err = self.query_one("#refund-error", Static)
        return str(err.render()) if err.display else ""

    def _update_submit(self) -> None:
        submit = self.query_one("#submit", Button)
        ready = self.quote is not None and not self.busy
        submit.disabled = not ready
        if self.quote is not None and self.options is not None:
            submit.label = f"Refund {money(self.quote.amount, self.options.currency)}"
            above = self.quote.amount > self.options.limit
            for box in self.query("#approve").results(Checkbox):
                box.display = above
        else:
            submit.label = "Refund"

    # -- submitting ----------------------------------------------------------------

    @on(Button.Pressed, "#submit")
    def _submit_pressed(self) -> None:
        self.action_submit()

    @on(Button.Pressed, "#close")
    def _close_pressed(self) -> None:
        self.action_close()

    @on(Input.Submitted)
    def _input_submitted(self) -> None:
        # enter shows the preview first; on a current preview it refunds
        if self.busy or self.options is None:
            return
        draft, _error = self.read_draft()
        if self.quote is None or draft != self.quote_draft:
            self.preview_now()
            return
        self.action_submit()

    def action_close(self) -> None:
        if not self.busy:
            self.dismiss(None)

    def action_submit(self) -> None:
        if self.busy or self.options is None:
            return
        draft, error = self.read_draft()
        if error:
            self.show_error(error)
            return
        if self.quote is None or draft is None or draft != self.quote_draft:
            self.show_error("the preview is not ready yet")
            if draft is not None and draft != self._asked:
                self.preview_now()
            return
        reason = self.reason()
        if reason is None:
            self.show_error("choose a reason")
            self.query_one("#reason", Select).focus()
            return
        note = self.query_one("#note", Input).value.strip() or None
        approve = False
        for box in self.query("#approve").results(Checkbox):
            approve = box.display and box.value
        self.busy = True
        self.show_error("")
        self._update_submit()
        self._submit(self.app.desk, draft.request(reason, note), approve)  # type: ignore[attr-defined]

    @work(thread=True, exclusive=True, exit_on_error=False, group=SUBMIT_GROUP)
    def _submit(self, desk: Any, request: RefundRequest, approve: bool) -> RefundOutcome:
        assert self.options is not None
        refund = desk.refunds.create(
            self.order_ref,
            request,
            approve=approve,
            expected_version=self.options.version,
            idempotency_key=self.key,
        )
        try:
            refund = send_if_approved(desk, refund)
        except ServiceError as exc:
            return RefundOutcome("done", refund, send_error=exc.message)
        except Exception as exc:  # the refund is committed: say what went wrong
            return RefundOutcome("done", refund, send_error=str(exc) or type(exc).__name__)
        return RefundOutcome("done", refund)

    async def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        worker = event.worker
        if event.state not in (WorkerState.SUCCESS, WorkerState.ERROR):
            return
        ok = event.state == WorkerState.SUCCESS
        if worker.group == OPTIONS_GROUP:
            if ok:
                await self._options_loaded(worker.result)
            else:
                self.query_one("#refund-scroll").loading = False
                self._preview_failed(worker.error)  # type: ignore[arg-type]
        elif worker.group == PREVIEW_GROUP:
            if ok:
                self._preview_done(*worker.result)
            elif self._asked is not None:
                self._preview_failed(worker.error)  # type: ignore[arg-type]
        elif worker.group == SUBMIT_GROUP:
            if ok:
                self.dismiss(worker.result)
                return
            self.busy = False
            error = worker.error
            if isinstance(error, Conflict):
                self.dismiss(RefundOutcome("conflict", message=error.message))
                return
            self._preview_failed(error)  # type: ignore[arg-type]
            self.preview_now()


# -- picking one of an order's refunds (approve / retry from the detail) ---------------


class PickRefundDialog(ActionDialog):
    """One of the given refunds, then ``perform(refund_id=...)`` (approve and
    send, or retry and send) in a thread worker."""

    HINT = "↑↓ pick · enter confirm · esc close"

    def __init__(
        self,
        number: str,
        perform: Perform | None,
        *,
        refunds: Sequence[Any],
        title: str,
        submit: str,
        message: str = "",
    ) -> None:
        super().__init__(number, perform)
        self.refunds = list(refunds)
        self._title = title
        self._submit_label = submit
        self._message = message

    def title_text(self) -> str:
        return f"{self._title} — {escape(self.number)}"

    def compose_fields(self) -> ComposeResult:
        if self._message:
            yield Static(escape(self._message), classes="dialog-message")
        options = []
        for r in self.refunds:
            why = f" — {r.failure_reason}" if r.failure_reason else ""
            options.append(
                Option(
                    f"#{r.id} {escape(money(r.amount, r.currency))} "
                    f"{escape(reason_label(r.reason))}"
                    f"[{MUTED}] by {escape(r.created_by)}{escape(why)}[/]",
                    id=str(r.id),
                )
            )
        yield from self.field("refund", "Refund", OptionList(*options, id="refund"))

    def on_mount(self) -> None:
        super().on_mount()
        self.query_one("#submit", Button).label = self._submit_label
        self.query_one("#refund", OptionList).highlighted = 0

    @on(OptionList.OptionSelected, "#refund")
    def _option_selected(self) -> None:
        self.action_submit()

    def collect(self) -> dict[str, Any] | None:
        ol = self.query_one("#refund", OptionList)
        if ol.highlighted is None:
            self.show_error("choose a refund")
            return None
        return {"refund_id": int(self.refunds[ol.highlighted].id)}


# -- the refunds screen -------------------------------------------------------------

# (tab id, label, short label for narrow terminals)
TABS: list[tuple[str, str, str]] = [
    ("all", "All", "All"),
    ("attention", "Needs attention", "Attn"),
    ("requested", "Requested", "Req"),
    ("failed", "Failed", "Fail"),
    ("pending", "Pending", "Pend"),
    ("approved", "Approved", "Appr"),
    ("succeeded", "Succeeded", "Done"),
    ("cancelled", "Cancelled", "Canc"),
]


class RefundTable(DataTable[Any]):
    """The refunds table; enter opens the refund's order (shown in the footer)."""

    BINDINGS = [Binding("enter", "select_cursor", "Open order", id="refunds.open")]


class RefundsScreen(WorkListScreen):
    """Every refund across orders, by status; the Requested tab is the
    approvals queue."""

    PREFIX = "refunds"
    SCREEN_TITLE = "Refunds"
    TABS = TABS
    TABLE = RefundTable
    COLUMNS = [
        ("id", "#", None),
        ("order", "Order", None),
        ("amount", "Amount", None),
        ("status", "Status", None),
        ("reason", "Reason", None),
        ("created", "Created", None),
        ("by", "By", None),
        ("why", "Why / note", 36),
    ]
    STATUS_STYLE = REFUND_STYLE
    ROW_ACTIONS = {
        "approve": (Permission.REFUND_ANY, (RefundStatus.REQUESTED,)),
        "retry": (Permission.REFUND, (RefundStatus.FAILED,)),
        "cancel_refund": (Permission.REFUND, CANCELLABLE),
    }
    BINDINGS = worklist_bindings(
        "refunds",
        [
            Binding("a", "approve", "Approve", id="refunds.approve"),
            Binding("y", "retry", "Retry", id="refunds.retry"),
            Binding("c", "cancel_refund", "Cancel refund", id="refunds.cancel"),
        ],
    )

    # -- the work list's hooks ---------------------------------------------------------

    def fetch(self, desk: Any, tab: str) -> tuple[list[RefundRow], dict[str, int]]:
        svc = desk.refunds
        if tab == "all":
            rows = svc.list_refunds(limit=LIMIT)
        elif tab == "attention":
            rows = svc.list_refunds(status="failed", limit=LIMIT)
            rows += svc.list_refunds(status="requested", limit=LIMIT)
        else:
            rows = svc.list_refunds(status=tab, limit=LIMIT)
        return rows, svc.counts()

    def tab_count(self, tab: str) -> int:
        if tab == "attention":
            return self.counts.get("failed", 0) + self.counts.get("requested", 0)
        return super().tab_count(tab)

    def row_cells(self, r: RefundRow, now: datetime) -> Sequence[Any]:
        why = r.failure_reason or r.note or ""
        return (
            str(r.id),
            r.order_number,
            Text(money(r.amount, r.currency), justify="right"),
            Text(r.status, style=self.status_style(r.status)),
            reason_label(r.reason),
            relative_time(r.created_at, now),
            r.created_by,
            Text(why, no_wrap=True, overflow="ellipsis"),
        )

    def empty_text(self, label: str) -> str:
        return f"No refunds in {label.lower()}." if self.tab != "all" else "No refunds yet."

    def info_text(self, r: RefundRow) -> str:
        parts = [f"[b]#{r.id}[/] {escape(r.order_number)} {refund_badge(r.status)}"]
        if r.lines:
            parts.append(
                ", ".join(f"{ln['quantity']} × {escape(str(ln['sku']))}" for ln in r.lines)
            )
        if r.shipping:
            parts.append(f"shipping {escape(money(r.shipping, r.currency))}")
        if r.gateway:
            parts.append(f"[{MUTED}]via[/] {escape(r.gateway)}")
        if r.approved_by:
            parts.append(f"[{MUTED}]approved by[/] {escape(r.approved_by)}")
        if r.attempt > 1:
            parts.append(f"[{MUTED}]attempt[/] {r.attempt}")
        text = "  ".join(parts)
        if r.failure_reason:
            text += f"\n[$error]{escape(r.failure_reason)}[/]"
        elif r.note:
            text += f"\n[{MUTED}]{escape(r.note)}[/]"
        return text

    def after_done(self, r: RefundRow) -> None:
        self.post_message(OrderChanged(r.order_id, r.order_number))  # reloads us too

    # -- actions -------------------------------------------------------------------

    def action_approve(self) -> None:
        r = self.current
        if r is None:
            return
        desk = self.app.desk  # type: ignore[attr-defined]
        amount = escape(money(r.amount, r.currency))
        self.confirm(
            r,
            lambda: send_if_approved(desk, desk.refunds.approve(r.id)),
            describe_refund,
            title="Approve refund",
            message=f"Approve refund #{r.id} of [b]{amount}[/] on {escape(r.order_number)}? "
            f"It is sent to {escape(r.gateway or 'the gateway')} at once.",
            yes="Approve & send",
        )

    def action_retry(self) -> None:
        r = self.current
        if r is None:
            return
        desk = self.app.desk  # type: ignore[attr-defined]
        why = escape(r.failure_reason or "no reason given")
        self.confirm(
            r,
            lambda: send_if_approved(desk, desk.refunds.retry(r.id)),
            describe_refund,
            title="Retry refund",
            message=f"Refund #{r.id} failed: {why}.\nSend it again as a new attempt?",
            yes="Retry",
        )

    def action_cancel_refund(self) -> None:
        r = self.current
        if r is None:
            return
        desk = self.app.desk  # type: ignore[attr-defined]
        amount = escape(money(r.amount, r.currency))
        self.confirm(
            r,
            lambda: desk.refunds.cancel(r.id),
            describe_refund,
            title="Cancel refund",
            message=f"Cancel refund #{r.id} of [b]{amount}[/] on {escape(r.order_number)}? "
            "Nothing is sent; the amount becomes refundable again.",
            yes="Yes, cancel refund",
            destructive=True,
        )
