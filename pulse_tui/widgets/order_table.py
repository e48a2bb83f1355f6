"""OrderTable: a table that shows a bounded window of a keyset-paginated list.

The database may hold a million matching orders; the table only ever holds
``RowWindow.max_rows`` of them. ``RowWindow`` is the pure bookkeeping (which
rows are held, the keyset cursors at both ends, the absolute position when
known); ``OrderTable`` is a DataTable fed from the window, which asks its
screen for more rows (``OrderTable.NeedRows``) when the cursor nears an edge.
Columns adapt to the width: narrow terminals drop the least essential ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from textual.binding import Binding
from textual.content import Content
from textual.message import Message
from textual.widgets import DataTable

from pulse_tui.domain.filters import Sort
from pulse_tui.storage.queries import Cursor, OrderRow, Page
from pulse_tui.widgets.formatting import absolute_time, money, relative_time
from pulse_tui.widgets.status_badge import STYLE, badge_markup, label

PAGE_ROWS = 50
MAX_PAGES = 5  # the window: at most 250 rows, whatever the database holds
EDGE = 10  # fetch more when the cursor is this close to a window edge


def cursor_of(row: OrderRow, sort: Sort) -> Cursor:
    """The keyset position of a row under a sort (as storage.queries builds it)."""
    value = {"placed": row.id, "total": row.total, "status": row.status}[sort.key]
    return Cursor(value, row.id)


def cursor_including(row: OrderRow, sort: Sort) -> Cursor:
    """An ``after`` cursor whose page starts *with* this row (for reloads in place).

    The id breaks ties in the sort's direction, so nudging it by one past the
    row's own id includes the row itself."""
    c = cursor_of(row, sort)
    nudge = 1 if sort.descending else -1
    value = c.value + nudge if sort.key == "placed" else c.value
    return Cursor(value, row.id + nudge)


class RowWindow:
    """The rows held in memory: a few pages around the viewport, never more."""

    def __init__(self, page_rows: int = PAGE_ROWS, max_pages: int = MAX_PAGES) -> None:
        self.page_rows = page_rows
        self.max_rows = page_rows * max_pages
        self.rows: list[OrderRow] = []
        self.start: int | None = 0  # absolute index of rows[0], when known
        self.more_before = False
        self.more_after = False

    def __len__(self) -> int:
        return len(self.rows)

    def reset(self, page: Page, *, at_top: bool = True, total: int | None = None) -> None:
        self.rows = list(page.rows)
        if at_top:
            self.start = 0
            self.more_before = False
            self.more_after = page.next_cursor is not None
        else:  # the last rows (G): fetched with the sort reversed, then put back in order
            self.start = None if total is None else max(0, total - len(self.rows))
            self.more_before = page.prev_cursor is not None
            self.more_after = False

    def replace(self, page: Page, *, more_before: bool) -> None:
        """Reload in place (after an order changed): same start, fresh rows."""
        self.rows = list(page.rows)
        self.more_before = more_before
        self.more_after = page.next_cursor is not None

    def append(self, page: Page) -> int:
        """Add the next page; returns how many rows were dropped at the front."""
        return len(self.append_rows(page))

    def append_rows(self, page: Page) -> list[OrderRow]:
        """Add the next page; returns the rows dropped at the front."""
        self.rows.extend(page.rows)
        self.more_after = page.next_cursor is not None
        drop = max(0, len(self.rows) - self.max_rows)
        dropped = self.rows[:drop]
        if drop:
            del self.rows[:drop]
            self.more_before = True
            if self.start is not None:
                self.start += drop
        return dropped

    def prepend(self, page: Page) -> int:
        """Add the previous page; returns how many rows were added at the front."""
        added = len(page.rows)
        self.rows[:0] = page.rows
        self.more_before = page.prev_cursor is not None
        if self.start is not None:
            self.start = max(0, self.start - added)
        drop = max(0, len(self.rows) - self.max_rows)
        if drop:
            del self.rows[-drop:]
            self.more_after = True
        return added

    def first_cursor(self, sort: Sort) -> Cursor | None:
        return cursor_of(self.rows[0], sort) if self.rows else None

    def last_cursor(self, sort: Sort) -> Cursor | None:
        return cursor_of(self.rows[-1], sort) if self.rows else None


