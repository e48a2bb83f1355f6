"""The order list: status tabs, `/` filter, sortable keyset-paged table.

Memory stays bounded whatever the database holds: the table keeps a window of
a few pages (``widgets.order_table.RowWindow``) and fetches the next or
previous page with keyset cursors as the cursor moves. All database work runs
in thread workers; results come back as messages, tagged with a generation
number so a stale page (the filter changed meanwhile) is dropped.

Selection for bulk actions (roles the bulk service serves only): ``space``
marks the row under the cursor and moves down, ``v`` starts a range (moving
extends it, ``v`` again ends it), ``*`` selects every order matching the
filter and tab (the query, not its rows), ``ctrl+space`` clears (terminals
send it as ``ctrl+@``, both are bound), ``b`` opens the bulk actions screen.
Marks made one by one survive a filter change (they are ids); an all-matching
selection is cleared, with a notice, when the filter or tab changes, since it
would otherwise silently become another set of orders.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Header, Static
from textual.worker import Worker, WorkerState, get_current_worker

from pulse_tui import messages
from pulse_tui.domain.filters import SORT_KEYS, OrderFilter, Sort
from pulse_tui.screens.bulk import BulkOutcome, BulkScreen, bulk_access
from pulse_tui.services.bulk import Selection
from pulse_tui.storage.queries import Page
from pulse_tui.widgets.filter_bar import FilterBar
from pulse_tui.widgets.footer import KeysFooter
from pulse_tui.widgets.order_table import PAGE_ROWS, Marks, OrderTable, cursor_including
from pulse_tui.widgets.selection_bar import SelectionBar
from pulse_tui.widgets.status_tabs import TABS, StatusTabs, fmt_count, tab_filter

LOADING_OVERLAY_DELAY_S = 0.25  # a load shorter than this never covers the table


@dataclass(frozen=True)
class Query:
    """What the list shows: the filter bar's filter, the tab and the sort."""

    filter: OrderFilter = OrderFilter()
    text: str = ""
    tab: str = "all"
    sort: Sort = Sort()

    @property
    def effective(self) -> OrderFilter | None:
        return tab_filter(self.tab, self.filter)

    def why_empty(self) -> str:
        f = self.effective
        tab = dict(TABS)[self.tab]
        if f is None:
            return f"The {tab} tab and the filter ({self.filter.describe()}) exclude each other."
        if f.is_empty():
            return "No orders yet."
        return f"No orders match: {f.describe()}."


