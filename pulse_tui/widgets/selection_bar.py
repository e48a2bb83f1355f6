"""The selection bar under the order list: how many orders are marked, and what next.

Shown whenever something is selected, so the count of a bulk selection is
always in sight (for a "select all matching" selection, the count of matches).
"""

from __future__ import annotations

from textual.widgets import Static

from pulse_tui.widgets.order_table import MARK, Marks
from pulse_tui.widgets.status_tabs import fmt_count


def selection_text(marks: Marks, scope: str = "") -> str:
    """'● 3 selected · …' for the bar; '' when nothing is selected."""
    if marks.all_matching:
        n = marks.count
        what = "counting…" if n is None else f"{fmt_count(n)} order{'' if n == 1 else 's'}"
        head = f"{MARK} All matching selected: {what}"
        if scope:
            head += f" ({scope})"
    elif marks.ids or marks.in_range:
        n = len(marks.ids)
        head = f"{MARK} {fmt_count(n)} selected"
        if marks.in_range:
            return f"{head} · range: move to extend, v ends it"
    else:
        return ""
    return f"{head} · b bulk actions · ctrl+space clears"


class SelectionBar(Static):
    """One line; hidden while nothing is selected."""

    def __init__(self, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__("", markup=False, **kwargs)
        self._text = ""

    def show(self, marks: Marks, scope: str = "") -> None:
        text = selection_text(marks, scope)
        if text != self._text:  # called on every query change: no layout pass for nothing
            self._text = text
            self.update(text)
        self.display = bool(text)
        self.set_class(marks.all_matching, "-all")

    @property
    def text(self) -> str:
        return str(self.render()) if self.display else ""
