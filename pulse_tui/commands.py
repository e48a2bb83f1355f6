"""Command palette providers (`ctrl+p` and `:`): orders, customers, actions, themes.

Lookups go through the Desk (in a thread, so typing never waits on SQLite);
the providers decide nothing themselves: opening an order posts OpenOrder,
a customer's orders is a filter the list applies.
"""

from __future__ import annotations

import asyncio
from functools import partial
from typing import TYPE_CHECKING

from textual.command import DiscoveryHit, Hit, Hits, Provider

from pulse_tui import messages
from pulse_tui.domain.filters import OrderFilter
from pulse_tui.domain.numbers import looks_like_order_number, parse_order_number
from pulse_tui.themes.themes import THEMES
from pulse_tui.widgets.formatting import money

if TYPE_CHECKING:
    from pulse_tui.screens.order_list import OrderListScreen
    from pulse_tui.storage.queries import OrderRow

LIMIT = 8


async def _search_orders(app, text: str) -> list[OrderRow]:  # type: ignore[no-untyped-def]
    desk = app.desk
    page = await asyncio.to_thread(desk.list_orders, OrderFilter(text=text), None, limit=LIMIT)
    return page.rows


def _normalise(query: str) -> str:
    q = query.strip()
    if looks_like_order_number(q) or q.isdigit():
        try:
            return parse_order_number(q)
        except ValueError:
            return q
    return q


def list_screen(app) -> OrderListScreen | None:  # type: ignore[no-untyped-def]
    """Back to the order list (popping detail screens); None if there is none."""
    from pulse_tui.screens.order_list import OrderListScreen

    if not any(isinstance(s, OrderListScreen) for s in app.screen_stack):
        return None
    while not isinstance(app.screen, OrderListScreen):
        app.pop_screen()
    return app.screen


class OrderProvider(Provider):
    """Jump to an order by its number (or any text the order search knows)."""

    async def search(self, query: str) -> Hits:
        text = _normalise(query)
        if len(text) < 2:
            return
        try:
            rows = await _search_orders(self.app, text)
        except Exception:  # a lookup failing must not break the palette
            return
        matcher = self.matcher(text)
        for row in rows:
            exact = row.number.lower() == text.lower()
            display = f"Open {row.number}  {row.customer_name}"
            yield Hit(
                1.0 if exact else max(0.5, matcher.match(row.number)),
                display,
                partial(self.app.post_message, messages.OpenOrder(row.number)),
                text=display,
                help=f"{row.status} · {money(row.total, row.currency)} · {row.country}",
            )


class CustomerProvider(Provider):
    """Find a customer's orders: filters the list by the customer's email."""

    async def search(self, query: str) -> Hits:
        text = query.strip()
        if len(text) < 2 or looks_like_order_number(text):
            return
        try:
            rows = await _search_orders(self.app, text)
        except Exception:
            return
        matcher = self.matcher(text)
        seen: set[int] = set()
        for row in rows:
            if row.customer_id in seen:
                continue
            seen.add(row.customer_id)
            display = f"Orders of {row.customer_name} <{row.customer_email}>"
            score = max(matcher.match(row.customer_name), matcher.match(row.customer_email))
            yield Hit(
                max(score, 0.3),
                matcher.highlight(display),
                partial(self.show_customer, row.customer_email),
                text=display,
                help=f"filter customer:{row.customer_email}",
            )

    def show_customer(self, email: str) -> None:
        screen = list_screen(self.app)
        if screen is not None:
            screen.apply_query(f"customer:{email}")


def _actions(screen) -> list[tuple[str, str, object]]:  # type: ignore[no-untyped-def]
    """(title, help, callback) for the bindings of the screen the palette opened over."""
    app = screen.app
    out: list[tuple[str, str, object]] = []
    seen: set[str] = set()
    for active in screen.active_bindings.values():
        b = active.binding
        # "refunds" (F) and "notifications" (M) are offered by DeskProvider
        # with their approvals / failed views
        if (
            not active.enabled  # greyed out now: the order's state does not allow it
            or not b.description
            or b.system
            or b.action in ("command_palette", "refunds", "notifications")
        ):
            continue
        if b.description in seen:
            continue
        seen.add(b.description)
        out.append(
            (
                b.description,
                f"key {app.get_key_display(b)}",
                partial(app.run_action, b.action, active.node),
            )
        )
    from pulse_tui.screens.order_list import OrderListScreen
    from pulse_tui.widgets.status_tabs import TABS

    if isinstance(screen, OrderListScreen):
        for tid, label in TABS:
            out.append((f"Show tab: {label}", "status tab", partial(screen.show_tab, tid)))
    return out


