"""Status tabs with live counts: All, Pending, ..., On hold."""

from __future__ import annotations

from textual import on
from textual.message import Message
from textual.widgets import Tab, Tabs

from pulse_tui.domain.filters import OrderFilter
from pulse_tui.domain.status import OrderStatus

# (tab id, label); ids are the keys of Desk.status_counts
TABS: list[tuple[str, str]] = [
    ("all", "All"),
    ("pending", "Pending"),
    ("processing", "Processing"),
    ("shipped", "Shipped"),
    ("delivered", "Delivered"),
    ("cancelled", "Cancelled"),
    ("refunded", "Refunded"),
    ("on_hold", "On hold"),
]
TAB_IDS = [t for t, _ in TABS]


def tab_filter(tab: str, base: OrderFilter) -> OrderFilter | None:
    """The query filter narrowed to a tab; None when they cannot overlap
    (e.g. the query says status:pending and the tab is Shipped)."""
    if tab == "all":
        return base
    if tab == "on_hold":
        return None if base.on_hold is False else base.with_(on_hold=True)
    status = OrderStatus(tab)
    if base.statuses and status not in base.statuses:
        return None
    return base.with_(statuses=(status,))


SHORT = {
    "all": "All",
    "pending": "Pend",
    "processing": "Proc",
    "shipped": "Ship",
    "delivered": "Dlvd",
    "cancelled": "Canc",
    "refunded": "Rfnd",
    "on_hold": "Hold",
}


def fmt_count(n: int, compact: bool = False) -> str:
    """'1,234'; compact (narrow terminals): '1,234', '45k', '1.2M'."""
    if not compact or n < 10_000:
        return f"{n:,}"
    if n < 1_000_000:
        return f"{n // 1000}k"
    return f"{n / 1_000_000:.1f}M"


class StatusTabs(Tabs):
    """Tabs whose labels carry counts; posts ``StatusTabs.Changed`` with the tab id."""

    class Changed(Message):
        def __init__(self, tab: str) -> None:
            super().__init__()
            self.tab = tab

    def __init__(self, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*(Tab(label, id=f"tab-{tid}") for tid, label in TABS), **kwargs)
        self.can_focus = False
        self.counts: dict[str, int] = {}

    @property
    def current(self) -> str:
        active = self.active or "tab-all"
        return active.removeprefix("tab-")

    def select(self, tab: str) -> None:
        self.active = f"tab-{tab}"

    def step(self, delta: int) -> None:
        i = TAB_IDS.index(self.current)
        self.select(TAB_IDS[(i + delta) % len(TAB_IDS)])

    def set_counts(self, counts: dict[str, int] | None = None) -> None:
        """Relabel the tabs with counts (short labels when the terminal is narrow)."""
        if counts is not None:
            self.counts = dict(counts)
        compact = self.app.size.width < 110
        for tid, label in TABS:
            name = SHORT[tid] if compact else label
            n = self.counts.get(tid)
            text = name if n is None else f"{name} {fmt_count(n, compact)}"
            tab = self.query_one(f"#tab-{tid}", Tab)
            if tab.label.plain != text:  # a relabel is a layout pass and an underline move
                tab.label = text

    def on_resize(self) -> None:
        self.set_counts()

    def _on_tab_relabelled(self, event: Tab.Relabelled) -> None:
        # New counts change the labels' widths: put the underline under the
        # active tab at once. Tabs slides it (0.3 s, a frame every 16 ms), and
        # counts land while the operator types the next filter.
        event.prevent_default()
        event.stop()
        self._highlight_active(animate=False)

    @on(Tabs.TabActivated)
    def _activated(self, event: Tabs.TabActivated) -> None:
        event.stop()
        if event.tab is not None and event.tab.id:
            self.post_message(self.Changed(event.tab.id.removeprefix("tab-")))
