"""Pilot helpers shared by the TUI tests."""

from __future__ import annotations

import threading
from typing import Any

from pulse_tui.messages import OpenOrder
from pulse_tui.screens.order_detail import OrderDetailScreen


async def settle(pilot: Any) -> None:
    """Let workers finish and their results land on screen."""
    for _ in range(3):
        await pilot.pause()
        await pilot.app.workers.wait_for_complete()
    await pilot.pause()


async def open_detail(pilot: Any, ref: str) -> OrderDetailScreen:
    await settle(pilot)
    pilot.app.post_message(OpenOrder(ref))
    await settle(pilot)
    screen = pilot.app.screen
    assert isinstance(screen, OrderDetailScreen)
    return screen


def slow_reads(app: Any) -> threading.Event:
    """Make the desk's order reads wait (up to 5 s) for the returned gate."""
    gate = threading.Event()
    real_detail = app.desk.orders.detail

    def slow_detail(ref: Any) -> Any:
        gate.wait(5)
        return real_detail(ref)

    app.desk.orders.detail = slow_detail
    return gate
