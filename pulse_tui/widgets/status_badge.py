"""Status badges: one mapping from (axis, value) to a theme colour variable.

Screens and tables both use it: ``StatusBadge`` as a widget, ``badge_markup``
for table cells (Textual content markup with theme variables, so each theme
colours it). No colour literals here.
"""

from __future__ import annotations

from textual.widgets import Static

# axis: "status" (order lifecycle), "pay" (payment status), "fulfil", "hold"
STYLE: dict[tuple[str, str], str] = {
    ("status", "pending"): "$warning",
    ("status", "processing"): "$accent",
    ("status", "shipped"): "$primary",
    ("status", "delivered"): "$success",
    ("status", "cancelled"): "$foreground-muted",
    ("status", "refunded"): "$secondary",
    ("pay", "unpaid"): "$warning",
    ("pay", "authorized"): "$accent",
    ("pay", "paid"): "$success",
    ("pay", "partially_refunded"): "$secondary",
    ("pay", "refunded"): "$secondary",
    ("pay", "failed"): "$error",
    ("fulfil", "unfulfilled"): "$warning",
    ("fulfil", "partially_fulfilled"): "$accent",
    ("fulfil", "fulfilled"): "$success",
    ("fulfil", "partially_returned"): "$secondary",
    ("fulfil", "returned"): "$secondary",
    ("hold", "on_hold"): "$error",
}


def label(value: str) -> str:
    return value.replace("_", " ")


def badge_markup(axis: str, value: str) -> str:
    """'[b $success]delivered[/]' — content markup for a table cell."""
    style = STYLE.get((axis, value), "$foreground")
    return f"[b {style}]{label(value)}[/]"


class StatusBadge(Static):
    """A badge widget; CSS classes ``badge`` and ``{axis}-{value}`` (see themes)."""

    def __init__(self, axis: str, value: str, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(badge_markup(axis, value), classes=f"badge {axis}-{value}", **kwargs)