# -- columns -----------------------------------------------------------------


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    width: int  # 0: flexible (shares what is left)
    min_total: int  # shown when the table is at least this wide
    right: bool = False


def columns_for(width: int) -> list[Column]:
    """The columns for a table this wide: essentials first, extras when there is room."""
    cols = [
        Column("number", "Number", 9, 0),
        Column("placed", "Placed", 26 if width >= 140 else 20 if width >= 100 else 9, 0),
        Column("customer", "Customer", 0, 0),
        Column("items", "Items", 0, 100),
        Column("total", "Total", 12, 0, right=True),
        Column("payment", "Payment", 10, 100),
        Column("status", "Status", 10, 0),
        Column("country", "Ctry", 4, 0),
        Column("hold", "Hold", 4, 0),
    ]
    return [c for c in cols if width >= c.min_total]


def layout(width: int) -> list[tuple[Column, int]]:
    """Columns with their cell widths (DataTable pads each cell by one each side)."""
    cols = columns_for(width)
    fixed = sum(c.width for c in cols) + 2 * len(cols) + 2  # +2: the scrollbar
    flex = [c for c in cols if c.width == 0]
    spare = max(0, width - fixed)
    if len(flex) > 1 and spare < 30:  # too tight for both: keep the customer
        cols = [c for c in cols if c.key != "items"]
        return layout_of(cols, spare + 2 + 0)
    return layout_of(cols, spare)