class ActionProvider(Provider):
    """The current screen's actions (its key bindings), by name."""

    async def discover(self) -> Hits:
        for title, help_text, callback in _actions(self.screen):
            yield DiscoveryHit(title, callback, text=title, help=help_text)  # type: ignore[arg-type]

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for title, help_text, callback in _actions(self.screen):
            score = matcher.match(title)
            if score > 0:
                yield Hit(score, matcher.highlight(title), callback, text=title, help=help_text)  # type: ignore[arg-type]


class ThemeProvider(Provider):
    """Switch theme; the App persists the choice in the config file."""

    def _items(self) -> list[tuple[str, str]]:
        return [(f"Theme: {name}", name) for name in THEMES]

    async def discover(self) -> Hits:
        for title, name in self._items():
            yield DiscoveryHit(
                title, partial(self.app.set_theme, name), text=title, help="switch theme"
            )

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for title, name in self._items():
            score = matcher.match(title)
            if score > 0:
                yield Hit(
                    score,
                    matcher.highlight(title),
                    partial(self.app.set_theme, name),
                    text=title,
                    help="switch theme",
                )


def _desk_actions(app, screen) -> list[tuple[str, str, object]]:  # type: ignore[no-untyped-def]
    """Screens and actions that are not the current screen's keys: the refunds
    screen, its approvals queue, refunding the open order, customer emails
    and the failed ones, bulk actions."""
    from pulse_tui.domain.permissions import Permission
    from pulse_tui.screens.order_detail import OrderDetailScreen

    actor = app.desk.actor
    out: list[tuple[str, str, object]] = []
    if actor.can(Permission.READ_PAYMENTS):
        out.append(("Refunds", "every refund, by status (F)", partial(app.action_refunds, "all")))
        out.append(
            (
                "Refund approvals",
                "refunds waiting for an admin",
                partial(app.action_refunds, "requested"),
            )
        )
    if isinstance(screen, OrderDetailScreen) and screen.check_action("refund", ()):
        out.append(("Refund this order", "refund dialog (f)", screen.action_refund))
    out.append(
        ("Emails", "customer emails, by status (M)", partial(app.action_notifications, "all"))
    )
    out.append(
        (
            "Failed emails",
            "customer emails that could not be delivered (retry with y)",
            partial(app.action_notifications, "failed"),
        )
    )
    lists = list_screen_if_any(app)
    if lists is not None and callable(getattr(lists, "action_bulk", None)):
        out.append(("Bulk actions…", "on the marked orders of the list", partial(_bulk, app)))
    return out


def list_screen_if_any(app) -> OrderListScreen | None:  # type: ignore[no-untyped-def]
    from pulse_tui.screens.order_list import OrderListScreen

    for s in app.screen_stack:
        if isinstance(s, OrderListScreen):
            return s
    return None


def _bulk(app) -> None:  # type: ignore[no-untyped-def]
    """Back to the list and run its bulk action (another screen owns what it does)."""
    screen = list_screen(app)
    action = getattr(screen, "action_bulk", None)
    if callable(action):
        action()


class DeskProvider(Provider):
    """Refunds, approvals, refund this order, emails, failed emails, bulk actions."""

    def _items(self) -> list[tuple[str, str, object]]:
        try:
            return _desk_actions(self.app, self.screen)
        except Exception:  # never break the palette
            return []

    async def discover(self) -> Hits:
        for title, help_text, callback in self._items():
            yield DiscoveryHit(title, callback, text=title, help=help_text)  # type: ignore[arg-type]

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for title, help_text, callback in self._items():
            score = matcher.match(title)
            if score > 0:
                yield Hit(score, matcher.highlight(title), callback, text=title, help=help_text)  # type: ignore[arg-type]


PROVIDERS = {OrderProvider, CustomerProvider, ActionProvider, ThemeProvider, DeskProvider}
