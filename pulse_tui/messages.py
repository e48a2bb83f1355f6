"""Typed messages the screens exchange instead of reaching into each other."""

from __future__ import annotations

from dataclasses import dataclass

from textual.message import Message


@dataclass
class OrderChanged(Message):
    """An order was changed by an action on this desk; lists and counts refresh."""

    order_id: int
    number: str


@dataclass
class OpenOrder(Message):
    """Ask the app to open an order's detail screen (from the list or the palette)."""

    ref: str | int
