"""The `/` filter bar: an input for the query language and the reason a query is bad.

The bar parses with ``domain.filters.parse_query`` (the same parser the CLI
uses) and posts ``FilterBar.Applied`` only for a query that parses; a bad one
shows the FilterError message next to the input and changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.message import Message
from textual.widgets import Input, Label

from pulse_tui.domain.filters import FilterError, OrderFilter, parse_query

PLACEHOLDER = "status:pending pay:paid country:DE total:>100 placed:7d sku: tag: customer: text"


class FilterBar(Horizontal):
    BINDINGS = [
        Binding("escape", "close", "Close filter", id="filter.close"),
    ]

    class Applied(Message):
        def __init__(self, text: str, filter: OrderFilter) -> None:
            super().__init__()
            self.text = text
            self.filter = filter

    class Closed(Message):
        pass

    def __init__(self, now: Callable[[], datetime], **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(**kwargs)
        self._now = now
        self.error: str | None = None

    def compose(self) -> ComposeResult:
        yield Label("/", id="filter-prompt")
        yield Input(placeholder=PLACEHOLDER, id="filter-input", select_on_focus=False)
        yield Label("", id="filter-error")

    @property
    def input(self) -> Input:
        return self.query_one("#filter-input", Input)

    def open(self, text: str | None = None) -> None:
        self.display = True
        if text is not None:
            self.input.value = text
            self.input.cursor_position = len(text)
        self.input.focus()

    def parse(self, text: str) -> OrderFilter | None:
        """The filter for ``text``, or None (and the message shown) if it is bad."""
        try:
            f = parse_query(text, self._now())
        except FilterError as exc:
            self.show_error(str(exc))
            return None
        self.show_error(None)
        return f

    def show_error(self, message: str | None) -> None:
        if message == self.error:
            return  # every Enter clears it: a relabel would lay the screen out again
        self.error = message
        label = self.query_one("#filter-error", Label)
        label.update(message or "")
        label.display = bool(message)
        self.set_class(bool(message), "-invalid")

    @on(Input.Changed, "#filter-input")
    def _changed(self, event: Input.Changed) -> None:
        event.stop()
        if not event.value.strip():
            self.show_error(None)

    @on(Input.Submitted, "#filter-input")
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        f = self.parse(event.value)
        if f is not None:
            self.post_message(self.Applied(event.value.strip(), f))

    def action_close(self) -> None:
        self.post_message(self.Closed())
