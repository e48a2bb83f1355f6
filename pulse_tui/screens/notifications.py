"""Customer emails in the desk: the notifications screen and the compose/resend dialogs.

``NotificationsScreen`` lists the outbox across orders (failed first, then
newest; ``desk.notifications.list_notifications``), by status tab with counts,
like the refunds screen. ``y`` puts a failed email back in the queue (the same
message, same Message-ID), ``R`` sends a copy of a sent or failed one (a new
notification), ``enter`` opens the order. Both confirm first and run in a
thread worker; the delivery worker (app.py) sends them on its next run.

``ComposeDialog`` writes a free message to the order's customer: subject and
body arrive prefilled from ``compose_draft`` (the detail screen fetches it in a
thread first), ``ctrl+s`` (or the Send button) calls ``compose``.
``ResendDialog`` picks one of an order's emails and sends it again (a failed
one is retried, a sent one resent).

Which keys are offered comes from ``Actor.can`` and the row's status; the
services refuse anything else anyway.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.markup import escape
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Input, OptionList, Static, TextArea
from textual.widgets.option_list import Option
from textual.worker import Worker, WorkerState

from pulse_tui.messages import OpenOrder, OrderChanged
from pulse_tui.screens.dialogs import ActionDialog, ConfirmDialog, Outcome, Perform
from pulse_tui.services.errors import ServiceError
from pulse_tui.services.notifications import WRITE_PERMISSION
from pulse_tui.widgets.formatting import absolute_time, relative_time

LIST_GROUP = "notifications-load"
LIMIT = 500
MUTED = "$foreground-muted"

# Who may queue, retry and resend customer emails (the services' own
# permission); the screen only hides what they would refuse anyway.
SEND_PERMISSION = WRITE_PERMISSION

# notification status -> theme variable
NOTIFY_STYLE: dict[str, str] = {
    "queued": "accent",
    "sending": "accent",
    "sent": "success",
    "failed": "error",
    "skipped": "foreground-muted",
}

# what the services accept: retry puts a failed or skipped email back in the
# queue (same Message-ID); resend queues a new copy of a finished one
RETRYABLE = ("failed", "skipped")
RESENDABLE = ("sent", "failed", "skipped")

# (tab id, label, short label for narrow terminals); "sending" is a moment's
# state (or a crashed sender's lease, re-sent when it lapses): All shows it
TABS: list[tuple[str, str, str]] = [
    ("all", "All", "All"),
    ("failed", "Failed", "Fail"),
    ("queued", "Queued", "Queue"),
    ("sent", "Sent", "Sent"),
    ("skipped", "Skipped", "Skip"),
]
TAB_IDS = [t for t, _, _ in TABS]


def notification_badge(status: str) -> str:
    """'[b $error]failed[/]' — a notification's status, coloured by the theme."""
    return f"[b ${NOTIFY_STYLE.get(status, 'foreground')}]{escape(status)}[/]"


def what_label(n: Any) -> str:
    """What the email is: its template's human name ('Order confirmation')."""
    title = getattr(n, "title", None)
    if title:
        return str(title)
    return str(getattr(n, "template", None) or "message").replace("_", " ").capitalize()


def describe_notification(n: Any, done: str) -> tuple[str, str]:
    """(one line for a notification toast, level) after an action."""
    head = f"Email #{n.id} ({what_label(n)}) to {n.to_addr}"
    if n.status == "skipped":
        why = getattr(n, "last_error", None) or "the customer gets no transactional email"
        return f"{head} skipped: {why}", "warning"
    if n.status == "failed":
        return f"{head} failed: {getattr(n, 'last_error', None) or 'no reason given'}", "error"
    return f"{head} {done}", "information"


def send_again(desk: Any, notification_id: int, status: str) -> Any:
    """A failed (or skipped) email is retried (the same message back in the
    queue); a sent one is resent (a new copy). In a thread."""
    if status in RETRYABLE:
        return desk.notifications.retry(notification_id)
    return desk.notifications.resend(notification_id)


def tab_count(tab: str, counts: dict[str, int]) -> int:
    if tab == "all":
        return sum(counts.values())
    return counts.get(tab, 0)


# -- compose and resend dialogs -----------------------------------------------------


