"""Return (RMA) dialogs for the order detail: request, then each next step.

    request → authorize | reject → receive → refund | exchange

Each dialog collects input and hands it to ``perform`` (the detail screen
builds it around one ``desk.returns`` call, see order_detail.py); the call runs
in the ActionDialog thread worker, and a service error is shown in the dialog
with nothing changed. Which steps are offered comes from the domain's step
table (``RETURN_STEPS``) and ``Actor.can``; the services check again.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.markup import escape
from textual.widgets import Button, Checkbox, Input, OptionList, Select, Static
from textual.widgets.option_list import Option

from pulse_tui.domain.permissions import Permission
from pulse_tui.domain.refunds import OPERATOR_REASONS, RETURN_STEPS, Condition
from pulse_tui.screens.dialogs import ActionDialog, Outcome, Perform
from pulse_tui.widgets.formatting import money

MUTED = "$foreground-muted"

# which permission each step needs (the services' contract)
STEP_PERMISSION: dict[str, Permission] = {
    "authorize": Permission.REFUND,
    "reject": Permission.REFUND,
    "receive": Permission.FULFIL,
    "refund": Permission.REFUND,
    "exchange": Permission.REFUND,
}
STEP_LABEL: dict[str, str] = {
    "authorize": "Authorize",
    "reject": "Reject",
    "receive": "Receive the goods",
    "refund": "Refund the received units",
    "exchange": "Exchange for other goods",
}


def offered_steps(ret: Any, can: Callable[[Permission], bool]) -> list[str]:
    """The next steps of a return that its status allows and the role may take."""
    return [
        step
        for step, (src, _dst) in RETURN_STEPS.items()
        if ret.status == src and can(STEP_PERMISSION[step])
    ]


def return_items(ret: Any) -> str:
    """'2 × MUG-BLUE, 1 × TEE-M' (received counts once the goods are in)."""
    parts = []
    for ln in ret.lines:
        qty = ln.get("quantity", 0)
        got = ln.get("received")
        text = f"{qty} × {ln.get('sku')}"
        if got is not None and ret.status not in ("requested", "authorized", "rejected"):
            cond = f" {ln.get('condition')}" if ln.get("condition") else ""
            text = f"{got}/{qty} × {ln.get('sku')}{cond}"
        parts.append(text)
    return ", ".join(parts)


def _whole(text: str) -> int | None:
    text = text.strip()
    if not text:
        return 0
    try:
        return int(text)
    except ValueError:
        return None


class RequestReturnDialog(ActionDialog):
    """Lines and quantities (of what was shipped), a reason and a note."""

    TITLE_TEXT = "Request return"
    SUBMIT_LABEL = "Request return"
    FIELD_PREFIXES = {"reason": ("unknown refund reason", "reason"), "note": ("note",)}

    def __init__(self, number: str, perform: Perform | None, *, options: Any) -> None:
        super().__init__(number, perform)
        self.options = options
        self.lines = [ln for ln in options.lines if ln.returnable > 0]

    def compose_fields(self) -> ComposeResult:
        if not self.lines:
            why = getattr(self.options, "problem", None) or "nothing shipped is left to return"
            yield Static(f"No return possible: {escape(why)}.", classes="dialog-message")
            return
        yield Static("Quantity to return per line:", classes="dialog-message")
        for i, ln in enumerate(self.lines):
            yield Horizontal(
                Static(
                    f"[b]{escape(ln.sku)}[/] {escape(ln.name)} "
                    f"[{MUTED}]{ln.returnable} of {ln.shipped}[/]"
                ),
                Input(placeholder="0", type="integer", id=f"ret-{i}", compact=True),
                classes="return-line",
            )
        yield Static("", id="lines-error", classes="field-error")
        reasons = [(r.value.replace("_", " "), r.value) for r in OPERATOR_REASONS]
        yield from self.field(
            "reason", "Reason", Select(reasons, prompt="Choose a reason", id="reason")
        )
        yield from self.field("note", "Note (optional)", Input(id="note"))

    def collect(self) -> dict[str, Any] | None:
        if not self.lines:
            self.show_error("nothing can be returned")
            return None
        picks: list[tuple[str, int]] = []
        for i, ln in enumerate(self.lines):
            qty = _whole(self.query_one(f"#ret-{i}", Input).value)
            if qty is None or qty < 0:
                self.show_error(f"{ln.sku}: quantity must be a whole number", "lines")
                return None
            if qty:
                picks.append((ln.sku, qty))
        if not picks:
            self.show_error("choose at least one line to return", "lines")
            return None
        reason = self.query_one("#reason", Select).value
        if reason is Select.NULL:
            self.show_error("choose a reason", "reason")
            return None
        note = self.query_one("#note", Input).value.strip()
        return {"lines": picks, "reason": str(reason), "note": note or None}


class ReturnStepDialog(ActionDialog):
    """Which next step, of which open return (routes to that step's dialog)."""

    TITLE_TEXT = "Return"
    SUBMIT_LABEL = "Continue…"
    HINT = "↑↓ pick · enter continue · esc close"

    def __init__(self, number: str, *, choices: Sequence[tuple[Any, str]]) -> None:
        super().__init__(number, None)
        self.choices = list(choices)

    def compose_fields(self) -> ComposeResult:
        options = [
            Option(
                f"RMA #{ret.id} [{MUTED}]{escape(ret.status)} · {escape(return_items(ret))}[/]"
                f" → [b]{escape(STEP_LABEL[step])}[/]",
                id=f"{step}-{ret.id}",
            )
            for ret, step in self.choices
        ]
        yield from self.field("step", "Next step", OptionList(*options, id="step"))

    def on_mount(self) -> None:
        super().on_mount()
        self.query_one("#step", OptionList).highlighted = 0

    @on(OptionList.OptionSelected, "#step")
    def _option_selected(self) -> None:
        self.action_submit()

    def collect(self) -> dict[str, Any] | None:
        ol = self.query_one("#step", OptionList)
        if ol.highlighted is None:
            self.show_error("choose a step")
            return None
        ret, step = self.choices[ol.highlighted]
        return {"route": f"{step}:{ret.id}"}

    def start(self, values: dict[str, Any]) -> None:
        self.dismiss(Outcome("route", route=values["route"]))


class _ReturnDialog(ActionDialog):
    """A step on one return: shows what it holds."""

    def __init__(self, number: str, perform: Perform | None, *, ret: Any) -> None:
        super().__init__(number, perform)
        self.ret = ret

    def title_text(self) -> str:
        return f"{self.TITLE_TEXT} RMA #{self.ret.id} — {escape(self.number)}"

    def summary(self) -> Static:
        reason = self.ret.reason.replace("_", " ")
        text = f"{escape(return_items(self.ret))} [{MUTED}]· {escape(reason)}[/]"
        if self.ret.note:
            text += f"\n[{MUTED}]{escape(self.ret.note)}[/]"
        return Static(text, classes="dialog-message")


class AuthorizeReturnDialog(_ReturnDialog):
    TITLE_TEXT = "Authorize"
    SUBMIT_LABEL = "Authorize"
    FIELD_PREFIXES = {"note": ("note",)}

    def compose_fields(self) -> ComposeResult:
        yield self.summary()
        yield from self.field("note", "Note (optional)", Input(id="note"))

    def collect(self) -> dict[str, Any]:
        note = self.query_one("#note", Input).value.strip()
        return {"note": note or None}


class RejectReturnDialog(_ReturnDialog):
    TITLE_TEXT = "Reject"
    SUBMIT_LABEL = "Reject"
    SUBMIT_VARIANT = "error"
    FIELD_PREFIXES = {"note": ("note", "a note", "say why")}

    def compose_fields(self) -> ComposeResult:
        yield self.summary()
        yield from self.field("note", "Why (the customer is told)", Input(id="note"))

    def collect(self) -> dict[str, Any] | None:
        note = self.query_one("#note", Input).value.strip()
        if not note:
            self.show_error("a note is required to reject a return", "note")
            return None
        return {"note": note}


class ReceiveReturnDialog(_ReturnDialog):
    """Quantity and condition per line; resellable units go back to stock."""

    TITLE_TEXT = "Receive"
    SUBMIT_LABEL = "Received"

    def compose_fields(self) -> ComposeResult:
        yield Static(
            "What came back, per line (resellable units go back to stock):",
            classes="dialog-message",
        )
        conditions = [(c.value, c.value) for c in Condition]
        for i, ln in enumerate(self.ret.lines):
            yield Horizontal(
                Static(f"[b]{escape(str(ln['sku']))}[/] [{MUTED}]{ln['quantity']} authorised[/]"),
                Input(str(ln["quantity"]), type="integer", id=f"got-{i}", compact=True),
                Select(
                    conditions,
                    value=Condition.RESELLABLE.value,
                    allow_blank=False,
                    id=f"cond-{i}",
                    compact=True,
                ),
                classes="receive-line",
            )
        yield Static("", id="lines-error", classes="field-error")

    def collect(self) -> dict[str, Any] | None:
        items: list[tuple[str, int, str]] = []
        for i, ln in enumerate(self.ret.lines):
            qty = _whole(self.query_one(f"#got-{i}", Input).value)
            if qty is None or qty < 0:
                self.show_error(f"{ln['sku']}: quantity must be a whole number", "lines")
                return None
            cond = self.query_one(f"#cond-{i}", Select).value
            items.append((str(ln["sku"]), qty, str(cond)))
        if not any(q for _s, q, _c in items):
            self.show_error("nothing received: enter the quantities that came back", "lines")
            return None
        return {"items": items}


class RefundReturnDialog(_ReturnDialog):
    """A refund (reason "return") of the received units; sent at once when approved."""

    TITLE_TEXT = "Refund"
    SUBMIT_LABEL = "Refund"
    SUBMIT_VARIANT = "warning"
    FIELD_PREFIXES = {"payment": ("payment",)}

    def __init__(
        self,
        number: str,
        perform: Perform | None,
        *,
        ret: Any,
        payments: Sequence[Any] = (),
        currency: str = "",
        may_approve: bool = False,
        shipping: int = 0,
    ) -> None:
        super().__init__(number, perform, ret=ret)
        self.payments = [p for p in payments if p.refundable > 0]
        self.currency = currency
        self.may_approve = may_approve
        self.shipping = shipping

    def compose_fields(self) -> ComposeResult:
        yield self.summary()
        ship = f" ({money(self.shipping, self.currency)})" if self.currency else ""
        yield Checkbox(
            f"Include shipping{escape(ship)}",
            id="shipping",
            compact=True,
            disabled=self.shipping <= 0 and bool(self.currency),
        )
        if len(self.payments) > 1:
            choices = [(p.label, p.payment_id) for p in self.payments]
            yield from self.field(
                "payment", "Refund to", Select(choices, prompt="Choose a payment", id="payment")
            )
        if self.may_approve:
            yield Checkbox("Approve now if above the limit", id="approve", value=True, compact=True)

    def on_mount(self) -> None:
        self.query_one("#submit", Button).focus()

    def collect(self) -> dict[str, Any] | None:
        payment_id = None
        for select in self.query("#payment").results(Select):
            if select.value is Select.NULL:
                self.show_error("choose the payment to refund", "payment")
                return None
            payment_id = int(select.value)  # type: ignore[arg-type]
        approve = any(b.value for b in self.query("#approve").results(Checkbox))
        return {
            "include_shipping": self.query_one("#shipping", Checkbox).value,
            "payment_id": payment_id,
            "approve": approve,
        }


LINE_RE = re.compile(r"^\s*([^:\s]+)\s*:\s*(\d+)\s*$")


def parse_replacement(text: str) -> list[tuple[str, int]]:
    """'TEE-L:1, MUG-RED:2' → [('TEE-L', 1), ('MUG-RED', 2)]; ValueError says why."""
    out: list[tuple[str, int]] = []
    for part in (p for p in re.split(r"[,\n]", text) if p.strip()):
        m = LINE_RE.match(part)
        if m is None:
            raise ValueError(f"write replacement lines as SKU:QTY, not {part.strip()!r}")
        out.append((m.group(1), int(m.group(2))))
    if not out:
        raise ValueError("name at least one replacement line (SKU:QTY)")
    return out


class ExchangeReturnDialog(_ReturnDialog):
    """Replacement lines: a new order with the returned value as credit."""

    TITLE_TEXT = "Exchange"
    SUBMIT_LABEL = "Exchange"
    FIELD_PREFIXES = {"replacement": ("write replacement", "name at least", "unknown sku", "sku")}

    def compose_fields(self) -> ComposeResult:
        yield self.summary()
        yield Static(
            "A new order is placed for the replacement, with what came back as credit; "
            "the difference is paid or refunded.",
            classes="dialog-message",
        )
        yield from self.field(
            "replacement",
            "Replacement lines (SKU:QTY, comma separated)",
            Input(id="replacement", placeholder="TEE-M:1, MUG-BLUE:2"),
        )

    def collect(self) -> dict[str, Any] | None:
        try:
            lines = parse_replacement(self.query_one("#replacement", Input).value)
        except ValueError as exc:
            self.show_error(str(exc), "replacement")
            return None
        return {"replacement": lines}
