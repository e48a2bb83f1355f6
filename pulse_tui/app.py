"""PulseApp: the Textual order desk, built by ``build_app`` from a ready Desk.

Nothing here is a module global: the App receives the Desk (services, engine,
acting operator, clock) and optional Settings, so tests hand it a temporary
database and a frozen clock.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from textual import on
from textual.app import App
from textual.binding import Binding

from pulse_tui import messages
from pulse_tui.commands import PROVIDERS
from pulse_tui.config import Settings, save_setting
from pulse_tui.services.desk import Desk
from pulse_tui.themes.themes import DEFAULT_THEME, THEMES

THEMES_DIR = Path(__file__).parent / "themes"


def _css_paths() -> list[Path]:
    """pulse.tcss, plus any screen style sheets present (detail.tcss, ...)."""
    paths = [THEMES_DIR / "pulse.tcss"]
    paths += sorted(p for p in THEMES_DIR.glob("*.tcss") if p.name != "pulse.tcss")
    return paths


class PulseApp(App[None]):
    TITLE = "Pulse order desk"
    CSS_PATH = _css_paths()  # a list: screens may add their own sheets next to pulse.tcss
    ENABLE_COMMAND_PALETTE = True
    COMMANDS = App.COMMANDS | PROVIDERS
    BINDINGS = [
        # ctrl+p is a priority binding (it works inside inputs too); ":" is the
        # k9s habit and, not being a priority, still types a colon in the filter.
        Binding("ctrl+p", "command_palette", "Commands", id="palette", show=False, priority=True),
        Binding("colon", "command_palette", "Commands", id="palette.colon", key_display=":"),
        Binding("question_mark", "help", "Help", id="help", key_display="?"),
        Binding("ctrl+t", "cycle_theme", "Theme", id="theme", show=False),
        Binding("q", "quit", "Quit", id="quit"),
    ]

    def __init__(
        self, desk: Desk, *, theme: str | None = None, settings: Settings | None = None
    ) -> None:
        super().__init__()
        self.desk = desk
        self.settings = settings
        self._initial_theme = theme or (settings.theme if settings else None) or DEFAULT_THEME
        self._persist_theme = False
        for t in THEMES.values():
            self.register_theme(t)
        actor = desk.actor
        who = actor.display_name or actor.username
        self.sub_title = f"{who} ({actor.username}) · {actor.role.value}"

    def get_default_screen(self):  # type: ignore[no-untyped-def]
        from pulse_tui.screens.order_list import OrderListScreen

        return OrderListScreen()

    def on_mount(self) -> None:
        name = self._initial_theme if self._initial_theme in self.available_themes else None
        self.theme = name or DEFAULT_THEME
        self._persist_theme = True

    def watch_theme(self, name: str) -> None:
        if self._persist_theme and self.settings is not None and name in THEMES:
            self.settings.theme = name
            save_setting("theme", name)

    # -- actions ---------------------------------------------------------

    def action_help(self) -> None:
        from pulse_tui.screens.help import HelpScreen

        if isinstance(self.screen, HelpScreen):
            self.pop_screen()
            return
        self.push_screen(HelpScreen(self.screen))

    def action_cycle_theme(self) -> None:
        names = list(THEMES)
        i = names.index(self.theme) if self.theme in names else -1
        self.theme = names[(i + 1) % len(names)]

    def set_theme(self, name: str) -> None:
        """Switch theme (palette, tests); persisted when the App has Settings."""
        if name not in self.available_themes:
            self.notify(f"unknown theme {name!r}", severity="error")
            return
        self.theme = name

    # -- messages ----------------------------------------------------------

    @on(messages.OpenOrder)
    def open_order(self, message: messages.OpenOrder) -> None:
        try:
            module = importlib.import_module("pulse_tui.screens.order_detail")
            screen_cls = module.OrderDetailScreen
        except (ImportError, AttributeError):
            self.notify("detail screen not available", severity="warning")
            return
        self.push_screen(screen_cls(message.ref))

    @on(messages.OrderChanged)
    def order_changed(self, message: messages.OrderChanged) -> None:
        """Tell every list on the stack to re-fetch its window and tab counts.

        OrderChanged bubbles up to the App from whichever screen acted; the
        lists hear about it through a non-bubbling Refresh message."""
        from pulse_tui.screens.order_list import OrderListScreen

        for screen in self.screen_stack:
            if isinstance(screen, OrderListScreen):
                screen.post_message(OrderListScreen.Refresh(message.order_id))


def build_app(
    desk: Desk, *, theme: str | None = None, settings: Settings | None = None
) -> PulseApp:
    """The one way to make the App: hand it a ready Desk (and optional Settings)."""
    return PulseApp(desk, theme=theme, settings=settings)
