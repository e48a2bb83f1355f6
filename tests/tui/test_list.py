"""Order list behaviour: rows, filter bar, bad queries, sorting, tabs, paging keys."""

from __future__ import annotations

import pytest

from pulse_tui import messages
from pulse_tui.screens.order_list import OrderListScreen
from pulse_tui.widgets.filter_bar import FilterBar
from pulse_tui.widgets.order_table import OrderTable, RowWindow
from pulse_tui.widgets.status_tabs import StatusTabs

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def settle(app, pilot) -> None:  # type: ignore[no-untyped-def]
    for _ in range(2):
        await pilot.pause()
        await app.workers.wait_for_complete()
    await pilot.pause()


def numbers(app) -> list[str]:  # type: ignore[no-untyped-def]
    return [r.number for r in app.screen.query_one(OrderTable).window.rows]


async def test_list_shows_orders_newest_first(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        assert isinstance(app.screen, OrderListScreen)
        rows = numbers(app)
        assert len(rows) == 24
        assert rows[0] == "PB-100024" and rows[-1] == "PB-100001"
        table = app.screen.query_one(OrderTable)
        assert app.focused is table
        assert [str(c.label).split()[0] for c in table.columns.values()][:3] == [
            "Number",
            "Placed",
            "Customer",
        ]


async def test_enter_opens_the_order_under_the_cursor(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app()
    seen: list[str | int] = []

    def hook(message) -> None:  # type: ignore[no-untyped-def]
        if isinstance(message, messages.OpenOrder):
            seen.append(message.ref)

    async with app.run_test(size=(120, 40), message_hook=hook) as pilot:
        await settle(app, pilot)
        await pilot.press("j", "j", "enter")
        await settle(app, pilot)
        assert seen[0] == "PB-100022"
        try:
            from pulse_tui.screens.order_detail import OrderDetailScreen
        except ImportError:
            assert isinstance(app.screen, OrderListScreen)  # told, not crashed
            assert any("detail screen not available" in n.message for n in app._notifications)
        else:
            assert isinstance(app.screen, OrderDetailScreen)


async def test_filter_by_query(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        await pilot.press("slash")
        assert isinstance(app.focused.parent, FilterBar)
        await pilot.press(*"country:JP", "enter")
        await settle(app, pilot)
        table = app.screen.query_one(OrderTable)
        assert {r.country for r in table.window.rows} == {"JP"}
        assert len(table.window.rows) == 4
        assert app.focused is table
        # the tabs count within the filter
        assert app.screen.counts["all"] == 4
        # esc clears the filter
        await pilot.press("escape")
        await settle(app, pilot)
        assert len(numbers(app)) == 24


async def test_bad_query_shows_why_and_keeps_the_last_good_rows(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        await pilot.press("slash", *"status:pending", "enter")
        await settle(app, pilot)
        good = numbers(app)
        assert len(good) == 4
        await pilot.press("slash")
        bar = app.screen.query_one(FilterBar)
        bar.input.value = "status:bogus"
        await pilot.press("enter")
        await settle(app, pilot)
        error = app.screen.query_one("#filter-error")
        assert error.display
        assert "unknown status 'bogus'" in str(error.render())
        assert numbers(app) == good  # unchanged
        assert app.screen.query_state.filter.statuses == ("pending",)


async def test_empty_result_says_why(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        assert app.screen.apply_query("country:BR")
        await settle(app, pilot)
        empty = app.screen.query_one("#empty")
        assert empty.display and not app.screen.query_one(OrderTable).display
        assert "No orders match: country BR" in str(empty.render())


async def test_sort_keys_and_direction(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        await pilot.press("s")  # placed → total
        await settle(app, pilot)
        rows = app.screen.query_one(OrderTable).window.rows
        assert app.screen.query_state.sort.key == "total"
        totals = [r.total for r in rows]
        assert totals == sorted(totals, reverse=True)
        await pilot.press("r")
        await settle(app, pilot)
        totals = [r.total for r in app.screen.query_one(OrderTable).window.rows]
        assert totals == sorted(totals)
        assert "sort total ↑" in str(app.screen.query_one("#list-status").render())


async def test_status_tabs_show_counts_and_filter(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        tabs = app.screen.query_one(StatusTabs)
        assert tabs.counts["all"] == 24
        labels = [str(t.label) for t in tabs.query("Tab")]
        assert labels[0] == "All 24"
        assert f"Pending {tabs.counts['pending']}" in labels
        await pilot.press("right_square_bracket")  # → Pending
        await settle(app, pilot)
        rows = app.screen.query_one(OrderTable).window.rows
        assert len(rows) == tabs.counts["pending"] > 0
        assert {r.status for r in rows} == {"pending"}
        app.screen.show_tab("on_hold")
        await settle(app, pilot)
        rows = app.screen.query_one(OrderTable).window.rows
        assert len(rows) == tabs.counts["on_hold"] > 0 and all(r.on_hold for r in rows)


async def test_order_changed_refreshes_rows_and_counts(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        pending = app.screen.counts["pending"]
        row = next(r for r in app.screen.query_one(OrderTable).window.rows if r.status == "pending")
        app.desk.orders.cancel(row.number, reason="customer_request")
        app.post_message(messages.OrderChanged(row.id, row.number))
        await settle(app, pilot)
        assert app.screen.counts["pending"] == pending - 1
        fresh = {r.number: r for r in app.screen.query_one(OrderTable).window.rows}
        assert fresh[row.number].status == "cancelled"


async def test_paging_keys_on_a_small_list(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        table = app.screen.query_one(OrderTable)
        await pilot.press("G")
        assert table.current.number == "PB-100001"
        await pilot.press("k")
        assert table.current.number == "PB-100002"
        await pilot.press("g")
        assert table.current.number == "PB-100024"
        await pilot.press("pagedown")
        assert table.cursor_row > 5
        await pilot.press("pageup")
        assert table.cursor_row == 0
        await pilot.press("down")
        assert table.current.number == "PB-100023"


def test_row_window_stays_bounded() -> None:
    from pulse_tui.storage.queries import Cursor, Page

    class R:  # minimal stand-in rows
        def __init__(self, i: int) -> None:
            self.id = i

    w = RowWindow(page_rows=10, max_pages=3)
    w.reset(Page([R(i) for i in range(10)], Cursor(9, 9), None))  # type: ignore[misc]
    assert w.more_after and not w.more_before and w.start == 0
    for p in range(1, 6):
        dropped = w.append(Page([R(i) for i in range(p * 10, p * 10 + 10)], Cursor(0, 0), None))  # type: ignore[misc]
        assert len(w) <= 30
    assert dropped == 10 and w.start == 30 and w.more_before
    assert [r.id for r in w.rows] == list(range(30, 60))
    added = w.prepend(Page([R(i) for i in range(20, 30)], None, Cursor(0, 0)))  # type: ignore[misc]
    assert added == 10 and w.start == 20 and len(w) == 30 and w.more_after
    assert [r.id for r in w.rows] == list(range(20, 50))
