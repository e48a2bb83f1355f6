"""The order timeline: every OrderEvent, newest first.

Each event shows its kind, actor, relative and absolute time and message;
notes carry the ``note`` class (and a "NOTE" marker, so they stand out even in
the high-contrast theme without colour).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from textual.containers import Vertical
from textual.markup import escape
from textual.widgets import Static

from pulse_tui.storage.models import OrderEvent
from pulse_tui.widgets.formatting import absolute_time, relative_time

# Event kinds whose raw name reads badly: customer emails (issue 7).
KIND_LABELS: dict[str, str] = {
    "note": "NOTE",
    "notification_sent": "email sent",
    "notification_failed": "email FAILED",
    "notification_skipped": "email skipped",
    "notification_queued": "email queued",
    "message_queued": "message to customer",
}


def kind_label(kind: str) -> str:
    """'email sent' for notification_sent; other kinds with spaces for underscores."""
    return KIND_LABELS.get(kind) or kind.replace("_", " ")


def event_markup(event: OrderEvent, now: datetime) -> str:
    kind = kind_label(event.kind)
    head = (
        f"[b]{escape(kind)}[/] · {escape(event.actor)} "
        f"[$foreground-muted]· {relative_time(event.at, now)} · {absolute_time(event.at)}[/]"
    )
    return f"{head}\n{escape(event.message)}"


def event_classes(event: OrderEvent) -> str:
    classes = f"event event-{event.kind}"
    if event.kind == "note":
        classes += " note"
    return classes


class TimelineEvent(Static):
    def __init__(self, event: OrderEvent, now: datetime) -> None:
        super().__init__(event_markup(event, now), classes=event_classes(event))
        self.event_kind = event.kind
        self.event_message = event.message

    def show(self, event: OrderEvent, now: datetime) -> None:
        """Show another event in this widget (a reload shifts them down)."""
        if event.kind != self.event_kind:
            self.set_classes(event_classes(event))
        self.update(event_markup(event, now))
        self.event_kind = event.kind
        self.event_message = event.message


class Timeline(Vertical):
    """A titled list of TimelineEvent widgets, one per event.

    ``show`` reuses the widgets already there (a reload after an action adds
    one event and shifts the others down): it updates them in place and
    mounts or removes only the difference.
    """

    def __init__(self, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(**kwargs)
        self.border_title = "Timeline"
        self.add_class("detail-panel", update=False)  # not mounted yet: nothing to restyle

    async def show(self, events: Sequence[OrderEvent], now: datetime) -> None:
        shown = [w for w in self.children if isinstance(w, TimelineEvent)]
        empty = [w for w in self.children if not isinstance(w, TimelineEvent)]
        if not events:
            if shown:
                await self.remove_children(shown)
            if not empty:
                await self.mount(Static("No events.", classes="event-empty"))
            return
        if empty:
            await self.remove_children(empty)
        for widget, event in zip(shown, events, strict=False):
            widget.show(event, now)
        if len(shown) > len(events):
            await self.remove_children(shown[len(events) :])
        elif len(events) > len(shown):
            await self.mount_all([TimelineEvent(e, now) for e in events[len(shown) :]])

    @property
    def events(self) -> list[TimelineEvent]:
        return list(self.query(TimelineEvent))