def layout_of(cols: list[Column], spare: int) -> list[tuple[Column, int]]:
    flex = [c for c in cols if c.width == 0]
    out: list[tuple[Column, int]] = []
    for c in cols:
        if c.width:
            out.append((c, c.width))
        elif len(flex) == 1:
            out.append((c, max(8, spare)))
        elif c.key == "customer":
            out.append((c, spare // 2))
        else:
            out.append((c, spare - spare // 2))
    return out


PAY_SHORT = {"partially_refunded": "part refd", "authorized": "authorized"}


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(1, width - 1)] + "…"


def cell(row: OrderRow, col: Column, width: int, now: datetime) -> Content | str:
    if col.key == "number":
        return row.number
    if col.key == "placed":
        rel = relative_time(row.placed_at, now)
        if width >= 26:
            return f"{rel:>9} {absolute_time(row.placed_at)}"
        if width >= 20:
            return f"{rel:>9} {absolute_time(row.placed_at)[:10]}"
        return rel
    if col.key == "customer":
        return _clip(row.customer_name, width)
    if col.key == "items":
        return _clip(row.items_summary, width)
    if col.key == "total":
        return f"{money(row.total, row.currency):>{width}}"
    if col.key == "payment":
        text = PAY_SHORT.get(row.payment_status, label(row.payment_status))
        return Content.from_markup(
            f"[b {STYLE.get(('pay', row.payment_status), '$foreground')}]{text}[/]"
        )
    if col.key == "status":
        return Content.from_markup(badge_markup("status", row.status))
    if col.key == "country":
        return row.country
    if col.key == "hold":
        if not row.on_hold:
            return ""
        return Content.from_markup(f"[b {STYLE[('hold', 'on_hold')]}]hold[/]")
    raise KeyError(col.key)  # pragma: no cover


class OrderTable(DataTable[Content | str]):
    """A DataTable over the RowWindow; row keys are order ids."""

    BINDINGS = [
        Binding("j", "cursor_down", "Cursor down", show=False, id="down"),
        Binding("k", "cursor_up", "Cursor up", show=False, id="up"),
        Binding("enter", "select_cursor", "Open", id="open"),
    ]

    class NeedRows(Message):
        """The cursor is near an edge of the window: fetch the next/previous page."""

        def __init__(self, direction: str) -> None:
            super().__init__()
            self.direction = direction  # "after" or "before"

    class Opened(Message):
        def __init__(self, row: OrderRow) -> None:
            super().__init__()
            self.row = row

    def __init__(self, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(cursor_type="row", zebra_stripes=True, **kwargs)
        self.window = RowWindow()
        self.sort = Sort()
        self.now: datetime | None = None
        self._layout_width = -1
        self._layout: list[tuple[Column, int]] = []
        self._suppress_edges = False
        # Formatted cells by (order id, version, layout width, now): a refill
        # re-adds rows already seen, and babel's money formatting is not free.
        self._cells: dict[tuple[int, int, int, datetime], tuple[Content, ...]] = {}

    # -- feeding -----------------------------------------------------------

    def show_window(
        self, cursor_row: int = 0, now: datetime | None = None, *, keep_offset: bool = False
    ) -> None:
        """Rebuild the table from the window (at most max_rows rows).

        With ``keep_offset`` the cursor stays on the same screen line, so
        fetching a page (which shifts row indexes) does not jump the view."""
        if now is not None:
            self.now = now
        offset = self.cursor_row - round(self.scroll_y) if keep_offset else None
        self._suppress_edges = True
        try:
            self._ensure_columns(force=True)
            self._add_window_rows()
            if self.row_count:
                row = max(0, min(cursor_row, self.row_count - 1))
                self.move_cursor(row=row, animate=False, scroll=offset is None)
                if offset is not None:
                    # dimensions update on the next refresh; scroll once they have
                    y = max(0, row - offset)
                    self.call_after_refresh(self.scroll_to, y=y, animate=False, force=True)
        finally:
            self._suppress_edges = False

    def _ensure_columns(self, force: bool = False) -> None:
        width = self.size.width or (self.app.size.width if self.is_attached else 120)
        if not force and width == self._layout_width:
            return
        self._layout_width = width
        self._layout = layout(width)
        self.clear(columns=True)
        arrow = "↓" if self.sort.descending else "↑"
        sort_col = {"placed": "placed", "total": "total", "status": "status"}[self.sort.key]
        for col, w in self._layout:
            label = f"{col.label} {arrow}" if col.key == sort_col else col.label
            self.add_column(Content(label), width=w, key=col.key)

    def extend_window(self, page: Page) -> int:
        """Add the next page at the bottom without rebuilding the table.

        Only the new rows are added and the rows the window drops at the top
        removed; the cursor and the scroll offset move up by as many lines,
        so the same orders stay where they were on screen. Returns how many
        rows were dropped."""
        row = self.cursor_row
        dropped = self.window.append_rows(page)
        self._suppress_edges = True
        try:
            with self.app.batch_update():
                for r in dropped:
                    self.remove_row(str(r.id))
                self._add_rows(page.rows)
                if self.row_count:
                    target = max(0, min(row - len(dropped), self.row_count - 1))
                    self.move_cursor(row=target, animate=False, scroll=False)
                    if dropped:
                        y = max(0, round(self.scroll_y) - len(dropped))
                        self.scroll_to(y=y, animate=False, force=True, immediate=True)
        finally:
            self._suppress_edges = False
        return len(dropped)

    def _add_window_rows(self) -> None:
        self._add_rows(self.window.rows)

    def _add_rows(self, rows: list[OrderRow]) -> None:
        now = self.now or self.app.desk.now()  # type: ignore[attr-defined]
        if len(self._cells) > 4 * self.window.max_rows:
            self._cells.clear()
        width = self._layout_width
        for r in rows:
            key = (r.id, r.version, width, now)
            cells = self._cells.get(key)
            if cells is None:
                # Plain strings would be parsed as markup by DataTable; customer
                # names and product names are data, so wrap them as Content.
                raw = (cell(r, c, w, now) for c, w in self._layout)
                cells = tuple(v if isinstance(v, Content) else Content(v) for v in raw)
                self._cells[key] = cells
            self.add_row(*cells, key=str(r.id))

    def on_resize(self) -> None:
        if self.size.width != self._layout_width and self.window.rows:
            self.show_window(self.cursor_row)

    # -- reading -----------------------------------------------------------

    @property
    def current(self) -> OrderRow | None:
        rows = self.window.rows
        return rows[self.cursor_row] if 0 <= self.cursor_row < len(rows) else None

    @property
    def absolute_row(self) -> int | None:
        if self.window.start is None or not self.window.rows:
            return None
        return self.window.start + self.cursor_row

    def watch_cursor_coordinate(self, old, new) -> None:  # type: ignore[no-untyped-def]
        super().watch_cursor_coordinate(old, new)
        if self._suppress_edges:
            return
        if new.row >= self.row_count - EDGE and self.window.more_after:
            self.post_message(self.NeedRows("after"))
        elif new.row < EDGE and self.window.more_before:
            self.post_message(self.NeedRows("before"))

    def action_select_cursor(self) -> None:
        row = self.current
        if row is not None:
            self.post_message(self.Opened(row))