class OrderListScreen(Screen[None]):
    AUTO_FOCUS = "OrderTable"
    BINDINGS = [
        Binding("slash", "filter", "Filter", id="list.filter", key_display="/"),
        Binding("s", "cycle_sort", "Sort", id="list.sort"),
        Binding("r", "reverse_sort", "Reverse", id="list.reverse"),
        Binding(
            "right_square_bracket", "next_tab", "Next tab", id="list.next_tab", key_display="]"
        ),
        Binding(
            "left_square_bracket",
            "prev_tab",
            "Prev tab",
            id="list.prev_tab",
            key_display="[",
            show=False,
        ),
        Binding("g", "top", "First order", id="list.top", show=False),
        Binding("G", "bottom", "Last order", id="list.bottom", show=False, key_display="G"),
        Binding("escape", "clear_filter", "Clear filter", id="list.clear_filter", show=False),
        Binding("ctrl+r", "reload", "Reload", id="list.reload", show=False),
        Binding("space", "toggle_mark", "Mark", id="list.mark", show=False),
        Binding("v", "mark_range", "Mark range", id="list.mark_range", show=False),
        Binding(
            "asterisk",
            "mark_all",
            "Select all matching",
            id="list.mark_all",
            key_display="*",
            show=False,
        ),
        Binding(
            "ctrl+space,ctrl+@",
            "clear_marks",
            "Clear selection",
            id="list.clear_marks",
            key_display="ctrl+space",
            show=False,
        ),
        Binding("b", "bulk", "Bulk…", id="list.bulk"),
    ]

    class Refresh(Message, bubble=False):
        """An order changed somewhere: re-fetch the visible window and the counts."""

        def __init__(self, order_id: int | None = None) -> None:
            super().__init__()
            self.order_id = order_id

    class Loaded(Message):
        def __init__(
            self,
            generation: int,
            page: Page,
            counts: dict[str, int] | None,
            position: str,
            now: datetime,
            more_before: bool,
        ) -> None:
            super().__init__()
            self.generation = generation
            self.page = page
            self.counts = counts
            self.position = position
            self.now = now
            self.more_before = more_before

    class CountsLoaded(Message):
        def __init__(self, generation: int, counts: dict[str, int]) -> None:
            super().__init__()
            self.generation = generation
            self.counts = counts

    class SelectionCounted(Message):
        def __init__(self, query: OrderFilter, count: int) -> None:
            super().__init__()
            self.query = query
            self.count = count

    class MoreLoaded(Message):
        def __init__(self, generation: int, page: Page, direction: str) -> None:
            super().__init__()
            self.generation = generation
            self.page = page
            self.direction = direction

    def __init__(self) -> None:
        super().__init__()
        self.query_state = Query()
        self.generation = 0
        self.counts: dict[str, int] = {}
        self.is_loading = False
        self._fetching: str | None = None
        self._focus_after_load = False
        self._bulk_access: bool | None = None
        self._status_text: str | None = None
        self._started = False  # the first rows were shown (the App is told once)
        self._overlay_timer: Timer | None = None
        self._quiet = False  # loading, the previous rows still shown (no "loading…" yet)
        self._bar_after_load: bool | None = None  # the filter bar's display, with the rows

    # -- layout --------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Header()
        yield StatusTabs(id="status-tabs")
        yield FilterBar(now=self.app.desk.now, id="filter-bar")  # type: ignore[attr-defined]
        yield OrderTable(id="orders")
        yield Static("", id="empty", markup=False)
        yield SelectionBar(id="selection-bar")
        yield Static("", id="list-status")
        yield KeysFooter(show_command_palette=False)

    @property
    def table(self) -> OrderTable:
        return self.query_one(OrderTable)

    @property
    def filter_bar(self) -> FilterBar:
        return self.query_one(FilterBar)

    @property
    def tabs(self) -> StatusTabs:
        return self.query_one(StatusTabs)

    @property
    def marks(self) -> Marks:
        return self.table.marks

    def on_mount(self) -> None:
        self.filter_bar.display = False
        self.query_one("#empty").display = False
        self.query_one(SelectionBar).display = False
        self.tabs.set_counts()
        self.reload("top")

    # -- loading -------------------------------------------------------------

    def reload(self, position: str = "top") -> None:
        """Fetch counts and a first page: at the "top", the "bottom", or "keep"
        (the same rows in place, after an order changed)."""
        self.generation += 1
        self._fetching = None
        q = self.query_state
        self.table.sort = q.sort
        anchor = self.table.window.rows[0] if position == "keep" and self.table.window else None
        if position == "keep" and anchor is None:
            position = "top"
        if position != "keep":
            self.is_loading = True
            # rows on screen stay until the new ones replace them in one frame
            self._quiet = bool(self.table.window.rows)
            self._arm_overlay()
        self._load(self.generation, q, position, anchor, max(PAGE_ROWS, len(self.table.window)))
        self._update_status()

    def _arm_overlay(self) -> None:
        """Say "loading…" and cover the table only if the rows take long.

        Most pages arrive in a few milliseconds, even at a million orders.
        Painting the intermediate state first (the indicator over the table,
        focus taken away and given back, "loading…") cost layouts, footer
        rebuilds and a frame, and the rows then waited for the next frame
        slot: until the rows land (or this delay passes) the screen keeps
        showing what it showed, and then changes once."""
        if self._overlay_timer is not None:
            self._overlay_timer.stop()
        self._overlay_timer = self.set_timer(
            LOADING_OVERLAY_DELAY_S, self._show_overlay, name="list loading overlay"
        )

    def _show_overlay(self) -> None:
        self._overlay_timer = None
        if not self.is_loading:
            return
        self._quiet = False
        self._apply_deferred_view()
        if self._focus_after_load and self.table.display:
            self.table.focus()
        self.table.loading = True
        self._update_status()

    def _apply_deferred_view(self) -> None:
        """The filter bar change an applied filter put off until its rows."""
        if self._bar_after_load is not None:
            self.filter_bar.display = self._bar_after_load
            self._bar_after_load = None

    def _loading_done(self) -> None:
        self.is_loading = False
        self._quiet = False
        self._apply_deferred_view()
        if self._overlay_timer is not None:
            self._overlay_timer.stop()
            self._overlay_timer = None
        if self.table.loading:
            self.table.loading = False

    @work(thread=True, exclusive=True, exit_on_error=False, group="list-load")
    def _load(self, generation: int, q: Query, position: str, anchor, limit: int) -> None:  # type: ignore[no-untyped-def]
        desk = self.app.desk  # type: ignore[attr-defined]
        # The rows come first: counting a filter's matches per status can take
        # far longer than its first page (every match is visited), so the
        # counts follow in their own message. "bottom" needs the total first.
        counts = desk.status_counts(q.filter) if position == "bottom" else None
        if get_current_worker().is_cancelled:
            return
        f = q.effective
        more_before = False
        if f is None:
            page = Page([], None, None)
        elif position == "bottom":
            rev = Sort(q.sort.key, not q.sort.descending)
            p = desk.list_orders(f, rev, limit=PAGE_ROWS)
            page = Page(list(reversed(p.rows)), None, p.next_cursor)
            more_before = p.next_cursor is not None
        elif position == "keep":
            page = desk.list_orders(f, q.sort, limit=limit, after=cursor_including(anchor, q.sort))
            more_before = self.table.window.more_before
        else:
            page = desk.list_orders(f, q.sort, limit=PAGE_ROWS)
        self.post_message(self.Loaded(generation, page, counts, position, desk.now(), more_before))
        if counts is None and not get_current_worker().is_cancelled:
            self.post_message(self.CountsLoaded(generation, desk.status_counts(q.filter)))

    @on(Loaded)
    def _loaded(self, msg: Loaded) -> None:
        if msg.generation != self.generation:
            return  # a newer query superseded this one
        if msg.counts is not None:
            self.counts = msg.counts
            self.tabs.set_counts(msg.counts)
        elif msg.position != "keep":
            self.counts = {}  # the old filter's counts: not this list's total
        table = self.table
        window = table.window
        if msg.position == "keep":
            row = table.cursor_row
            window.replace(msg.page, more_before=msg.more_before)
            table.show_window(row, now=msg.now, keep_offset=True)
        elif msg.position == "bottom":
            window.reset(msg.page, at_top=False, total=self.total)
            table.show_window(len(window) - 1, now=msg.now)
        else:
            window.reset(msg.page, at_top=True)
            table.show_window(0, now=msg.now)
        self._loading_done()
        self._show_empty(not window.rows)
        # The loading overlay can take focus away from the table; give it back
        # when nothing else holds it, so the footer always shows the table's keys.
        if table.display and (self._focus_after_load or self.focused is None):
            table.focus_when_painted()
        self._focus_after_load = False
        # The table's keys (enter: Open) are inactive while it is loading; the
        # footer must hear that they are back.
        self.refresh_bindings()
        self._update_status()
        if not self._started:
            self._started = True
            started = getattr(self.app, "first_rows_shown", None)
            if started is not None:
                self.call_after_refresh(started)
            if window.rows:
                self._warm_detail(window.rows[0].number)

    @on(CountsLoaded)
    def _counts_loaded(self, msg: CountsLoaded) -> None:
        if msg.generation != self.generation:
            return
        self.counts = msg.counts
        self.tabs.set_counts(msg.counts)
        self._update_status()

    @on(OrderTable.NeedRows)
    def _need_rows(self, msg: OrderTable.NeedRows) -> None:
        if self.is_loading or self._fetching == msg.direction:
            return
        if msg.direction in self.table.window.pending:
            return  # fetched already, parked until the cursor gets there
        self._fetching = msg.direction
        window, sort = self.table.window, self.query_state.sort
        cursor = window.last_cursor(sort) if msg.direction == "after" else window.first_cursor(sort)
        self._more(self.generation, self.query_state, msg.direction, cursor)

    @work(thread=True, exclusive=True, exit_on_error=False, group="list-more")
    def _more(self, generation: int, q: Query, direction: str, cursor) -> None:  # type: ignore[no-untyped-def]
        f = q.effective
        if f is None or cursor is None:
            return
        desk = self.app.desk  # type: ignore[attr-defined]
        kwargs = {"after": cursor} if direction == "after" else {"before": cursor}
        page = desk.list_orders(f, q.sort, limit=PAGE_ROWS, **kwargs)
        self.post_message(self.MoreLoaded(generation, page, direction))

    @on(MoreLoaded)
    def _more_loaded(self, msg: MoreLoaded) -> None:
        self._fetching = None
        if msg.generation != self.generation:
            return
        table = self.table
        if not table.add_page(msg.page, msg.direction):
            return  # parked: nothing on screen changes until the cursor gets there
        if self.marks.in_range:  # the window moved under the range
            self.marks.extend_range(table.window.rows, table.cursor_row)
            table.refresh()
        self._update_status()

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state == WorkerState.ERROR:
            if event.worker.group == "selection-count":
                self.notify(
                    f"Could not count the selection: {event.worker.error}", severity="error"
                )
                return
            if event.worker.group == "list-more":
                self._fetching = None
            else:
                self._loading_done()
                if self._focus_after_load and self.table.display:
                    self.table.focus()
                self._focus_after_load = False
                self._update_status()
            self.notify(f"Could not load orders: {event.worker.error}", severity="error")

    # -- view state ------------------------------------------------------------

    @property
    def total(self) -> int | None:
        if self.query_state.effective is None:
            return 0
        return self.counts.get(self.query_state.tab)

    def _show_empty(self, empty: bool) -> None:
        self.table.display = not empty
        box = self.query_one("#empty", Static)
        box.display = empty
        if empty:
            hint = (
                "  Press esc to clear the filter." if not self.query_state.filter.is_empty() else ""
            )
            box.update(self.query_state.why_empty() + hint)
        elif self.focused is None or self.focused is box:
            self.table.focus()

    @work(thread=True, exit_on_error=False, group="detail-warm-up")
    def _warm_detail(self, number: str) -> None:
        """Read the first order as its detail screen would, once, in the
        background: a process's first read compiles its SQL statements and
        configures the ORM (about 60 ms at 1M orders against 7 ms later), so
        the first order the operator opens is not the slowest."""
        from pulse_tui.screens.order_detail import warm_up

        warm_up(self.app.desk, number)  # type: ignore[attr-defined]

    def _update_status(self) -> None:
        if self.is_loading and self._quiet:
            return  # it describes the rows on screen until the new ones land
        q = self.query_state
        parts: list[str] = []
        if self.is_loading:
            parts.append("loading…")
        else:
            total = self.total
            pos = self.table.absolute_row
            if total is not None and pos is not None and self.table.window.rows:
                parts.append(f"{fmt_count(pos + 1)} of {fmt_count(total)}")
            elif total is not None:
                parts.append(f"{fmt_count(total)} orders")
        arrow = "↓" if q.sort.descending else "↑"
        parts.append(f"sort {q.sort.key} {arrow}")
        if not q.filter.is_empty():
            parts.append(f"filter: {q.filter.describe()}")
        text = " · ".join(parts)
        if text != self._status_text:
            # one line of fixed height: no layout pass (it would repaint the screen)
            self._status_text = text
            self.query_one("#list-status", Static).update(text, layout=False)

    @on(OrderTable.RowHighlighted)
    def _highlighted(self) -> None:
        if self.marks.in_range:
            self.marks.extend_range(self.table.window.rows, self.table.cursor_row)
            self.table.refresh()
            self._show_selection()
        self._update_status()

    # -- events --------------------------------------------------------------

    @on(OrderTable.Opened)
    def _opened(self, msg: OrderTable.Opened) -> None:
        self.post_message(messages.OpenOrder(msg.row.number))

    @on(StatusTabs.Changed)
    def _tab_changed(self, msg: StatusTabs.Changed) -> None:
        if msg.tab != self.query_state.tab:
            self._set_query(
                Query(
                    self.query_state.filter, self.query_state.text, msg.tab, self.query_state.sort
                )
            )
            self.reload("top")

    @on(FilterBar.Applied)
    def _filter_applied(self, msg: FilterBar.Applied) -> None:
        # the table takes the focus once the new rows are painted (and the bar
        # hides, for an empty filter, in their frame)
        self._focus_after_load = True
        self.apply_filter(msg.text, msg.filter, with_rows=True)

    @on(FilterBar.Closed)
    def _filter_closed(self) -> None:
        bar = self.filter_bar
        if not self.query_state.text:
            bar.display = False
        bar.show_error(None)
        bar.input.value = self.query_state.text
        self.table.focus()

    def on_screen_resume(self) -> None:
        if self.table.display:
            self.table.focus()

    @on(Refresh)
    def _refresh(self, msg: Refresh) -> None:
        self.reload("keep")
        marks = self.marks
        if marks.all_matching and marks.query is not None:
            self._count_selection(marks.query)  # orders may have left or joined the query

    # -- API for the palette and tests ----------------------------------------------

    def apply_filter(self, text: str, f: OrderFilter, *, with_rows: bool = False) -> None:
        """Show the orders matching ``f``; ``with_rows``: the filter bar keeps
        its place until they are on screen."""
        q = self.query_state
        self._set_query(Query(f, text, q.tab, q.sort))
        bar = self.filter_bar
        if with_rows and self.table.window.rows:
            self._bar_after_load = bool(text)
        else:
            self._bar_after_load = None
            bar.display = bool(text)
        if bar.input.value != text:
            bar.input.value = text
        self.reload("top")

    def apply_query(self, text: str) -> bool:
        """Set the filter bar's text and apply it; False (message shown) if bad."""
        bar = self.filter_bar
        bar.display = True
        bar.input.value = text
        f = bar.parse(text)
        if f is None:
            return False
        self.apply_filter(text.strip(), f)
        return True

    def show_tab(self, tab: str) -> None:
        self.tabs.select(tab)

    # -- actions ---------------------------------------------------------------

    def action_filter(self) -> None:
        self.filter_bar.open()

    def action_clear_filter(self) -> None:
        if self.query_state.filter.is_empty():
            return
        self.filter_bar.show_error(None)
        self.apply_filter("", OrderFilter())

    def action_cycle_sort(self) -> None:
        q = self.query_state
        key = SORT_KEYS[(SORT_KEYS.index(q.sort.key) + 1) % len(SORT_KEYS)]
        self.query_state = Query(q.filter, q.text, q.tab, Sort(key, q.sort.descending))
        self.reload("top")

    def action_reverse_sort(self) -> None:
        q = self.query_state
        self.query_state = Query(q.filter, q.text, q.tab, Sort(q.sort.key, not q.sort.descending))
        self.reload("top")

    def action_next_tab(self) -> None:
        self.tabs.step(1)

    def action_prev_tab(self) -> None:
        self.tabs.step(-1)

    def action_top(self) -> None:
        if self.table.window.more_before:
            self.reload("top")
        elif self.table.row_count:
            self.table.move_cursor(row=0)

    def action_bottom(self) -> None:
        if self.table.window.more_after:
            self.reload("bottom")
        elif self.table.row_count:
            self.table.move_cursor(row=self.table.row_count - 1)

    def action_reload(self) -> None:
        self.reload("keep")

    # -- selection (bulk actions) ------------------------------------------------

    def _set_query(self, q: Query) -> None:
        """Change what the list shows; an all-matching selection does not follow."""
        marks = self.marks
        marks.end_range()  # a range is a run of rows on screen: the rows are going
        if marks.all_matching and q.effective != marks.query:
            marks.clear()
            self.table.refresh()
            self.notify(
                "Selection cleared: the filter changed. Press * to select every order "
                "matching the new filter.",
                title="Selection",
            )
        self.query_state = q
        self._show_selection()

    def _may_bulk(self) -> bool:
        if self._bulk_access is None:
            self._bulk_access = bulk_access(self.app)
        return self._bulk_access

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("toggle_mark", "mark_range", "mark_all", "clear_marks", "bulk"):
            return self._may_bulk()  # marks serve bulk actions only: hidden for other roles
        return True

    def selection(self) -> Selection | None:
        """The bulk actions' selection: the query (all matching) or the marked ids."""
        marks = self.marks
        if marks.all_matching and marks.query is not None:
            return Selection(filter=marks.query)
        if marks.ids:
            return Selection(ids=tuple(sorted(marks.ids)))
        return None

    def _scope(self) -> str:
        f = self.marks.query
        return "" if f is None else ("every order" if f.is_empty() else f.describe())

    def _show_selection(self) -> None:
        self.query_one(SelectionBar).show(self.marks, self._scope())

    def _refuse_when_all_matching(self) -> bool:
        if self.marks.all_matching:
            self.notify(
                "Every order matching the filter is selected; ctrl+space clears the "
                "selection before marking single orders.",
                title="Selection",
                severity="warning",
            )
            return True
        return False

    def action_toggle_mark(self) -> None:
        table = self.table
        row = table.current
        if row is None or not table.display or self._refuse_when_all_matching():
            return
        self.marks.toggle(row.id)
        table.refresh_row(table.cursor_row)
        table.action_cursor_down()
        self._show_selection()

    def action_mark_range(self) -> None:
        table = self.table
        if not table.display or self._refuse_when_all_matching():
            return
        marks = self.marks
        if marks.in_range:
            marks.end_range()
        else:
            marks.start_range(table.window.rows, table.cursor_row)
        table.refresh()
        self._show_selection()

    def action_mark_all(self) -> None:
        f = self.query_state.effective
        if f is None:
            self.notify("No orders match the filter and tab: nothing to select.", title="Selection")
            return
        self.marks.select_all_matching(f)
        self.table.refresh()
        self._show_selection()
        self._count_selection(f)

    @work(thread=True, exclusive=True, exit_on_error=False, group="selection-count")
    def _count_selection(self, f: OrderFilter) -> None:
        n = self.app.desk.count_orders(f)  # type: ignore[attr-defined]
        self.post_message(self.SelectionCounted(f, n))

    @on(SelectionCounted)
    def _selection_counted(self, msg: SelectionCounted) -> None:
        marks = self.marks
        if marks.all_matching and marks.query == msg.query:
            marks.query_count = msg.count
            self._show_selection()

    def action_clear_marks(self) -> None:
        if not self.marks and not self.marks.in_range:
            return
        self.marks.clear()
        self.table.refresh()
        self._show_selection()

    def action_bulk(self) -> None:
        selection = self.selection()
        if selection is None:
            self.notify(
                "Select orders first: space marks one, v a range, * every order "
                "matching the filter.",
                title="Bulk actions",
                severity="warning",
            )
            return
        self.marks.end_range()
        self._show_selection()
        marks = self.marks
        self.app.push_screen(
            BulkScreen(selection, count=marks.count, scope=self._scope()), self._bulk_done
        )

    def _bulk_done(self, outcome: BulkOutcome | None) -> None:
        if outcome is not None and outcome.applied and not outcome.cancelled:
            self.marks.clear()  # done with these orders; the list shows their new state
            self.table.refresh()
            self._show_selection()
