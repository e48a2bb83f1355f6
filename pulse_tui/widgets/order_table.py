"""OrderTable: a table that shows a bounded window of a keyset-paginated list.

The database may hold a million matching orders; the table only ever holds
``RowWindow.max_rows`` of them (plus one page fetched ahead per direction).
``RowWindow`` is the pure bookkeeping (which rows are held, the keyset cursors
at both ends, the absolute position when known); ``OrderTable`` is a Line-API
ScrollView over the window that asks its screen for more rows
(``OrderTable.NeedRows``) a page-down before the cursor reaches an edge. It
paints each row from pre-built segments: Textual's DataTable rendered every
cell through Rich and dropped its caches on every row added or removed.
Columns adapt to the width: narrow terminals drop the least essential ones.

Marks (the selection for bulk actions) are kept by order id in ``Marks``, not
by row: a marked row is painted from its cached cells with a glyph in the
first cell and the ``order-table--marked`` background, so marks cost nothing
when paging. A "select all matching" selection is the query itself (every row
shown is marked) and never loads the orders it covers.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from rich.cells import cell_len, set_cell_size
from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding
from textual.content import Content
from textual.geometry import Region, Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from pulse_tui.domain.filters import OrderFilter, Sort
from pulse_tui.storage.queries import Cursor, OrderRow, Page
from pulse_tui.widgets.formatting import absolute_time, money, relative_time
from pulse_tui.widgets.status_badge import STYLE, badge_markup, label

PAGE_ROWS = 50
MAX_PAGES = 5  # the window: at most 250 rows, whatever the database holds
EDGE = 10  # fetch more when the cursor is this close to a window edge
MARK = "●"  # painted in the first cell of a marked row


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
    """The rows held in memory: a few pages around the viewport (and at most
    one page fetched ahead per direction), never more."""

    def __init__(self, page_rows: int = PAGE_ROWS, max_pages: int = MAX_PAGES) -> None:
        self.page_rows = page_rows
        self.max_rows = page_rows * max_pages
        self.rows: list[OrderRow] = []
        self.start: int | None = 0  # absolute index of rows[0], when known
        self.more_before = False
        self.more_after = False
        # A page fetched ahead of the cursor ("after" / "before"), merged when
        # the cursor gets near that edge: at most one per direction.
        self.pending: dict[str, Page] = {}

    def __len__(self) -> int:
        return len(self.rows)

    def reset(self, page: Page, *, at_top: bool = True, total: int | None = None) -> None:
        self.rows = list(page.rows)
        self.pending.clear()
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
        self.pending.clear()
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
            self.pending.pop("before", None)  # it no longer joins the first row
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
            self.pending.pop("after", None)  # it no longer joins the last row
        return added

    def first_cursor(self, sort: Sort) -> Cursor | None:
        return cursor_of(self.rows[0], sort) if self.rows else None

    def last_cursor(self, sort: Sort) -> Cursor | None:
        return cursor_of(self.rows[-1], sort) if self.rows else None


class Marks:
    """The orders selected for a bulk action.

    Either explicit ids (``space``, ``v`` ranges), or a query ("every order
    matching this filter", ``*``) whose rows are never loaded. A range is
    vim's visual mode: the rows between its anchor and the cursor are marked
    on top of the marks made before it; moving back shrinks it again."""

    def __init__(self) -> None:
        self.ids: set[int] = set()
        self.all_matching = False
        self.query: OrderFilter | None = None  # the filter of an all-matching selection
        self.query_count: int | None = None  # its number of matches, once counted
        self.anchor: int | None = None  # the order id a range started at
        self._base: set[int] = set()  # the marks made before the range
        self._range: set[int] = set()  # the ids the range covers now
        self._anchor_above = True  # the anchor's side when it scrolled out of the window

    def __bool__(self) -> bool:
        return self.all_matching or bool(self.ids)

    @property
    def in_range(self) -> bool:
        return self.anchor is not None

    @property
    def count(self) -> int | None:
        """How many orders are selected (None while an all-matching count runs)."""
        return self.query_count if self.all_matching else len(self.ids)

    def is_marked(self, order_id: int) -> bool:
        return self.all_matching or order_id in self.ids

    def toggle(self, order_id: int) -> bool:
        """Mark or unmark one order; True if it is marked now."""
        self.end_range()
        self.all_matching = False
        if order_id in self.ids:
            self.ids.discard(order_id)
            return False
        self.ids.add(order_id)
        return True

    def select_all_matching(self, f: OrderFilter) -> None:
        self.clear()
        self.all_matching = True
        self.query = f

    def clear(self) -> None:
        self.ids = set()
        self.all_matching = False
        self.query = None
        self.query_count = None
        self.anchor = None
        self._base = set()
        self._range = set()

    def start_range(self, rows: list[OrderRow], cursor: int) -> None:
        if not 0 <= cursor < len(rows):
            return
        self.all_matching = False
        self.anchor = rows[cursor].id
        self._base = set(self.ids)
        self._range = set()
        self.extend_range(rows, cursor)

    def extend_range(self, rows: list[OrderRow], cursor: int) -> None:
        """The cursor moved (or the window paged): the range runs anchor..cursor."""
        if self.anchor is None or not 0 <= cursor < len(rows):
            return
        ids = [r.id for r in rows]
        if self.anchor in ids:
            a = ids.index(self.anchor)
            self._anchor_above = a <= cursor
            kept: set[int] = set()  # anchor and cursor both held: the range is all in view
        else:  # the anchor scrolled out of the window: it lies beyond that edge
            a = 0 if self._anchor_above else len(ids) - 1
            kept = self._range - set(ids)
        lo, hi = sorted((a, cursor))
        self._range = kept | set(ids[lo : hi + 1])
        self.ids = self._base | self._range

    def end_range(self) -> None:
        self.anchor = None
        self._base = set()
        self._range = set()


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
    """Columns with their cell widths (each cell is padded by one each side)."""
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
# A row's cells ready to paint: its segments (no row background) and width.
Cells = tuple[tuple[Segment, ...], int]
# The badge columns: each cell depends on this one field of the row alone.
BADGE_FIELDS = {"payment": "payment_status", "status": "status", "hold": "on_hold"}


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


def _fit(text: str, width: int, right: bool = False) -> str:
    """Pad or crop to exactly ``width`` terminal cells (wide characters count two)."""
    if cell_len(text) > width:
        return set_cell_size(text, width)
    pad = " " * (width - cell_len(text))
    return pad + text if right else text + pad


class OrderTable(ScrollView, can_focus=True):
    """A Line-API table over the RowWindow (Toolong's pattern).

    The virtual height is the window's row count plus the header line, so the
    scrollbar and ``scroll_y`` cover only the rows held. Each row is turned
    into a few segments once (cached by order id, version, layout width and
    clock), when it first shows or when its page is parked ahead of the
    cursor; ``render_line`` only looks them up and applies the row's
    background (zebra or cursor) under them. The next and previous pages are
    fetched a page-down ahead and parked (``add_page``), so the key that
    reaches an edge of the window brings them in within its own frame."""

    COMPONENT_CLASSES = {
        "order-table--header",
        "order-table--cursor",
        "order-table--even-row",
        "order-table--marked",
        "order-table--mark",
    }

    DEFAULT_CSS = """
    OrderTable {
        background: $surface;
        color: $foreground;
        overflow-x: hidden;
        overflow-y: auto;
        & > .order-table--header {
            text-style: bold;
            background: $panel;
            color: $foreground;
        }
        & > .order-table--even-row {
            background: $surface-lighten-1 50%;
        }
        &:dark > .order-table--even-row {
            background: $surface-darken-1 40%;
        }
        & > .order-table--marked {
            background: $secondary-muted;
            color: $foreground;
        }
        & > .order-table--mark {
            color: $text-secondary;
            text-style: bold;
        }
        & > .order-table--cursor {
            background: $block-cursor-blurred-background;
            color: $block-cursor-blurred-foreground;
            text-style: $block-cursor-blurred-text-style;
        }
        &:focus > .order-table--cursor {
            background: $block-cursor-background;
            color: $block-cursor-foreground;
            text-style: $block-cursor-text-style;
        }
    }
    """

    BINDINGS = [
        Binding("up", "cursor_up", "Cursor up", show=False),
        Binding("down", "cursor_down", "Cursor down", show=False),
        Binding("j", "cursor_down", "Cursor down", show=False, id="down"),
        Binding("k", "cursor_up", "Cursor up", show=False, id="up"),
        Binding("pageup", "page_up", "Page up", show=False),
        Binding("pagedown", "page_down", "Page down", show=False),
        Binding("home", "first_row", "First row", show=False),
        Binding("end", "last_row", "Last row", show=False),
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

    class RowHighlighted(Message):
        """The cursor moved to another row of the window."""

        def __init__(self, cursor_row: int, row: OrderRow | None) -> None:
            super().__init__()
            self.cursor_row = cursor_row
            self.row = row

    def __init__(self, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(**kwargs)
        self.window = RowWindow()
        self.sort = Sort()
        self.now: datetime | None = None
        self._cursor = 0
        self._layout_width = -1
        self._layout: list[tuple[Column, int]] = []
        # Pre-built rows by (order id, version, layout width, now): a refill
        # re-adds rows already seen, and babel's money formatting is not free.
        # Kept as bare segments, not Strips: a Strip carries eight small caches,
        # and whatever outlives a few frames is walked by every full GC pass.
        self._strips: dict[tuple[int, int, int, datetime], Cells] = {}
        self._header: Strip | None = None
        self._cursor_strip: tuple[Cells, Style, int, Strip] | None = None
        self._frame: tuple[int, Style, Style, Style, Style] | None = None
        self._focus_when_painted = False
        self._marked_strips: dict[tuple[int, int, int, datetime], Cells] = {}
        # A badge cell (payment, status, hold) by (column, value, width): the
        # theme's styles resolved once, not per row.
        self._badges: dict[
            tuple[str, object, int], tuple[tuple[tuple[str, Style | None], ...], int]
        ] = {}
        self.marks = Marks()

    def on_mount(self) -> None:
        super().on_mount()
        self.app.theme_changed_signal.subscribe(self, lambda _theme: self._restyle())

    def notify_style_update(self) -> None:
        # A pseudo-class (focus, hover) changed: row backgrounds are looked up
        # per line anyway; only the header has its style baked in. The cells'
        # own colours (theme variables) change with the theme alone.
        super().notify_style_update()
        self._header = None

    def _restyle(self) -> None:
        self._strips.clear()
        self._badges.clear()
        self._marked_strips.clear()
        self._cursor_strip = None
        self._header = None
        self.refresh()

    # -- feeding -----------------------------------------------------------

    @property
    def row_count(self) -> int:
        return len(self.window.rows)

    @property
    def cursor_row(self) -> int:
        return self._cursor

    @property
    def columns(self) -> dict[str, Column]:
        """The visible columns by key, labels as the header shows them."""
        self._ensure_layout()
        return {c.key: replace(c, label=self._label(c)) for c, _ in self._layout}

    def show_window(
        self, cursor_row: int = 0, now: datetime | None = None, *, keep_offset: bool = False
    ) -> None:
        """Show the window's rows (at most max_rows), the cursor on ``cursor_row``.

        With ``keep_offset`` the cursor stays on the same screen line, so
        fetching a page (which shifts row indexes) does not jump the view."""
        if now is not None:
            self.now = now
        offset = self._cursor - round(self.scroll_y) if keep_offset else None
        self._ensure_layout(force=True)
        self._set_height()
        self._cursor = max(0, min(cursor_row, self.row_count - 1))
        if offset is not None:
            self.scroll_to(y=max(0, self._cursor - offset), animate=False, force=True)
        elif self._cursor == 0:
            self.scroll_to(y=0, animate=False, force=True)
        else:
            self._scroll_cursor_into_view()
        self.refresh()
        self.post_message(self.RowHighlighted(self._cursor, self.current))

    def extend_window(self, page: Page) -> int:
        """Add the next page at the bottom.

        The rows the window drops at the top go; the cursor and the scroll
        offset move up by as many lines, so the same orders stay where they
        were on screen. Returns how many rows were dropped."""
        dropped = len(self.window.append_rows(page))
        self._set_height()
        self._cursor = max(0, min(self._cursor - dropped, self.row_count - 1))
        if dropped:
            y = max(0, round(self.scroll_y) - dropped)
            self.scroll_to(y=y, animate=False, force=True)
        self.refresh()
        return dropped

    def add_page(self, page: Page, direction: str) -> bool:
        """A page fetched for an edge ("after" or "before") arrived.

        If the cursor already waits at that edge the page joins the window
        now; otherwise it is parked and joins on the key that reaches the edge,
        inside that key's frame. Fetched ahead like this, a page costs no frame
        of its own (the scrollbar is the only thing it would change) and the
        cursor never stops at a window edge while a page is on its way.
        Returns whether the page joined the window."""
        if direction == "after":
            if self._cursor >= self.row_count - EDGE:
                self.extend_window(page)
                return True
        elif self._cursor < EDGE:
            self.prepend_window(page)
            return True
        self.window.pending[direction] = page
        # Format its rows now, while the operator reads: the key that brings
        # them on screen then only paints them.
        for row in page.rows:
            self._row_cells(row)
        return False

    def prepend_window(self, page: Page) -> int:
        """Add the previous page at the top, the cursor kept on its screen line."""
        added = self.window.prepend(page)
        self.show_window(self._cursor + added, keep_offset=True)
        return added

    def _take_pending(self, row: int) -> int:
        """Merge a parked page if ``row`` is near its edge; ``row`` in the new window."""
        pending = self.window.pending
        if row >= self.row_count - EDGE and "after" in pending:
            return row - self.extend_window(pending.pop("after"))
        if row < EDGE and "before" in pending:
            return row + self.prepend_window(pending.pop("before"))
        return row

    def _set_height(self) -> None:
        self.virtual_size = Size(0, self.row_count + 1)  # +1: the header line
        # Keep the pre-built rows of the window and the parked pages only (a
        # row paged out and back is rebuilt when it shows): whatever outlives
        # a few frames is walked by every full GC pass.
        limit = self.window.max_rows + 2 * self.window.page_rows
        if len(self._strips) > limit or len(self._marked_strips) > limit:
            held = {row.id for row in self.window.rows}
            held.update(row.id for page in self.window.pending.values() for row in page.rows)
            self._strips = {k: v for k, v in self._strips.items() if k[0] in held}
            self._marked_strips = {k: v for k, v in self._marked_strips.items() if k[0] in held}

    def _ensure_layout(self, force: bool = False) -> None:
        width = self.size.width or (self.app.size.width if self.is_attached else 120)
        if not force and width == self._layout_width:
            return
        if width != self._layout_width:
            self._strips.clear()
            self._marked_strips.clear()
        self._layout_width = width
        self._layout = layout(width)
        self._header = None

    def on_resize(self) -> None:
        if self.size.width != self._layout_width and self.window.rows:
            self.show_window(self._cursor)

    # -- rendering ---------------------------------------------------------

    def _label(self, col: Column) -> str:
        arrow = "↓" if self.sort.descending else "↑"
        return f"{col.label} {arrow}" if col.key == self.sort.key else col.label

    def _header_strip(self) -> Strip:
        if self._header is None:
            segs = []
            for col, w in self._layout:
                segs.append(Segment(f" {_fit(self._label(col), w, col.right)} "))
            style = self.get_component_rich_style("order-table--header")
            self._header = Strip(segs).apply_style(style)
        return self._header

    def _row_cells(self, row: OrderRow) -> Cells:
        """The row's cells as unstyled-background segments, built once."""
        now = self.now or self.app.desk.now()  # type: ignore[attr-defined]
        key = (row.id, row.version, self._layout_width, now)
        cells = self._strips.get(key)
        if cells is None:
            cells = self._strips[key] = self._build_cells(row, now)
        if not self.marks.is_marked(row.id):
            return cells
        marked = self._marked_strips.get(key)
        if marked is None:
            # the glyph takes the first cell's leading pad: no column to make room for
            glyph = Segment(MARK, self.get_component_rich_style("order-table--mark"))
            segs, length = cells
            first = segs[0]
            rest = (Segment(first.text[1:], first.style),) if len(first.text) > 1 else ()
            marked = self._marked_strips[key] = ((glyph, *rest, *segs[1:]), length)
        return marked

    def _build_cells(self, row: OrderRow, now: datetime) -> Cells:
        """One row as few segments as possible: the plain cells (and the pads
        around the badges) run together into one unstyled segment; a paged
        row costs a few string joins, and every later stage (row style,
        filters, compositor cuts) works per segment."""
        segs: list[Segment] = []
        plain: list[str] = []
        length = 0
        for col, w in self._layout:
            field = BADGE_FIELDS.get(col.key)
            if field is None:
                plain.append(f" {_fit(cell(row, col, w, now), w, col.right)} ")  # type: ignore[arg-type]
                length += w + 2  # _fit makes it exactly w cells
                continue
            pieces, cells = self._badge(col, w, getattr(row, field), row, now)
            length += cells
            for text, style in pieces:
                if style is None:
                    plain.append(text)
                else:
                    if plain:
                        segs.append(Segment("".join(plain)))
                        plain = []
                    segs.append(Segment(text, style))
        if plain:
            segs.append(Segment("".join(plain)))
        return tuple(segs), length

    def _badge(
        self, col: Column, width: int, value: object, row: OrderRow, now: datetime
    ) -> tuple[tuple[tuple[str, Style | None], ...], int]:
        """A badge cell's pieces (text, style), pads included, and its width in
        cells; the same for every row with this value, so built once per
        value, width and theme."""
        key = (col.key, value, width)
        badge = self._badges.get(key)
        if badge is None:
            content = cell(row, col, width, now)
            if isinstance(content, Content):
                text = content.truncate(width, pad=True)
                parts: list[tuple[str, Style | None]] = [(" ", None)]
                for part, style in text.render(end="", parse_style=self._get_style):
                    parts.append((part, style.rich_style if style else None))
                parts.append((" " * max(0, width - text.cell_length) + " ", None))
                pieces = tuple(parts)
            else:
                pieces = ((f" {_fit(content, width, col.right)} ", None),)
            badge = self._badges[key] = (pieces, sum(cell_len(text) for text, _ in pieces))
        return badge

    def focus_when_painted(self) -> None:
        """Take the focus once a frame has painted the table's rows.

        A focus change repaints the whole screen (and the footer's keys): done
        with new rows it made their frame several times dearer. The rows go
        first; the focus follows in the next frame."""
        self._focus_when_painted = True
        self.refresh()

    def render_lines(self, crop: Region) -> list[Strip]:
        # One frame's lines share the width and the row styles: look them up
        # once per frame instead of per line (``rich_style`` walks the
        # ancestors' backgrounds every time it is asked).
        self._frame = None
        try:
            lines = super().render_lines(crop)
        finally:
            self._frame = None
        if self._focus_when_painted:
            self._focus_when_painted = False
            self.focus()  # set after this frame (Widget.focus defers it)
        return lines

    def _frame_styles(self) -> tuple[int, Style, Style, Style, Style]:
        """(width, plain row, even row, marked row, cursor) styles."""
        frame = self._frame
        if frame is None:
            component = self.get_component_rich_style
            frame = (
                self.scrollable_content_region.width,
                self.rich_style,
                component("order-table--even-row"),
                component("order-table--marked"),
                component("order-table--cursor"),
            )
            self._frame = frame
        return frame

    def render_line(self, y: int) -> Strip:
        width, plain, even, marked, cursor = self._frame_styles()
        if y == 0:
            return self._header_strip().adjust_cell_length(
                width, self.get_component_rich_style("order-table--header")
            )
        index = round(self.scroll_y) + y - 1
        rows = self.window.rows
        if not 0 <= index < len(rows):
            return Strip.blank(width, plain)
        if index == self._cursor:
            # the cursor's colours go over the cells' own (a badge coloured
            # like the cursor would vanish); the style swap is cached
            bare = self._row_cells(rows[index])
            cached = self._cursor_strip
            if cached and cached[0] is bare and cached[1] == cursor and cached[2] == width:
                return cached[3]
            segs = Segment.apply_style(bare[0], post_style=cursor)
            strip = Strip(segs, bare[1]).adjust_cell_length(width, cursor)
            self._cursor_strip = (bare, cursor, width, strip)
            return strip
        if self.marks.is_marked(rows[index].id):
            style = marked
        elif ((self.window.start or 0) + index) % 2 == 0:
            style = even
        else:
            style = plain
        segs, length = self._row_cells(rows[index])
        return Strip(Segment.apply_style(segs, style), length).adjust_cell_length(width, style)

    # -- cursor --------------------------------------------------------------

    @property
    def current(self) -> OrderRow | None:
        rows = self.window.rows
        return rows[self._cursor] if 0 <= self._cursor < len(rows) else None

    @property
    def absolute_row(self) -> int | None:
        if self.window.start is None or not self.window.rows:
            return None
        return self.window.start + self._cursor

    def _visible_rows(self) -> int:
        return max(1, self.scrollable_content_region.height - 1)

    def _scroll_cursor_into_view(self) -> None:
        top = round(self.scroll_y)
        visible = self._visible_rows()
        if self._cursor < top:
            self.scroll_to(y=self._cursor, animate=False, force=True)
        elif self._cursor >= top + visible:
            self.scroll_to(y=self._cursor - visible + 1, animate=False, force=True)

    def move_cursor(self, *, row: int, animate: bool = False, scroll: bool = True) -> None:
        """Put the cursor on a row of the window; ask for more rows near an edge."""
        del animate  # the cursor never animates; kept for DataTable's signature
        if not self.row_count:
            return
        row = self._take_pending(row)
        old, self._cursor = self._cursor, max(0, min(row, self.row_count - 1))
        if scroll:
            self._scroll_cursor_into_view()
        if old != self._cursor:
            self.refresh_line(old + 1)
            self.refresh_line(self._cursor + 1)
            self.post_message(self.RowHighlighted(self._cursor, self.current))
        # fetch one page-down ahead of the edge, so the page is parked in time
        ahead = EDGE + self._visible_rows()
        window = self.window
        if self._cursor >= self.row_count - ahead and window.more_after:
            if "after" not in window.pending:
                self.post_message(self.NeedRows("after"))
        elif self._cursor < ahead and window.more_before and "before" not in window.pending:
            self.post_message(self.NeedRows("before"))

    def refresh_row(self, row: int) -> None:
        """Repaint one row of the window (its mark changed)."""
        self._cursor_strip = None
        self.refresh_line(row + 1)

    def action_cursor_down(self) -> None:
        self.move_cursor(row=self._cursor + 1)

    def action_cursor_up(self) -> None:
        self.move_cursor(row=self._cursor - 1)

    def _page(self, delta: int) -> None:
        self._take_pending(self._cursor + delta)  # the rows it moves into, if parked
        target = max(0, min(self._cursor + delta, self.row_count - 1))
        # the cursor keeps its screen line when the list can scroll that far
        self.scroll_to(y=round(self.scroll_y) + target - self._cursor, animate=False, force=True)
        self.move_cursor(row=target)

    def action_page_down(self) -> None:
        self._page(self._visible_rows())

    def action_page_up(self) -> None:
        self._page(-self._visible_rows())

    def action_first_row(self) -> None:
        self.move_cursor(row=0)

    def action_last_row(self) -> None:
        self.move_cursor(row=self.row_count - 1)

    def action_select_cursor(self) -> None:
        row = self.current
        if row is not None:
            self.post_message(self.Opened(row))

    def on_click(self, event: events.Click) -> None:
        if event.y < 1:
            return
        index = round(self.scroll_y) + event.y - 1
        if index == self._cursor:
            self.action_select_cursor()
        elif 0 <= index < self.row_count:
            self.move_cursor(row=index)
