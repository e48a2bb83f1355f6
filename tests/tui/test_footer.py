"""widgets.footer.KeysFooter: Textual's Footer without its rebuilds, held to
Textual's Footer: the same picture before and after the keys change, the same
mouse behaviour, and no rebuild when nothing shown changed."""

from __future__ import annotations

from typing import Any

import pytest
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer, Static
from textual.widgets._footer import FooterKey

from pulse_tui.widgets.footer import KeysFooter
from tests.tui.helpers import settle

pytestmark = pytest.mark.anyio


class KeysScreen(Screen[None]):
    BINDINGS = [
        Binding("escape", "back", "Back", id="t.back"),
        Binding("n", "note", "Note", id="t.note"),
        Binding("h", "hold", "Hold", id="t.hold"),
        Binding("r", "release", "Release", id="t.release"),
        Binding("d", "deliver", "Delivered", id="t.deliver"),
        Binding("p", "ship", "Ship", id="t.ship"),
        Binding("x", "secret", "Secret", id="t.secret", show=False),
        Binding("e", "email", "Email customer", id="t.email"),
    ]

    def __init__(self, footer: type[Footer]) -> None:
        super().__init__()
        self.footer_class = footer
        self.greyed = {"deliver"}
        self.pressed: list[str] = []

    def compose(self) -> ComposeResult:
        yield Static("body")
        yield self.footer_class()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "hold":
            return False  # hidden
        return None if action in self.greyed else True

    def on_key(self, event: Any) -> None:
        self.pressed.append(event.key)


class KeysApp(App[None]):
    def __init__(self, footer: type[Footer]) -> None:
        super().__init__()
        self.footer_class = footer

    def on_mount(self) -> None:
        self.push_screen(KeysScreen(self.footer_class))


def picture(app: App[Any]) -> list[list[tuple[str, str]]]:
    """What the screen shows, cell runs of one style (however the compositor
    cut them between widgets)."""
    strips = app.screen._compositor.render_strips()
    return [[(seg.text, str(seg.style)) for seg in strip.simplify()] for strip in strips]


async def pictures(size: tuple[int, int], steps: Any) -> list[list[Any]]:
    """Run ``steps(pilot, screen)`` (an async generator yielding after each
    step) against Textual's Footer and KeysFooter; the pictures per step."""
    out = []
    for footer in (Footer, KeysFooter):
        app = KeysApp(footer)
        shots = []
        async with app.run_test(size=size) as pilot:
            await settle(pilot)
            async for _ in steps(pilot, app.screen):
                await settle(pilot)
                shots.append(picture(app))
        out.append(shots)
    return out


def key_x(screen: Any, key: str) -> int:
    """Screen column of a key's first cell, in either footer."""
    for widget in screen.query(FooterKey):
        if widget.key == key and widget.display:
            return widget.region.x
    raise AssertionError(f"no key {key}")


@pytest.mark.parametrize("size", [(120, 6), (44, 6)], ids=["wide", "cut off"])
async def test_keys_footer_looks_like_textuals(size: tuple[int, int]) -> None:
    async def steps(pilot: Any, screen: Any) -> Any:
        yield  # as mounted: one key greyed, one hidden, one not shown
        screen.greyed = {"note"}  # the order changed: other keys allowed
        screen.refresh_bindings()
        yield

    textual, ours = await pictures(size, steps)
    assert textual == ours
    assert ours[0] != ours[1]  # the change showed


async def test_keys_footer_mouse_acts_per_key() -> None:
    async def steps(pilot: Any, screen: Any) -> Any:
        y = screen.size.height - 1
        await pilot.hover(None, offset=(key_x(screen, "n") + 1, y))
        yield  # the key under the pointer lights up, only that one
        await pilot.click(None, offset=(key_x(screen, "n") + 1, y))
        await pilot.click(None, offset=(key_x(screen, "d") + 1, y))  # greyed: a bell
        assert screen.pressed == ["n"]
        yield

    textual, ours = await pictures((120, 6), steps)
    assert textual == ours


async def test_keys_footer_does_not_rebuild_for_the_same_keys() -> None:
    app = KeysApp(KeysFooter)
    async with app.run_test(size=(120, 6)) as pilot:
        await settle(pilot)
        before = list(app.screen.query(FooterKey))
        app.screen.refresh_bindings()
        await settle(pilot)
        assert list(app.screen.query(FooterKey)) == before  # same widgets, not re-mounted
        app.screen.greyed = {"note"}
        app.screen.refresh_bindings()
        await settle(pilot)
        after = list(app.screen.query(FooterKey))
        assert after == before  # relabelled in place
        assert [k.key for k in after if k.has_class("-disabled")] == ["n"]
