"""The header's payment-sync indicator: in progress, last success, or the error.

The App owns the sync (a Textual worker) and its ``sync_status``; every
screen's Header gets one SyncIndicator that watches it. Times are relative to
the desk's clock (``app.desk.now()``), so frozen-clock tests render the same.
The indicator is only mounted when a gateway is configured ("off" is hidden).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from rich.cells import cell_len
from textual.markup import escape
from textual.widgets import Static

from pulse_tui.widgets.formatting import relative_time

Phase = Literal["off", "running", "ok", "error", "elsewhere"]
MAX_ERROR = 40  # the header is one line: the full text is in the tooltip


@dataclass(frozen=True)
class SyncStatus:
    """What the header says about the payment sync (the App's ``sync_status``)."""

    phase: Phase = "off"
    last_success: datetime | None = None
    error: str | None = None
    next_run: datetime | None = None  # for "error": when it is retried
    changed: int = 0  # orders the last run changed

    def text(self, now: datetime) -> str:
        if self.phase == "off":
            return "sync off"
        if self.phase == "running":
            return "syncing…"
        if self.phase == "elsewhere":
            return "sync running elsewhere"
        if self.phase == "ok":
            when = relative_time(self.last_success, now) if self.last_success else "just now"
            return f"synced {when}"
        # the retry time first: on a narrow header the error is what gets cut
        error = self.error or "failed"
        if len(error) > MAX_ERROR:
            error = error[: MAX_ERROR - 1] + "…"
        retry = ""
        if self.next_run is not None:
            secs = max(0, int((self.next_run - now).total_seconds()))
            retry = f", retry in {_span(secs)}"
        return f"sync error{retry}: {error}"


def _span(secs: int) -> str:
    if secs < 60:
        return f"{secs}s"
    if secs < 3600:
        return f"{secs // 60}m"
    return f"{secs // 3600}h"


class SyncIndicator(Static):
    """One line at the right of the Header; re-renders on every status change
    and every few seconds (so "synced 2m ago" keeps counting)."""

    TICK_S = 10.0

    def __init__(self, **kwargs: object) -> None:
        super().__init__("", **kwargs)  # type: ignore[arg-type]
        self._shown: tuple[str, str, str | None] | None = None  # phase, text, tooltip
        self._width = 0  # cells of the text shown

    def on_mount(self) -> None:
        self.watch(self.app, "sync_status", self._status_changed, init=True)
        self.set_interval(self.TICK_S, self._update, name="sync indicator tick")

    def _status_changed(self, status: SyncStatus) -> None:
        self._update()

    @property
    def status(self) -> SyncStatus:
        return getattr(self.app, "sync_status", SyncStatus())

    def _update(self) -> None:
        status = self.status
        now = self.app.desk.now()  # type: ignore[attr-defined]
        plain = status.text(now)
        text = escape(plain)
        tooltip = status.error if status.phase == "error" else None
        shown = self._shown
        if shown == (status.phase, text, tooltip):
            return  # the tick every few seconds: no restyle, no layout for the same words
        if shown is None or shown[0] != status.phase:
            self.set_classes(f"-{status.phase}")
            self.display = status.phase != "off"
        if shown is None or shown[1] != text:
            # the header lays out again only when the indicator's width changes
            self.update(text, layout=shown is None or self._width != cell_len(plain))
            self._width = cell_len(plain)
        if shown is None or shown[2] != tooltip:
            self.tooltip = tooltip
        self._shown = (status.phase, text, tooltip)

    @property
    def text(self) -> str:
        """What the indicator shows (tests, help)."""
        return str(self.render())


__all__ = ["SyncIndicator", "SyncStatus"]
