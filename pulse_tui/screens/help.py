"""`?` help: every binding active on the screen underneath, with its description."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen, Screen
from textual.widgets import DataTable, Static


def binding_rows(screen: Screen) -> list[tuple[str, str, str]]:
    """(key, description, where) for the bindings active on ``screen``, focused widget first.

    One row per action: a key bound twice to the same action ("j" and "down")
    is shown as "j, ↓" on one row."""
    app = screen.app
    rows: dict[tuple[str, str], list[str]] = {}
    for _key, active in screen.active_bindings.items():
        b = active.binding
        if not b.description or b.system:
            continue
        where = "app" if active.node is app else type(active.node).__name__
        rows.setdefault((b.description, where), []).append(app.get_key_display(b))
    out = [(", ".join(dict.fromkeys(keys)), desc, where) for (desc, where), keys in rows.items()]
    return sorted(out, key=lambda r: (r[2] == "app", r[2], r[1].lower()))


class HelpScreen(ModalScreen[None]):
    """Lists the keys of the screen it was opened over."""

    BINDINGS = [
        Binding("escape,question_mark,q", "close", "Close help", id="help.close"),
    ]

    def __init__(self, target: Screen) -> None:
        super().__init__()
        self.target = target
        self.rows = binding_rows(target)

    def compose(self) -> ComposeResult:
        with Vertical(id="help-box"):
            yield Static(f"Keys — {self.target.__class__.__name__}", id="help-title")
            table: DataTable[str] = DataTable(
                id="help-table", cursor_type="row", zebra_stripes=True
            )
            table.add_column("Key", key="key")
            table.add_column("Action", key="action")
            table.add_column("Where", key="where")
            for key, desc, where in self.rows:
                table.add_row(key, desc, where)
            yield table
            yield Static("esc / ? close", id="help-hint")

    def action_close(self) -> None:
        self.dismiss(None)
