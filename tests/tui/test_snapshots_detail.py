"""Snapshots of the order detail and each action dialog (small db, frozen time).

Regenerate with ``.venv/bin/pytest tests/tui/test_snapshots_detail.py
--snapshot-update`` and look at the SVGs before committing them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from textual.widgets import Input, Select

from pulse_tui.messages import OpenOrder
from pulse_tui.screens.order_detail import OrderDetailScreen
from pulse_tui.services.desk import Desk
from pulse_tui.storage.db import make_engine
from tests import factories

NARROW = (80, 24)
WIDE = (120, 40)


async def _settle(pilot: Any) -> None:
    for _ in range(3):
        await pilot.pause()
        await pilot.app.workers.wait_for_complete()
    await pilot.pause()


def open_order(
    ref: str, *keys: str, then: Callable[[Any], None] | None = None
) -> Callable[[Any], Any]:
    """run_before: open ``ref``, press ``keys``, let every worker finish,
    and stop cursors blinking so the picture is stable."""

    async def run_before(pilot: Any) -> None:
        await _settle(pilot)
        pilot.app.post_message(OpenOrder(ref))
        await _settle(pilot)
        assert any(isinstance(s, OrderDetailScreen) for s in pilot.app.screen_stack)
        for key in keys:
            await pilot.press(key)
            await _settle(pilot)
        if then is not None:
            then(pilot.app.screen)
            await _settle(pilot)
        for widget in pilot.app.screen.query(Input):
            widget.cursor_blink = False
        # toasts (from any screen) time out: keep them out of the picture
        pilot.app.clear_notifications()
        await pilot.pause()

    return run_before


def _annotate(db_path: Any, number: str) -> None:
    """Give the order a note and a tag (the small db has none) before the app opens."""
    engine = make_engine(f"sqlite:///{db_path}")
    desk = Desk(engine, factories.AGENT, clock=lambda: factories.START)
    desk.orders.add_note(number, "Customer asked for gift wrap")
    desk.orders.tag(number, ["vip"])
    engine.dispose()


@pytest.mark.parametrize("size", [NARROW, WIDE], ids=["80x24", "120x40"])
def test_detail(snap_compare, make_app, small_db_path, size) -> None:
    _annotate(small_db_path, "PB-100001")
    assert snap_compare(make_app(), terminal_size=size, run_before=open_order("PB-100001"))


def test_detail_shipped_warehouse(snap_compare, make_app) -> None:
    # shipment panel filled, payments hidden for the role
    app = make_app(factories.WAREHOUSE)
    assert snap_compare(app, terminal_size=WIDE, run_before=open_order("PB-100003"))


@pytest.mark.parametrize("size", [NARROW, WIDE], ids=["80x24", "120x40"])
def test_status_dialog(snap_compare, make_app, size) -> None:
    assert snap_compare(make_app(), terminal_size=size, run_before=open_order("PB-100002", "s"))


def _fill_cancel(screen: Any) -> None:
    screen.query_one("#reason", Select).value = "customer_request"
    screen.query_one("#note", Input).value = "asked by phone"


@pytest.mark.parametrize("size", [NARROW, WIDE], ids=["80x24", "120x40"])
def test_cancel_dialog(snap_compare, make_app, size) -> None:
    run_before = open_order("PB-100002", "c", then=_fill_cancel)
    assert snap_compare(make_app(), terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", [NARROW, WIDE], ids=["80x24", "120x40"])
def test_cancel_confirmation(snap_compare, make_app, size) -> None:
    def fill_and_submit(screen: Any) -> None:
        _fill_cancel(screen)
        screen.action_submit()

    run_before = open_order("PB-100002", "c", then=fill_and_submit)
    assert snap_compare(make_app(), terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", [NARROW, WIDE], ids=["80x24", "120x40"])
def test_ship_dialog(snap_compare, make_app, size) -> None:
    assert snap_compare(make_app(), terminal_size=size, run_before=open_order("PB-100002", "p"))


@pytest.mark.parametrize("size", [NARROW, WIDE], ids=["80x24", "120x40"])
def test_note_dialog(snap_compare, make_app, size) -> None:
    assert snap_compare(make_app(), terminal_size=size, run_before=open_order("PB-100002", "n"))


@pytest.mark.parametrize("size", [NARROW, WIDE], ids=["80x24", "120x40"])
def test_note_dialog_bad_input(snap_compare, make_app, size) -> None:
    def card_number(screen: Any) -> None:
        screen.query_one("#note", Input).value = "card 4242 4242 4242 4242"
        screen.action_submit()

    run_before = open_order("PB-100002", "n", then=card_number)
    assert snap_compare(make_app(), terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", [NARROW, WIDE], ids=["80x24", "120x40"])
def test_hold_dialog(snap_compare, make_app, size) -> None:
    assert snap_compare(make_app(), terminal_size=size, run_before=open_order("PB-100002", "h"))


@pytest.mark.parametrize("size", [NARROW, WIDE], ids=["80x24", "120x40"])
def test_release_dialog(snap_compare, make_app, size) -> None:
    assert snap_compare(make_app(), terminal_size=size, run_before=open_order("PB-100001", "r"))


@pytest.mark.parametrize("size", [NARROW, WIDE], ids=["80x24", "120x40"])
def test_tag_dialog(snap_compare, make_app, size) -> None:
    assert snap_compare(make_app(), terminal_size=size, run_before=open_order("PB-100002", "t"))


@pytest.mark.parametrize("size", [NARROW, WIDE], ids=["80x24", "120x40"])
def test_deliver_confirm_dialog(snap_compare, make_app, size) -> None:
    assert snap_compare(make_app(), terminal_size=size, run_before=open_order("PB-100003", "d"))