class ComposeDialog(ActionDialog):
    """A free message to the order's customer: subject and body (prefilled
    from the order's details). ``perform(subject=..., body=...)`` queues it."""

    TITLE_TEXT = "Email customer"
    SUBMIT_LABEL = "Send"
    FIELD_PREFIXES: ClassVar[dict[str, tuple[str, ...]]] = {
        "subject": ("subject",),
        "body": ("body", "message"),
    }
    HINT = "ctrl+s send · tab next field · esc close"
    BINDINGS = [
        Binding("escape", "close", "Close", id="compose.close"),
        Binding("ctrl+s", "submit", "Send", id="compose.send"),
    ]

    def __init__(
        self, number: str, perform: Perform | None, *, to: str, subject: str, body: str
    ) -> None:
        super().__init__(number, perform)
        self.to = to
        self.subject = subject
        self.body = body

    def compose_fields(self) -> ComposeResult:
        yield Static(f"[{MUTED}]To[/] {escape(self.to)}", classes="dialog-message")
        yield from self.field("subject", "Subject", Input(self.subject, id="subject"))
        yield from self.field(
            "body",
            "Message",
            TextArea(self.body, id="body", soft_wrap=True, show_line_numbers=False),
        )

    @on(Input.Submitted, "#subject")
    def _subject_submitted(self, event: Input.Submitted) -> None:
        # enter in the subject moves on to the message rather than sending
        event.stop()
        self.query_one("#body", TextArea).focus()

    def collect(self) -> dict[str, Any] | None:
        subject = self.query_one("#subject", Input).value.strip()
        body = self.query_one("#body", TextArea).text
        if not subject:
            self.show_error("subject: write a subject", "subject")
            return None
        if not body.strip():
            self.show_error("message: write a message", "body")
            return None
        return {"subject": subject, "body": body}


class ResendDialog(ActionDialog):
    """One of the order's emails, then ``perform(notification_id=..., status=...)``:
    a failed one is retried, a sent one resent as a new copy."""

    TITLE_TEXT = "Send email again"
    SUBMIT_LABEL = "Send again"
    HINT = "↑↓ pick · enter send again · esc close"

    def __init__(
        self, number: str, perform: Perform | None, *, notifications: Sequence[Any], now: datetime
    ) -> None:
        super().__init__(number, perform)
        self.notifications = list(notifications)
        self.now = now

    def compose_fields(self) -> ComposeResult:
        yield Static(
            "A failed email goes back in the queue; a sent one is sent again as a copy.",
            classes="dialog-message",
        )
        options = []
        for n in self.notifications:
            when = getattr(n, "sent_at", None) or n.created_at
            why = ""
            if n.status == "failed" and getattr(n, "last_error", None):
                why = f" — {n.last_error}"
            options.append(
                Option(
                    f"#{n.id} {escape(what_label(n))} {notification_badge(n.status)}"
                    f"[{MUTED}] {escape(relative_time(when, self.now))}{escape(why)}[/]",
                    id=str(n.id),
                )
            )
        yield from self.field("notification", "Email", OptionList(*options, id="notification"))

    def on_mount(self) -> None:
        super().on_mount()
        self.query_one("#notification", OptionList).highlighted = 0

    @on(OptionList.OptionSelected, "#notification")
    def _option_selected(self) -> None:
        self.action_submit()

    def collect(self) -> dict[str, Any] | None:
        ol = self.query_one("#notification", OptionList)
        if ol.highlighted is None:
            self.show_error("choose an email")
            return None
        n = self.notifications[ol.highlighted]
        return {"notification_id": int(n.id), "status": str(n.status)}


# -- the notifications screen ----------------------------------------------------------


class NotificationTable(DataTable[Any]):
    """The outbox table; enter opens the email's order (shown in the footer)."""

    BINDINGS = [Binding("enter", "select_cursor", "Open order", id="notifications.open")]


@dataclass(frozen=True)
class NotificationsLoaded:
    rows: list[Any]  # NotificationRow
    counts: dict[str, int]
    now: datetime


