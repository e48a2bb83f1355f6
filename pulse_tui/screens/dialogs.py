"""Modal dialogs for the order detail's actions.

A dialog collects input and hands it to ``perform`` — a callable the detail
screen builds around one service call, with the order version it displayed.
The call runs in a thread worker; the dialog then

* dismisses with ``Outcome("done", order)`` on success,
* dismisses with ``Outcome("conflict", message=...)`` when the order changed
  underneath (the screen reloads and says so),
* stays open on InvalidInput / RuleViolation / Denied and shows the service's
  message next to the field it is about: nothing was changed.

Dialogs decide nothing about permissions or rules; the services do.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.markup import escape
from textual.screen import ModalScreen
from textual.widget import Widget
from textual.widgets import Button, Input, Label, OptionList, Select, Static
from textual.widgets.option_list import Option
from textual.worker import Worker, WorkerState

from pulse_tui.domain.status import CancelReason, Transition
from pulse_tui.services.errors import Conflict, ServiceError

DETAIL_CSS = Path(__file__).resolve().parent.parent / "themes" / "detail.tcss"
SUBMIT_GROUP = "dialog-submit"

# Transitions that need more than a click: the status dialog hands them to
# the dialog that asks for what they need (or confirms them).
ROUTED_ACTIONS = frozenset({"ship", "cancel", "deliver"})


@dataclass(frozen=True)
class Outcome:
    kind: Literal["done", "conflict", "route", "confirmed"]
    result: Any = None  # the service's return value (the changed Order) for "done"
    message: str = ""
    route: str = ""  # for "route": the Transition.action to continue with


Perform = Callable[..., Any]


class ActionDialog(ModalScreen[Outcome | None]):
    """Base: title, fields (``compose_fields``), an error line, buttons."""

    CSS_PATH = DETAIL_CSS
    BINDINGS = [Binding("escape", "close", "Close", id="dialog.close")]
    TITLE_TEXT: ClassVar[str] = ""
    SUBMIT_LABEL: ClassVar[str] = "Save"
    SUBMIT_VARIANT: ClassVar[str] = "primary"
    # error routing: field name -> message prefixes that belong to that field
    FIELD_PREFIXES: ClassVar[dict[str, tuple[str, ...]]] = {}
    HINT: ClassVar[str] = "enter save · esc close"
    FOCUS_SUBMIT: ClassVar[bool] = False

    def __init__(self, number: str, perform: Perform | None) -> None:
        super().__init__()
        self.number = number
        self._perform = perform
        self.busy = False

    # -- layout --------------------------------------------------------------

    def compose(self) -> ComposeResult:
        with Vertical(classes=f"dialog {type(self).__name__.lower()}"):
            yield Label(self.title_text(), classes="dialog-title")
            yield from self.compose_fields()
            yield Static("", id="dialog-error", classes="field-error")
            with Horizontal(classes="dialog-buttons"):
                yield Button(
                    self.SUBMIT_LABEL,
                    variant=self.SUBMIT_VARIANT,  # type: ignore[arg-type]
                    id="submit",
                    compact=True,
                )
                yield Button("Close", id="close", compact=True)
            yield Static(self.HINT, classes="dialog-hint")

    def title_text(self) -> str:
        return f"{self.TITLE_TEXT} — {escape(self.number)}"

    def compose_fields(self) -> ComposeResult:
        yield from ()

    @staticmethod
    def field(name: str, label: str, widget: Widget) -> ComposeResult:
        """A labelled field with its own error line underneath."""
        yield Label(label, classes="field-label")
        yield widget
        yield Static("", id=f"{name}-error", classes="field-error")

    def on_mount(self) -> None:
        if self.FOCUS_SUBMIT:
            self.query_one("#submit", Button).focus()
            return
        for widget in self.query("Input, Select, OptionList"):
            widget.focus()
            break

    # -- submitting ------------------------------------------------------------

    def collect(self) -> dict[str, Any] | None:
        """The keyword arguments for ``perform``; None when a field needs fixing."""
        return {}

    def action_close(self) -> None:
        if not self.busy:
            self.dismiss(None)

    @on(Button.Pressed, "#close")
    def _close_pressed(self) -> None:
        self.action_close()

    @on(Button.Pressed, "#submit")
    def _submit_pressed(self) -> None:
        self.action_submit()

    @on(Input.Submitted)
    def _input_submitted(self) -> None:
        self.action_submit()

    def action_submit(self) -> None:
        if self.busy:
            return
        self.clear_errors()
        values = self.collect()
        if values is None:
            return
        self.start(values)

    def start(self, values: dict[str, Any]) -> None:
        if self._perform is None:
            self.dismiss(Outcome("confirmed"))
            return
        self.busy = True
        self.query_one("#submit", Button).disabled = True
        self._run(self._perform, values)

    @work(thread=True, exclusive=True, exit_on_error=False, group=SUBMIT_GROUP)
    def _run(self, perform: Perform, values: dict[str, Any]) -> Any:
        return perform(**values)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        worker = event.worker
        if worker.group != SUBMIT_GROUP or event.state not in (
            WorkerState.SUCCESS,
            WorkerState.ERROR,
        ):
            return
        self.busy = False
        self.query_one("#submit", Button).disabled = False
        if event.state == WorkerState.SUCCESS:
            self.dismiss(Outcome("done", result=worker.result))
            return
        error = worker.error
        if isinstance(error, Conflict):
            self.dismiss(Outcome("conflict", message=error.message))
        elif isinstance(error, ServiceError):
            self.show_error(error.message)
        else:
            self.show_error(f"unexpected error: {error}")

    # -- errors ------------------------------------------------------------

    def clear_errors(self) -> None:
        for err in self.query(".field-error").results(Static):
            err.update("")
            err.remove_class("-shown")
        for widget in self.query("Input, Select").results(Widget):
            widget.remove_class("-invalid")

    def field_for(self, message: str) -> str | None:
        low = message.lower()
        for name, prefixes in self.FIELD_PREFIXES.items():
            if any(low.startswith(p) for p in prefixes):
                return name
        return None

    def show_error(self, message: str, field: str | None = None) -> None:
        """Put ``message`` under the field it is about (or under all fields)."""
        name = field or self.field_for(message)
        target = None
        if name is not None:
            found = self.query(f"#{name}-error").results(Static)
            target = next(iter(found), None)
        if target is None:
            target = self.query_one("#dialog-error", Static)
        target.update(escape(message))
        target.add_class("-shown")
        if name is not None:
            for widget in self.query(f"#{name}").results(Widget):
                widget.add_class("-invalid")
                widget.focus()

    def error_text(self, field: str | None = None) -> str:
        """The error shown for ``field`` (or the general one): tests and help."""
        widget = self.query_one(f"#{field}-error" if field else "#dialog-error", Static)
        return str(widget.render())


class ConfirmDialog(ActionDialog):
    """Yes/no. With ``perform`` it runs the action itself (mark delivered);
    without, it dismisses with ``Outcome("confirmed")`` (cancel's second step)."""

    BINDINGS = [
        Binding("escape", "close", "Close", id="dialog.close"),
        Binding("y", "submit", "Yes", id="dialog.yes"),
        Binding("n", "close", "No", id="dialog.no"),
    ]
    HINT = "y yes · n / esc no"

    def __init__(
        self,
        number: str,
        perform: Perform | None,
        *,
        title: str,
        message: str,
        yes: str = "Yes",
        destructive: bool = False,
    ) -> None:
        super().__init__(number, perform)
        self._title = title
        self._message = message
        self._yes = yes
        self._destructive = destructive

    def title_text(self) -> str:
        return f"{self._title} — {escape(self.number)}"

    def compose_fields(self) -> ComposeResult:
        yield Static(self._message, classes="dialog-message")

    def on_mount(self) -> None:
        submit = self.query_one("#submit", Button)
        submit.label = self._yes
        submit.variant = "error" if self._destructive else "primary"
        close = self.query_one("#close", Button)
        close.label = "No"
        # destructive: the safe answer has the focus, so a stray enter does nothing
        (close if self._destructive else submit).focus()


class NoteDialog(ActionDialog):
    TITLE_TEXT = "Add note"
    SUBMIT_LABEL = "Add note"
    FIELD_PREFIXES = {"note": ("note",)}

    def compose_fields(self) -> ComposeResult:
        yield from self.field("note", "Note (shown on the timeline)", Input(id="note"))

    def collect(self) -> dict[str, Any]:
        return {"text": self.query_one("#note", Input).value}


class HoldDialog(ActionDialog):
    TITLE_TEXT = "Put on hold"
    SUBMIT_LABEL = "Hold"
    SUBMIT_VARIANT = "warning"
    FIELD_PREFIXES = {"reason": ("hold reason",)}

    def compose_fields(self) -> ComposeResult:
        yield Static("Holds block fulfilment until released.", classes="dialog-message")
        yield from self.field("reason", "Reason", Input(id="reason"))

    def collect(self) -> dict[str, Any]:
        return {"reason": self.query_one("#reason", Input).value}


class ReleaseDialog(ActionDialog):
    TITLE_TEXT = "Release hold"
    SUBMIT_LABEL = "Release"
    FIELD_PREFIXES = {"note": ("note",)}

    def __init__(self, number: str, perform: Perform | None, *, hold_reason: str | None) -> None:
        super().__init__(number, perform)
        self.hold_reason = hold_reason

    def compose_fields(self) -> ComposeResult:
        yield Static(
            f"On hold: {escape(self.hold_reason or 'no reason given')}", classes="dialog-message"
        )
        yield from self.field("note", "Note (optional)", Input(id="note"))

    def collect(self) -> dict[str, Any]:
        note = self.query_one("#note", Input).value
        return {"note": note if note.strip() else None}


class TagDialog(ActionDialog):
    TITLE_TEXT = "Tags"
    SUBMIT_LABEL = "Apply"
    FIELD_PREFIXES = {"add": ("name at least one tag",)}

    def __init__(self, number: str, perform: Perform | None, *, tags: Sequence[str]) -> None:
        super().__init__(number, perform)
        self.tags = list(tags)

    def compose_fields(self) -> ComposeResult:
        current = ", ".join(self.tags) if self.tags else "none"
        yield Static(f"Current tags: {escape(current)}", classes="dialog-message")
        yield from self.field("add", "Add (space or comma separated)", Input(id="add"))
        yield from self.field("remove", "Remove", Input(id="remove"))

    @staticmethod
    def split(text: str) -> list[str]:
        return [t for t in re.split(r"[\s,]+", text) if t]

    def collect(self) -> dict[str, Any]:
        return {
            "add": self.split(self.query_one("#add", Input).value),
            "remove": self.split(self.query_one("#remove", Input).value),
        }

    def field_for(self, message: str) -> str | None:
        # "bad tag 'x!': ..." belongs to whichever field holds that tag
        m = re.match(r"bad tag (['\"])(.*?)\1", message)
        if m:
            bad = m.group(2)
            if bad in self.split(self.query_one("#remove", Input).value):
                return "remove"
            return "add"
        return super().field_for(message)


class ShipDialog(ActionDialog):
    TITLE_TEXT = "Ship"
    SUBMIT_LABEL = "Ship"
    FIELD_PREFIXES = {"carrier": ("carrier",), "tracking": ("tracking number",)}

    def compose_fields(self) -> ComposeResult:
        yield Static("Ships every unfulfilled line.", classes="dialog-message")
        yield from self.field("carrier", "Carrier", Input(id="carrier", placeholder="DHL, UPS…"))
        yield from self.field("tracking", "Tracking number", Input(id="tracking"))

    def collect(self) -> dict[str, Any]:
        return {
            "carrier": self.query_one("#carrier", Input).value,
            "tracking": self.query_one("#tracking", Input).value,
        }

    @on(Input.Submitted, "#carrier")
    def _carrier_submitted(self, event: Input.Submitted) -> None:
        # enter in the first field moves on rather than submitting half a form
        event.stop()
        self.query_one("#tracking", Input).focus()


class CancelDialog(ActionDialog):
    """Reason code + optional note, then a yes/no confirmation before the call."""

    TITLE_TEXT = "Cancel order"
    SUBMIT_LABEL = "Cancel order…"
    SUBMIT_VARIANT = "error"
    FIELD_PREFIXES = {"reason": ("unknown cancel reason",), "note": ("note",)}
    HINT = "enter continue · esc close"

    def __init__(self, number: str, perform: Perform | None, *, consequence: str = "") -> None:
        super().__init__(number, perform)
        self.consequence = consequence

    def compose_fields(self) -> ComposeResult:
        options = [(r.value.replace("_", " "), r.value) for r in CancelReason]
        yield from self.field(
            "reason", "Reason", Select(options, prompt="Choose a reason", id="reason")
        )
        yield from self.field("note", "Note (optional)", Input(id="note"))

    def collect(self) -> dict[str, Any] | None:
        reason = self.query_one("#reason", Select).value
        if reason is Select.NULL:
            self.show_error("choose a reason", "reason")
            return None
        note = self.query_one("#note", Input).value
        return {"reason": reason, "note": note if note.strip() else None}

    def start(self, values: dict[str, Any]) -> None:
        reason = str(values["reason"]).replace("_", " ")
        message = f"Cancel {escape(self.number)} ({escape(reason)})? This cannot be undone."
        if self.consequence:
            message += f"\n{escape(self.consequence)}"

        def confirmed(outcome: Outcome | None) -> None:
            if outcome is not None and outcome.kind == "confirmed":
                super(CancelDialog, self).start(values)

        self.app.push_screen(
            ConfirmDialog(
                self.number,
                None,
                title="Really cancel",
                message=message,
                yes="Yes, cancel order",
                destructive=True,
            ),
            confirmed,
        )


class StatusDialog(ActionDialog):
    """Offers exactly the transitions it is given (the services' offered list)."""

    TITLE_TEXT = "Change status"
    SUBMIT_LABEL = "Choose"
    HINT = "↑↓ pick · enter choose · esc close"

    def __init__(
        self, number: str, perform: Perform | None, *, current: str, offered: Sequence[Transition]
    ) -> None:
        super().__init__(number, perform)
        self.current = current
        self.offered = list(offered)

    def compose_fields(self) -> ComposeResult:
        yield Static(f"Now: [b]{escape(self.current)}[/]", classes="dialog-message")
        if not self.offered:
            yield Static("No status change is possible now.", classes="dialog-message")
            return
        options = [
            Option(f"{escape(t.label)}  [$foreground-muted]→ {t.target.value}[/]", id=str(i))
            for i, t in enumerate(self.offered)
        ]
        yield from self.field("transition", "Move to", OptionList(*options, id="transition"))

    def on_mount(self) -> None:
        super().on_mount()
        for ol in self.query("#transition").results(OptionList):
            ol.highlighted = 0

    def chosen(self) -> Transition | None:
        for ol in self.query("#transition").results(OptionList):
            if ol.highlighted is not None:
                return self.offered[ol.highlighted]
        return None

    @on(OptionList.OptionSelected, "#transition")
    def _option_selected(self) -> None:
        self.action_submit()

    def collect(self) -> dict[str, Any] | None:
        t = self.chosen()
        if t is None:
            self.show_error("nothing to choose")
            return None
        return {"target": t.target.value, "action": t.action}

    def start(self, values: dict[str, Any]) -> None:
        if values["action"] in ROUTED_ACTIONS:
            self.dismiss(Outcome("route", route=values["action"]))
            return
        super().start({"target": values["target"]})


class TransferDialog(ActionDialog):
    """Mark a bank transfer received: the transfer reference, then a yes/no.

    The reference is free text the services check (a card number is refused
    there); this dialog only insists that there is one."""

    TITLE_TEXT = "Mark transfer received"
    SUBMIT_LABEL = "Continue…"
    FIELD_PREFIXES = {"reference": ("reference", "transfer reference", "payment reference")}
    HINT = "enter continue · esc close"

    def __init__(self, number: str, perform: Perform | None, *, amount: str) -> None:
        super().__init__(number, perform)
        self.amount = amount

    def compose_fields(self) -> ComposeResult:
        yield Static(
            f"Record the bank transfer of [b]{escape(self.amount)}[/] for "
            f"{escape(self.number)}; the order moves to processing.",
            classes="dialog-message",
        )
        yield from self.field(
            "reference",
            "Transfer reference (from the bank statement)",
            Input(id="reference", placeholder=f"e.g. {self.number}"),
        )

    def collect(self) -> dict[str, Any] | None:
        reference = self.query_one("#reference", Input).value.strip()
        if not reference:
            self.show_error("enter the transfer reference", "reference")
            return None
        return {"gateway": "bank_transfer", "method": "bank_transfer", "reference": reference}

    def start(self, values: dict[str, Any]) -> None:
        message = (
            f"Mark {escape(self.number)} paid: {escape(self.amount)} received by bank "
            f"transfer (reference {escape(values['reference'])})?"
        )

        def confirmed(outcome: Outcome | None) -> None:
            if outcome is not None and outcome.kind == "confirmed":
                super(TransferDialog, self).start(values)

        self.app.push_screen(
            ConfirmDialog(
                self.number, None, title="Confirm payment", message=message, yes="Yes, mark paid"
            ),
            confirmed,
        )
