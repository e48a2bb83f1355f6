"""The work-list screen shared by the refunds and the customer-emails screens.

``WorkListScreen`` is a status-tabbed list of rows across orders: a tab bar
with counts, a ``DataTable`` whose rows are read in a thread worker (the tab's
rows, the counts per status and the desk's clock), an empty-tab message, an
info line for the highlighted row, ``]``/``[`` tabs, ``j``/``k``, ``ctrl+r``
reload, ``enter`` opens the row's order, and a reload on ``Refresh`` (now when
on top, else when it is on top again).

A subclass says what is its own through class attributes and hooks:

- ``PREFIX`` — the widget ids (``#<prefix>-tabs``, ``-table``, ``-empty``,
  ``-info``), the worker group (``<prefix>-load``) and, through
  ``worklist_bindings``, the binding ids (``<prefix>.back`` ...);
- ``SCREEN_TITLE``, ``TABS`` (id, label, short label), ``COLUMNS`` (key,
  label, width), ``TABLE`` (the DataTable subclass carrying the ``enter``
  binding), ``STATUS_STYLE`` (status -> theme variable for the status cell),
  ``ROW_ACTIONS`` (action -> permission and the row statuses it is offered in);
- ``fetch`` (in the thread: rows and counts), ``row_cells``, ``info_text``,
  ``empty_text``, ``order_number_of``, ``tab_count``;
- its own actions, confirmed through ``confirm`` with ``confirm_number`` and
  ``after_done`` saying what the dialog shows and what follows success.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar, cast

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.markup import escape
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static
from textual.worker import Worker, WorkerState

from pulse_tui.domain.permissions import Permission
from pulse_tui.messages import OpenOrder
from pulse_tui.screens.dialogs import ConfirmDialog, Outcome
from pulse_tui.services.errors import ServiceError

LIMIT = 500  # rows read per tab

# (column key, label, width or None for automatic)
Column = tuple[str, str, int | None]


def worklist_bindings(prefix: str, actions: Sequence[BindingType]) -> list[BindingType]:
    """The work list's bindings with ``actions`` (the screen's own) after
    ``enter``; ids ``<prefix>.back``, ``<prefix>.next_tab`` ..."""
    return [
        Binding("escape", "back", "Back", id=f"{prefix}.back"),
        Binding("enter", "open_order", "Open order", id=f"{prefix}.open_order", show=False),
        *actions,
        Binding(
            "right_square_bracket", "next_tab", "Next tab", id=f"{prefix}.next_tab", key_display="]"
        ),
        Binding(
            "left_square_bracket",
            "prev_tab",
            "Prev tab",
            id=f"{prefix}.prev_tab",
            key_display="[",
            show=False,
        ),
        Binding("ctrl+r", "reload", "Reload", id=f"{prefix}.reload", show=False),
        Binding("j", "cursor(1)", "Down", id=f"{prefix}.down", show=False),
        Binding("k", "cursor(-1)", "Up", id=f"{prefix}.up", show=False),
    ]


@dataclass(frozen=True)
class WorkListLoaded:
    rows: list[Any]
    counts: dict[str, int]
    now: datetime


class WorkListScreen(Screen[None]):
    """Rows across orders by status tab; see the module docstring for the hooks."""

    PREFIX: ClassVar[str] = ""
    SCREEN_TITLE: ClassVar[str] = ""
    TABS: ClassVar[Sequence[tuple[str, str, str]]] = (("all", "All", "All"),)
    COLUMNS: ClassVar[Sequence[Column]] = ()
    TABLE: ClassVar[type[DataTable[Any]]] = DataTable
    STATUS_STYLE: ClassVar[dict[str, str]] = {}
    ROW_ACTIONS: ClassVar[dict[str, tuple[Permission, tuple[str, ...]]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.PREFIX:
            cls.AUTO_FOCUS = f"#{cls.PREFIX}-table"

    def __init__(self, tab: str = "all") -> None:
        super().__init__()
        self.tab = tab if tab in self.tab_ids else "all"
        self.rows: list[Any] = []
        self.counts: dict[str, int] = {}
        self.now: datetime | None = None
        self.loading_rows = False
        self._stale = False

    @property
    def tab_ids(self) -> list[str]:
        return [t for t, _, _ in self.TABS]

    @property
    def load_group(self) -> str:
        return f"{self.PREFIX}-load"

    def compose(self) -> ComposeResult:
        p = self.PREFIX
        yield Header()
        yield Static("", id=f"{p}-tabs")
        yield self.TABLE(id=f"{p}-table", cursor_type="row", zebra_stripes=True)
        yield Static("", id=f"{p}-empty")
        yield Static("", id=f"{p}-info")
        yield Footer(show_command_palette=False)

    def on_mount(self) -> None:
        self.title = self.SCREEN_TITLE
        table = self.table
        for key, label, width in self.COLUMNS:
            table.add_column(label, key=key, width=width)
        self.query_one(f"#{self.PREFIX}-empty").display = False
        self.show_tabs()
        self.load()

    def on_resize(self) -> None:
        self.show_tabs()

    @property
    def table(self) -> DataTable[Any]:
        return self.query_one(f"#{self.PREFIX}-table", DataTable)

    # -- hooks -----------------------------------------------------------------

    def fetch(self, desk: Any, tab: str) -> tuple[list[Any], dict[str, int]]:
        """In a thread: the tab's rows and the counts per status."""
        raise NotImplementedError

    def row_cells(self, row: Any, now: datetime) -> Sequence[Any]:
        """The table cells of one row, in ``COLUMNS`` order."""
        raise NotImplementedError

    def info_text(self, row: Any) -> str:
        """The info line (markup) under the table for the highlighted row."""
        raise NotImplementedError

    def empty_text(self, label: str) -> str:
        """What an empty tab says (``label`` is the tab's label)."""
        raise NotImplementedError

    def order_number_of(self, row: Any) -> str | None:
        """The row's order number, or None when it has no order to open."""
        return getattr(row, "order_number", None) or None

    def tab_count(self, tab: str) -> int:
        if tab == "all":
            return sum(self.counts.values())
        return self.counts.get(tab, 0)

    # -- loading ---------------------------------------------------------------

    def load(self, *, quiet: bool = False) -> None:
        """Read the tab's rows and the counts in a thread; ``quiet`` (a
        background refresh) shows no loading overlay meanwhile."""
        if not quiet:
            self.loading_rows = True
            self.table.loading = True
        desk, tab = self.app.desk, self.tab  # type: ignore[attr-defined]
        self.run_worker(
            lambda: self._load(desk, tab),
            name="_load",
            group=self.load_group,
            description=f"_load({desk!r}, {tab!r})",
            exclusive=True,
            exit_on_error=False,
            thread=True,
        )

    def _load(self, desk: Any, tab: str) -> WorkListLoaded:
        rows, counts = self.fetch(desk, tab)
        return WorkListLoaded(rows, counts, desk.now())

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        worker = event.worker
        if worker.group != self.load_group or event.state not in (
            WorkerState.SUCCESS,
            WorkerState.ERROR,
        ):
            return
        self.loading_rows = False
        self.table.loading = False
        if event.state == WorkerState.SUCCESS:
            self.show_rows(cast(WorkListLoaded, worker.result))
        else:
            error = worker.error
            text = error.message if isinstance(error, ServiceError) else f"could not load: {error}"
            self.notify(text, severity="error")
            self.show_info(escape(text))
        self.refresh_bindings()

    def status_style(self, status: str) -> str:
        """Rich style of a status cell: bold, in the status's theme colour."""
        variables = self.app.get_css_variables()
        colour = variables.get(self.STATUS_STYLE.get(status, "foreground"), "")
        return f"bold {colour}".strip()

    def show_rows(self, loaded: WorkListLoaded) -> None:
        keep = self.current.id if self.current else None
        self.rows, self.counts, self.now = loaded.rows, loaded.counts, loaded.now
        self.show_tabs()
        table = self.table
        table.clear()
        for row in loaded.rows:
            table.add_row(*self.row_cells(row, loaded.now), key=str(row.id))
        empty = self.query_one(f"#{self.PREFIX}-empty", Static)
        empty.display = not loaded.rows
        label = dict((t, lbl) for t, lbl, _ in self.TABS)[self.tab]
        empty.update(self.empty_text(label))
        if keep is not None:
            for i, row in enumerate(loaded.rows):
                if row.id == keep:
                    table.move_cursor(row=i)
                    break
        self.show_current()

    def show_tabs(self) -> None:
        narrow = self.size.width < 100
        parts = []
        for tid, label, short in self.TABS:
            text = f"{short if narrow else label} {self.tab_count(tid)}"
            if tid == self.tab:
                parts.append(f"[reverse b] {escape(text)} [/]")
            else:
                parts.append(f" {escape(text)} ")
        self.query_one(f"#{self.PREFIX}-tabs", Static).update("".join(parts))

    # -- the highlighted row -----------------------------------------------------

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
        row = self.current
        self.show_info("" if row is None else self.info_text(row))

    def show_info(self, text: str) -> None:
        self.query_one(f"#{self.PREFIX}-info", Static).update(text)

    # -- which keys are offered ------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "open_order":
            row = self.current
            return (row is not None and self.order_number_of(row) is not None) or None
        if action not in self.ROW_ACTIONS:
            return True
        permission, states = self.ROW_ACTIONS[action]
        if not self.app.desk.actor.can(permission):  # type: ignore[attr-defined]
            return False
        row = self.current
        if row is None or self.loading_rows:
            return None
        return row.status in states or None

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
        if tab not in self.tab_ids:
            return
        self.tab = tab
        self.show_tabs()
        self.load()

    def action_next_tab(self) -> None:
        ids = self.tab_ids
        self.show_tab(ids[(ids.index(self.tab) + 1) % len(ids)])

    def action_prev_tab(self) -> None:
        ids = self.tab_ids
        self.show_tab(ids[(ids.index(self.tab) - 1) % len(ids)])

    def action_open_order(self) -> None:
        row = self.current
        number = None if row is None else self.order_number_of(row)
        if number is not None:
            self.post_message(OpenOrder(number))

    # -- confirming a row action ------------------------------------------------------

    def confirm_number(self, row: Any) -> str:
        """What the confirm dialog is about (its title's suffix)."""
        return self.order_number_of(row) or f"#{row.id}"

    def after_done(self, row: Any) -> None:
        """After a confirmed action succeeded (and was reported)."""

    def confirm(
        self,
        row: Any,
        run: Callable[[], Any],
        describe: Callable[[Any], tuple[str, str]],
        *,
        title: str,
        message: str,
        yes: str,
        **kw: Any,
    ) -> None:
        """Confirm first; ``run`` goes in the dialog's thread worker, its
        result is reported through ``describe`` (text, level)."""

        def finished(outcome: Outcome | None) -> None:
            if outcome is None or outcome.kind != "done":
                return
            text, level = describe(outcome.result)
            self.notify(text, severity=level)  # type: ignore[arg-type]
            self.after_done(row)

        dialog = ConfirmDialog(
            self.confirm_number(row), lambda: run(), title=title, message=message, yes=yes, **kw
        )
        self.app.push_screen(dialog, finished)

    class Refresh(Message, bubble=False):
        """Rows changed (here, on another screen or in the background);
        ``quiet``: no loading overlay."""

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
