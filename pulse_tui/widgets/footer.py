"""The footer every screen of the desk shows: Textual's, without its rebuilds."""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer
from textual.widgets._footer import FooterKey


class KeysFooter(Footer):
    """Textual's Footer, rebuilt only when the keys it shows change.

    Textual's Footer removes and mounts all its key widgets (a dozen, styles
    matched one by one) on each bindings signal, and a filter sends several
    (focus to the input and back, the rows arriving; a detail screen
    opening sends four or five): 20–50 ms each at
    120×40, on the UI thread, in the frames that should show the rows.
    Signals arriving in one refresh are handled once; a rebuild that would
    compose the same keys is skipped; and when only the keys' texts change
    (the same number of keys, no groups) the existing key widgets are
    relabelled instead of replaced. The result is what compose() builds."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._shown: tuple[object, ...] | None = None
        self._pending = False

    def compose(self) -> ComposeResult:
        # FooterKey's ``compact`` starts True and is then bound to the footer's
        # (False): each key gained "-compact" on mount and lost it at once, two
        # restyles per key (a detail screen's first open applied styles 182
        # times, 86 without them). Give each key the footer's value before it
        # mounts (not the palette key, which Footer leaves compact).
        for widget in super().compose():
            if isinstance(widget, FooterKey) and not widget.has_class("-command-palette"):
                widget.set_reactive(FooterKey.compact, self.compact)
                widget.set_class(self.compact, "-compact", update=False)
            yield widget

    def bindings_changed(self, screen: Screen[Any]) -> None:
        self._bindings_ready = True  # as Footer.bindings_changed (Textual 8.2)
        if not screen.app.app_focus or not self.is_attached or screen is not self.screen:
            return
        if not self._pending:
            self._pending = True
            self.call_after_refresh(self._recompose_if_changed)

    def _entries(self) -> list[tuple[Binding, bool, str]]:
        """One (binding, enabled, tooltip) per action, as compose() shows them."""
        by_action: dict[str, tuple[Binding, bool, str]] = {}
        for _node, binding, enabled, tooltip in self.screen.active_bindings.values():
            if binding.show:
                by_action.setdefault(binding.action, (binding, enabled, tooltip))
        return list(by_action.values())

    def _keys(self, entries: list[tuple[Binding, bool, str]]) -> tuple[object, ...]:
        display = self.app.get_key_display
        keys = tuple(
            (b.key, b.action, b.description, b.group, enabled, tooltip, display(b))
            for b, enabled, tooltip in entries
        )
        return (self.compact, self.show_command_palette, keys)

    async def _recompose_if_changed(self) -> None:
        self._pending = False
        if not self.is_attached:
            return
        entries = self._entries()
        keys = self._keys(entries)
        if keys == self._shown:
            return
        first = self._shown is None
        self._shown = keys
        if first or not self._relabel(entries):
            await self.recompose()

    def _relabel(self, entries: list[tuple[Binding, bool, str]]) -> bool:
        """Show ``entries`` with the key widgets already mounted: relabel them
        in order and hide the spare ones (the palette key stays as composed).
        False (compose instead) for groups, which this does not build, or
        when there are more keys than widgets."""
        if any(b.group is not None for b, _, _ in entries):
            return False
        widgets = list(self.children)
        if not all(type(w) is FooterKey for w in widgets):
            return False
        palette = [w for w in widgets if w.has_class("-command-palette")]
        if palette and widgets[-1] is not palette[0]:
            return False
        widgets = [w for w in widgets if w not in palette]
        if len(entries) > len(widgets):
            return False  # more keys than widgets: compose them (bound to the footer)
        display = self.app.get_key_display
        for i, (binding, enabled, tooltip) in enumerate(entries):
            widget = widgets[i]
            assert isinstance(widget, FooterKey)
            text = (binding.key, display(binding), binding.description, binding.action)
            if text != (widget.key, widget.key_display, widget.description, widget.action):
                widget.key, widget.key_display, widget.description, widget.action = text
                widget.refresh(layout=True)
            if widget._disabled != (not enabled):  # only the greyed state changed
                widget._disabled = not enabled
                widget.set_class(not enabled, "-disabled")
            if widget.tooltip != (tooltip or None):
                widget.tooltip = tooltip or None
            widget.display = True
        for widget in widgets[len(entries) :]:
            widget.display = False
        self.styles.grid_size_columns = len(entries)  # as compose() sets it
        return True
