"""One detail screen, reused for every order opened from the list.

The App installs the first OrderDetailScreen it pushes and, when the operator
opens the next order, refills that screen instead of building another one
(issue 8: enter → detail painted ≤ 100 ms at 1M orders). Nothing of the last
order may show: the screen must look exactly as a freshly built one would,
across orders, errors, themes and terminal sizes.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest

from pulse_tui.messages import OpenOrder
from pulse_tui.screens import order_detail
from pulse_tui.screens.order_detail import OrderDetailScreen
from pulse_tui.widgets.timeline import Timeline
from tests.tui.helpers import open_detail, settle, slow_reads

pytestmark = pytest.mark.anyio


async def back(pilot: Any) -> None:
    await pilot.press("escape")
    await settle(pilot)
    assert not isinstance(pilot.app.screen, OrderDetailScreen)


async def fresh_screenshot(
    make_app: Any, ref: str, size: tuple[int, int], theme: str | None = None
) -> str:
    app = make_app(theme=theme)
    async with app.run_test(size=size) as pilot:
        await open_detail(pilot, ref)
        return str(app.export_screenshot())


async def test_the_next_order_refills_the_same_screen(make_app) -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        first = await open_detail(pilot, "PB-999999")  # an error: banner, no panels
        assert "no order PB-999999" in first.banner_text
        await back(pilot)
        screen = await open_detail(pilot, "PB-100001")
        assert screen is first
        assert not screen.banner_text
        assert screen.query_one("#detail-columns").display
        assert screen.query_one("#summary").display
        assert screen.title == "Order PB-100001"
        kinds = [e.event_kind for e in screen.query_one(Timeline).events]
        assert kinds == ["held", "status", "payment_confirmed", "placed"]
        body = screen.query_one("#detail-body")
        body.scroll_end(animate=False)
        await settle(pilot)
        assert body.scroll_y > 0
        await back(pilot)
        screen = await open_detail(pilot, "PB-100003")
        assert screen is first
        assert screen.detail is not None and screen.detail.order.number == "PB-100003"
        assert body.scroll_y == 0
        assert screen.check_action("add_note", ()) is True


@pytest.mark.parametrize("size", [(120, 40), (80, 24)])
async def test_a_refilled_screen_looks_exactly_like_a_fresh_one(make_app, size) -> None:
    expected = await fresh_screenshot(make_app, "PB-100003", size)
    app = make_app()
    async with app.run_test(size=size) as pilot:
        await open_detail(pilot, "PB-100001")  # held, EUR, two lines, a banner-less order
        await back(pilot)
        await open_detail(pilot, "PB-100003")
        assert str(app.export_screenshot()) == expected


async def test_a_theme_chosen_while_it_was_closed_applies(make_app) -> None:
    expected = await fresh_screenshot(make_app, "PB-100003", (120, 40), theme="pulse-light")
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await open_detail(pilot, "PB-100001")
        await back(pilot)
        app.theme = "pulse-light"
        await settle(pilot)
        await open_detail(pilot, "PB-100003")
        assert str(app.export_screenshot()) == expected


async def test_a_resize_across_the_breakpoint_while_it_was_closed_applies(make_app) -> None:
    expected = await fresh_screenshot(make_app, "PB-100003", (80, 24))
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_detail(pilot, "PB-100001")
        assert screen.has_class("-wide")
        await back(pilot)
        await pilot.resize_terminal(80, 24)
        await settle(pilot)
        await open_detail(pilot, "PB-100003")
        assert screen.has_class("-narrow") and not screen.has_class("-wide")
        assert str(app.export_screenshot()) == expected


async def kept_screen_with_slow_reads(pilot: Any) -> tuple[OrderDetailScreen, threading.Event]:
    """Open PB-100001 and go back (the screen is kept); later reads wait for the gate."""
    screen = await open_detail(pilot, "PB-100001")
    await back(pilot)
    return screen, slow_reads(pilot.app)


async def test_the_screen_comes_up_when_the_order_has_arrived(make_app, monkeypatch) -> None:
    # no frame of the last order, and no loading overlay for a quick read
    monkeypatch.setattr(order_detail, "PUSH_AFTER_S", 60)
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        screen, gate = await kept_screen_with_slow_reads(pilot)
        app.post_message(OpenOrder("PB-100002"))
        for _ in range(5):
            await pilot.pause()
        assert app.screen is not screen  # the list, while the order is read
        gate.set()
        await settle(pilot)
        assert app.screen is screen
        assert not screen.query_one("#detail-body").loading
        assert screen.detail is not None and screen.detail.order.number == "PB-100002"


async def test_a_slow_read_shows_the_screen_loading(make_app, monkeypatch) -> None:
    monkeypatch.setattr(order_detail, "PUSH_AFTER_S", 0.05)
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        screen, gate = await kept_screen_with_slow_reads(pilot)
        app.post_message(OpenOrder("PB-100002"))
        await pilot.pause(0.3)
        assert app.screen is screen
        assert screen.query_one("#detail-body").loading
        assert screen.check_action("add_note", ()) is None  # nothing to act on yet
        gate.set()
        await settle(pilot)
        assert not screen.query_one("#detail-body").loading
        assert screen.detail is not None and screen.detail.order.number == "PB-100002"
        assert screen.check_action("add_note", ()) is True


async def test_an_order_opened_over_the_kept_screen_gets_its_own(make_app) -> None:
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        kept = await open_detail(pilot, "PB-100001")
        other = await open_detail(pilot, "PB-100002")  # e.g. from the palette
        assert other is not kept
        assert other.detail is not None and other.detail.order.number == "PB-100002"
        await pilot.press("escape")
        await settle(pilot)
        assert app.screen is kept
        assert kept.detail is not None and kept.detail.order.number == "PB-100001"
        await back(pilot)
        assert await open_detail(pilot, "PB-100003") is kept


async def test_the_last_of_two_quick_opens_wins(make_app, monkeypatch) -> None:
    # The first open's loading timer must not push the screen early for the second.
    monkeypatch.setattr(order_detail, "PUSH_AFTER_S", 2.0)
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        screen, gate = await kept_screen_with_slow_reads(pilot)
        app.post_message(OpenOrder("PB-100002"))
        await pilot.pause(1.2)
        app.post_message(OpenOrder("PB-100003"))
        await pilot.pause(1.2)  # past the first open's 2 s, before the second's
        assert app.screen is not screen
        gate.set()
        await settle(pilot)
        assert app.screen is screen and len(app.screen_stack) == 2
        assert screen.detail is not None and screen.detail.order.number == "PB-100003"
