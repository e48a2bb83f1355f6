"""Customer emails in the desk: the notifications screen and the compose/resend dialogs.

``NotificationsScreen`` lists the outbox across orders (failed first, then
newest; ``desk.notifications.list_notifications``), by status tab with counts:
the work list of screens/worklist.py, like the refunds screen. ``y`` puts a
failed email back in the queue (the same message, same Message-ID), ``R``
sends a copy of a sent or failed one (a new notification), ``enter`` opens
the order. Both confirm first and run in a thread worker; the delivery worker
(app.py) sends them on its next run.

``ComposeDialog`` writes a free message to the order's customer: subject and
body arrive prefilled from ``compose_draft`` (the detail screen fetches it in a
thread first), ``ctrl+s`` (or the Send button) calls ``compose``.
``ResendDialog`` picks one of an order's emails and sends it again (a failed
one is retried, a sent one resent).

Which keys are offered comes from ``Actor.can`` and the row's status; the
services refuse anything else anyway.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.markup import escape
from textual.widgets import DataTable, Input, OptionList, Static, TextArea
from textual.widgets.option_list import Option

from pulse_tui.messages import OrderChanged
from pulse_tui.screens.dialogs import ActionDialog, Perform
from pulse_tui.screens.worklist import LIMIT, WorkListScreen, worklist_bindings
from pulse_tui.services.notifications import WRITE_PERMISSION
from pulse_tui.widgets.formatting import absolute_time, relative_time

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


class NotificationsScreen(WorkListScreen):
    """Every customer email across orders, by status; failed ones first."""

    PREFIX = "notifications"
    SCREEN_TITLE = "Customer emails"
    TABS = TABS
    TABLE = NotificationTable
    COLUMNS = [
        ("id", "#", None),
        ("order", "Order", None),
        ("what", "Email", None),
        ("status", "Status", None),
        ("tries", "Tries", None),
        ("when", "When", None),
        ("why", "Error / subject", 36),
        ("to", "To", None),
    ]
    STATUS_STYLE = NOTIFY_STYLE
    ROW_ACTIONS = {
        "retry": (SEND_PERMISSION, RETRYABLE),
        "resend": (SEND_PERMISSION, RESENDABLE),
    }
    BINDINGS = worklist_bindings(
        "notifications",
        [
            Binding("y", "retry", "Retry", id="notifications.retry"),
            Binding("R", "resend", "Resend", id="notifications.resend", key_display="R"),
        ],
    )

    # -- the work list's hooks ---------------------------------------------------------

    def fetch(self, desk: Any, tab: str) -> tuple[list[Any], dict[str, int]]:
        svc = desk.notifications
        status = None if tab == "all" else tab
        rows = list(svc.list_notifications(status=status, limit=LIMIT))
        return rows, dict(svc.counts())

    def row_cells(self, n: Any, now: datetime) -> Sequence[Any]:
        when = getattr(n, "sent_at", None) or n.created_at
        why = (n.last_error if n.status == "failed" else None) or n.subject or ""
        return (
            str(n.id),
            getattr(n, "order_number", None) or "—",
            what_label(n),
            Text(n.status, style=self.status_style(n.status)),
            Text(str(n.attempts), justify="right"),
            relative_time(when, now),
            Text(why, no_wrap=True, overflow="ellipsis"),
            n.to_addr,
        )

    def empty_text(self, label: str) -> str:
        if self.tab != "all":
            return f"No {label.lower()} emails."
        return "No customer emails yet."

    def info_text(self, n: Any) -> str:
        if self.now is None:
            return ""
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
        return "\n".join(parts)

    def confirm_number(self, n: Any) -> str:
        return getattr(n, "order_number", None) or f"email #{n.id}"

    def after_done(self, n: Any) -> None:
        if getattr(n, "order_id", None) and getattr(n, "order_number", None):
            self.post_message(OrderChanged(n.order_id, n.order_number))
        self.load()

    # -- actions -------------------------------------------------------------------

    def action_retry(self) -> None:
        n = self.current
        if n is None:
            return
        desk = self.app.desk  # type: ignore[attr-defined]
        why = escape(n.last_error or "no reason given")
        self.confirm(
            n,
            lambda: desk.notifications.retry(n.id),
            lambda result: describe_notification(result, "queued again"),
            title="Retry email",
            message=f"Email #{n.id} ({escape(what_label(n))}) to {escape(n.to_addr)} "
            f"{escape(n.status)}: {why}.\nPut it back in the queue?",
            yes="Retry",
        )

    def action_resend(self) -> None:
        n = self.current
        if n is None:
            return
        desk = self.app.desk  # type: ignore[attr-defined]
        self.confirm(
            n,
            lambda: desk.notifications.resend(n.id),
            lambda result: describe_notification(result, "queued as a new copy"),
            title="Resend email",
            message=f"Send email #{n.id} ({escape(what_label(n))}) to "
            f"{escape(n.to_addr)} again, as a new copy?",
            yes="Resend",
        )