class NotificationsScreen(Screen[None]):
    """Every customer email across orders, by status; failed ones first."""

    AUTO_FOCUS = "#notifications-table"
    BINDINGS = [
        Binding("escape", "back", "Back", id="notifications.back"),
        Binding("enter", "open_order", "Open order", id="notifications.open_order", show=False),
        Binding("y", "retry", "Retry", id="notifications.retry"),
        Binding("R", "resend", "Resend", id="notifications.resend", key_display="R"),
        Binding(
            "right_square_bracket",
            "next_tab",
            "Next tab",
            id="notifications.next_tab",
            key_display="]",
        ),
        Binding(
            "left_square_bracket",
            "prev_tab",
            "Prev tab",
            id="notifications.prev_tab",
            key_display="[",
            show=False,
        ),
        Binding("ctrl+r", "reload", "Reload", id="notifications.reload", show=False),
        Binding("j", "cursor(1)", "Down", id="notifications.down", show=False),
        Binding("k", "cursor(-1)", "Up", id="notifications.up", show=False),
    ]

    def __init__(self, tab: str = "all") -> None:
        super().__init__()
        self.tab = tab if tab in TAB_IDS else "all"
        self.rows: list[Any] = []
        self.counts: dict[str, int] = {}
        self.now: datetime | None = None
        self.loading_rows = False
        self._stale = False

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("", id="notifications-tabs")
        yield NotificationTable(id="notifications-table", cursor_type="row", zebra_stripes=True)
        yield Static("", id="notifications-empty")
        yield Static("", id="notifications-info")
        yield Footer(show_command_palette=False)

    def on_mount(self) -> None:
        self.title = "Customer emails"
        table = self.table
        for key, label in (
            ("id", "#"),
            ("order", "Order"),
            ("what", "Email"),
            ("status", "Status"),
            ("tries", "Tries"),
            ("when", "When"),
        ):
            table.add_column(label, key=key)
        table.add_column("Error / subject", key="why", width=36)
        table.add_column("To", key="to")
        self.query_one("#notifications-empty").display = False
        self.show_tabs()
        self.load()

    def on_resize(self) -> None:
        self.show_tabs()

    @property
    def table(self) -> DataTable[Any]:
        return self.query_one("#notifications-table", DataTable)

    # -- loading ---------------------------------------------------------------

    def load(self, *, quiet: bool = False) -> None:
        """Read the tab's rows and the counts in a thread; ``quiet`` (the
        delivery worker's refresh) shows no loading overlay meanwhile."""
        if not quiet:
            self.loading_rows = True
            self.table.loading = True
        self._load(self.app.desk, self.tab)  # type: ignore[attr-defined]

    @work(thread=True, exclusive=True, exit_on_error=False, group=LIST_GROUP)
    def _load(self, desk: Any, tab: str) -> NotificationsLoaded:
        svc = desk.notifications
        status = None if tab == "all" else tab
        rows = list(svc.list_notifications(status=status, limit=LIMIT))
        return NotificationsLoaded(rows, dict(svc.counts()), desk.now())

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        worker = event.worker
        if worker.group != LIST_GROUP or event.state not in (
            WorkerState.SUCCESS,
            WorkerState.ERROR,
        ):
            return
        self.loading_rows = False
        self.table.loading = False
        if event.state == WorkerState.SUCCESS:
            self.show_rows(worker.result)
        else:
            error = worker.error
            text = error.message if isinstance(error, ServiceError) else f"could not load: {error}"
            self.notify(text, severity="error")
            self.show_info(escape(text))
        self.refresh_bindings()

    def _style(self, status: str) -> str:
        variables = self.app.get_css_variables()
        colour = variables.get(NOTIFY_STYLE.get(status, "foreground"), "")
        return f"bold {colour}".strip()

    def show_rows(self, loaded: NotificationsLoaded) -> None:
        keep = self.current.id if self.current else None
        self.rows, self.counts, self.now = loaded.rows, loaded.counts, loaded.now
        self.show_tabs()
        table = self.table
        table.clear()
        for n in loaded.rows:
            when = getattr(n, "sent_at", None) or n.created_at
            why = (n.last_error if n.status == "failed" else None) or n.subject or ""
            table.add_row(
                str(n.id),
                getattr(n, "order_number", None) or "—",
                what_label(n),
                Text(n.status, style=self._style(n.status)),
                Text(str(n.attempts), justify="right"),
                relative_time(when, loaded.now),
                Text(why, no_wrap=True, overflow="ellipsis"),
                n.to_addr,
                key=str(n.id),
            )
        empty = self.query_one("#notifications-empty", Static)
        empty.display = not loaded.rows
        label = dict((t, lbl) for t, lbl, _ in TABS)[self.tab]
        empty.update(
            f"No {label.lower()} emails." if self.tab != "all" else "No customer emails yet."
        )
        if keep is not None:
            for i, n in enumerate(loaded.rows):
                if n.id == keep:
                    table.move_cursor(row=i)
                    break
        self.show_current()

    def show_tabs(self) -> None:
        narrow = self.size.width < 100
        parts = []
        for tid, label, short in TABS:
            text = f"{short if narrow else label} {tab_count(tid, self.counts)}"
            if tid == self.tab:
                parts.append(f"[reverse b] {escape(text)} [/]")
            else:
                parts.append(f" {escape(text)} ")
        self.query_one("#notifications-tabs", Static).update("".join(parts))

    # -- the highlighted email ------------------------------------------------------

    @property
    def current(self) -> Any | None:
        if not self.rows:
            return None
        row = self.table.cursor_row
        if 0 <= row < len(self.rows):
            return self.rows[row]
        return None

    @on(DataTable.RowHighlighted)
    def _highlighted(self) -> None:
        self.show_current()
        self.refresh_bindings()

    @on(DataTable.RowSelected)
    def _selected(self) -> None:
        self.action_open_order()

    def show_current(self) -> None:
        n = self.current
        if n is None or self.now is None:
            self.show_info("")
            return
        order = getattr(n, "order_number", None)
        head = [f"[b]#{n.id}[/]"]
        if order:
            head.append(escape(order))
        head += [notification_badge(n.status), escape(what_label(n)), f"→ {escape(n.to_addr)}"]
        parts = ["  ".join(head)]
        detail = [f"[{MUTED}]subject[/] {escape(n.subject)}"] if n.subject else []
        if n.status in ("queued", "sending") and getattr(n, "next_attempt_at", None):
            detail.append(f"[{MUTED}]next try[/] {absolute_time(n.next_attempt_at)}")
        if getattr(n, "sent_at", None):
            detail.append(f"[{MUTED}]sent[/] {absolute_time(n.sent_at)}")
        if n.attempts:
            detail.append(f"[{MUTED}]tries[/] {n.attempts}")
        parts.append("  ".join(detail))
        if n.status == "failed":
            parts.append(f"[$error]{escape(n.last_error or 'no reason given')}[/]")
        elif getattr(n, "last_error", None):
            parts.append(f"[{MUTED}]last error: {escape(n.last_error)}[/]")
        self.show_info("\n".join(parts))

    def show_info(self, text: str) -> None:
        self.query_one("#notifications-info", Static).update(text)

    # -- which keys are offered ------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        states = {"retry": RETRYABLE, "resend": RESENDABLE}
        if action == "open_order":
            n = self.current
            return (n is not None and bool(getattr(n, "order_number", None))) or None
        if action not in states:
            return True
        if not self.app.desk.actor.can(SEND_PERMISSION):  # type: ignore[attr-defined]
            return False
        n = self.current
        if n is None or self.loading_rows:
            return None
        return n.status in states[action] or None

    # -- actions -------------------------------------------------------------------

    def action_back(self) -> None:
        if len(self.app.screen_stack) > 1:
            self.app.pop_screen()

    def action_reload(self) -> None:
        self.load()

    def action_cursor(self, step: int) -> None:
        if step > 0:
            self.table.action_cursor_down()
        else:
            self.table.action_cursor_up()

    def show_tab(self, tab: str) -> None:
        if tab not in TAB_IDS:
            return
        self.tab = tab
        self.show_tabs()
        self.load()

    def action_next_tab(self) -> None:
        self.show_tab(TAB_IDS[(TAB_IDS.index(self.tab) + 1) % len(TAB_IDS)])

    def action_prev_tab(self) -> None:
        self.show_tab(TAB_IDS[(TAB_IDS.index(self.tab) - 1) % len(TAB_IDS)])

    def action_open_order(self) -> None:
        n = self.current
        if n is not None and getattr(n, "order_number", None):
            self.post_message(OpenOrder(n.order_number))

    def _confirm(
        self, n: Any, run: Callable[[], Any], *, title: str, message: str, yes: str, done: str
    ) -> None:
        number = getattr(n, "order_number", None) or f"email #{n.id}"

        def finished(outcome: Outcome | None) -> None:
            if outcome is None or outcome.kind != "done":
                return
            text, level = describe_notification(outcome.result, done)
            self.notify(text, severity=level)  # type: ignore[arg-type]
            if getattr(n, "order_id", None) and getattr(n, "order_number", None):
                self.post_message(OrderChanged(n.order_id, n.order_number))
            self.load()

        dialog = ConfirmDialog(number, lambda: run(), title=title, message=message, yes=yes)
        self.app.push_screen(dialog, finished)

    def action_retry(self) -> None:
        n = self.current
        if n is None:
            return
        desk = self.app.desk  # type: ignore[attr-defined]
        why = escape(n.last_error or "no reason given")
        self._confirm(
            n,
            lambda: desk.notifications.retry(n.id),
            title="Retry email",
            message=f"Email #{n.id} ({escape(what_label(n))}) to {escape(n.to_addr)} "
            f"{escape(n.status)}: {why}.\nPut it back in the queue?",
            yes="Retry",
            done="queued again",
        )

    def action_resend(self) -> None:
        n = self.current
        if n is None:
            return
        desk = self.app.desk  # type: ignore[attr-defined]
        self._confirm(
            n,
            lambda: desk.notifications.resend(n.id),
            title="Resend email",
            message=f"Send email #{n.id} ({escape(what_label(n))}) to "
            f"{escape(n.to_addr)} again, as a new copy?",
            yes="Resend",
            done="queued as a new copy",
        )

    class Refresh(Message, bubble=False):
        """Emails changed (here, on another screen or by the delivery worker)."""

        def __init__(self, *, quiet: bool = False) -> None:
            super().__init__()
            self.quiet = quiet

    @on(Refresh)
    def _refresh(self, message: Refresh) -> None:
        if self.is_current:
            self.load(quiet=message.quiet)
        else:
            self._stale = True  # reload when it is on top again

    def on_screen_resume(self) -> None:
        if self._stale:
            self._stale = False
            self.load()
