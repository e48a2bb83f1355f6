"""Command palette (ctrl+p and `:`): jump to order, customer's orders, actions, themes."""

from __future__ import annotations

import pytest
from textual.command import CommandPalette

from pulse_tui import messages
from pulse_tui.screens.order_list import OrderListScreen
from pulse_tui.widgets.order_table import OrderTable

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def settle(app, pilot, rounds: int = 2) -> None:  # type: ignore[no-untyped-def]
    for _ in range(rounds):
        await pilot.pause()
        await app.workers.wait_for_complete()
    await pilot.pause()


async def palette_run(app, pilot, text: str, key: str = "ctrl+p") -> None:  # type: ignore[no-untyped-def]
    await pilot.press(key)
    await settle(app, pilot)
    assert isinstance(app.screen, CommandPalette)
    await pilot.press(*text)
    await pilot.pause(0.6)  # the palette debounces the search
    await settle(app, pilot)
    await pilot.press("enter")
    await settle(app, pilot)


async def test_palette_jumps_to_an_order_by_number(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app()
    opened: list[str | int] = []

    def hook(message) -> None:  # type: ignore[no-untyped-def]
        if isinstance(message, messages.OpenOrder):
            opened.append(message.ref)

    async with app.run_test(size=(120, 40), message_hook=hook) as pilot:
        await settle(app, pilot)
        await palette_run(app, pilot, "100007")
        assert opened == ["PB-100007"]
        assert not isinstance(app.screen, CommandPalette)


async def test_colon_opens_the_palette_and_finds_a_customers_orders(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        await palette_run(app, pilot, "grace", key="colon")
        await settle(app, pilot)
        screen = app.screen
        assert isinstance(screen, OrderListScreen)
        assert screen.query_state.filter.customer == "grace@example.com"
        rows = screen.query_one(OrderTable).window.rows
        assert rows and {r.customer_name for r in rows} == {"Grace Hopper"}


async def test_palette_runs_a_screen_action(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        await palette_run(app, pilot, "Reverse")
        await settle(app, pilot)
        assert app.screen.query_state.sort.descending is False
        assert app.screen.query_one(OrderTable).current.number == "PB-100001"


async def test_palette_switches_theme(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        await palette_run(app, pilot, "Theme: kiosk")
        assert app.theme == "kiosk"


async def test_palette_offers_only_the_actions_enabled_now(make_app) -> None:  # type: ignore[no-untyped-def]
    """PB-100006 is pending and unpaid: Ship is greyed out in the footer, so the
    palette does not offer it; Note is offered."""
    from pulse_tui.commands import _actions
    from tests.tui.helpers import open_detail

    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_detail(pilot, "PB-100006")
        assert screen.loaded.detail.order.status == "pending"
        titles = {title for title, _help, _cb in _actions(screen)}
        assert "Note" in titles
        assert "Ship" not in titles
