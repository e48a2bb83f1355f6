"""Display formatting shared by every screen (times relative to the desk's clock)."""

from __future__ import annotations

from datetime import UTC, datetime

from pulse_tui.domain.money import format_money


def _aware(dt: datetime) -> datetime:
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def relative_time(dt: datetime, now: datetime) -> str:
    """'just now', '5m ago', '3h ago', '2d ago', '4mo ago', '2y ago'."""
    secs = int((_aware(now) - _aware(dt)).total_seconds())
    if secs < 0:
        return "in future"
    if secs < 60:
        return "just now"
    for size, unit in ((31_536_000, "y"), (2_592_000, "mo"), (86_400, "d"), (3_600, "h")):
        if secs >= size:
            return f"{secs // size}{unit} ago"
    return f"{secs // 60}m ago"


def absolute_time(dt: datetime) -> str:
    """'2026-11-23 14:05' in UTC."""
    return _aware(dt).astimezone(UTC).strftime("%Y-%m-%d %H:%M")


def money(amount: int, currency: str, locale: str = "en_US") -> str:
    return format_money(amount, currency, locale)
